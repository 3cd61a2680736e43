"""`smcore prepare`: placeholder until its issue lands."""

from __future__ import annotations

from smcore.cli import app
from smcore.errors import SmcoreError


@app.command("prepare")
def prepare_command() -> None:
    """Not implemented yet."""
    raise SmcoreError("'smcore prepare' is not implemented yet")
