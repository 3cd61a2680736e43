"""`smcore evaluate`: placeholder until its issue lands."""

from __future__ import annotations

from smcore.cli import app
from smcore.errors import SmcoreError


@app.command("evaluate")
def evaluate_command() -> None:
    """Not implemented yet."""
    raise SmcoreError("'smcore evaluate' is not implemented yet")
