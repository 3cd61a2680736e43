"""`smcore demo`: placeholder until its issue lands."""

from __future__ import annotations

from smcore.cli import app
from smcore.errors import SmcoreError


@app.command("demo-data")
def demo_command() -> None:
    """Not implemented yet."""
    raise SmcoreError("'smcore demo-data' is not implemented yet")
