"""`smcore run`: placeholder until its issue lands."""

from __future__ import annotations

from smcore.cli import app
from smcore.errors import SmcoreError


@app.command("run")
def run_command() -> None:
    """Not implemented yet."""
    raise SmcoreError("'smcore run' is not implemented yet")
