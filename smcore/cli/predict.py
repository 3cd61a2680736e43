"""`smcore predict`: placeholder until its issue lands."""

from __future__ import annotations

from smcore.cli import app
from smcore.errors import SmcoreError


@app.command("predict")
def predict_command() -> None:
    """Not implemented yet."""
    raise SmcoreError("'smcore predict' is not implemented yet")
