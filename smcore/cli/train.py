"""`smcore train`: placeholder until its issue lands."""

from __future__ import annotations

from smcore.cli import app
from smcore.errors import SmcoreError


@app.command("train")
def train_command() -> None:
    """Not implemented yet."""
    raise SmcoreError("'smcore train' is not implemented yet")
