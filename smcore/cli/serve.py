"""`smcore serve`: placeholder until its issue lands."""

from __future__ import annotations

from smcore.cli import app
from smcore.errors import SmcoreError


@app.command("serve")
def serve_command() -> None:
    """Not implemented yet."""
    raise SmcoreError("'smcore serve' is not implemented yet")
