"""`smcore analyse`: placeholder until its issue lands."""

from __future__ import annotations

from smcore.cli import app
from smcore.errors import SmcoreError


@app.command("analyse")
def analyse_command() -> None:
    """Not implemented yet."""
    raise SmcoreError("'smcore analyse' is not implemented yet")
