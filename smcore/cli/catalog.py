"""`smcore catalog`: placeholder until its issue lands."""

from __future__ import annotations

from smcore.cli import app
from smcore.errors import SmcoreError


@app.command("catalog")
def catalog_command() -> None:
    """Not implemented yet."""
    raise SmcoreError("'smcore catalog' is not implemented yet")
