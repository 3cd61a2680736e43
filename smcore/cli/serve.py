"""`smcore serve`: the Panel dashboard of a work directory, on localhost by default."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from smcore.cli import app
from smcore.cli.common import WORKDIR_OPTION


@app.command("serve")
def serve_command(
    workdir: Path = WORKDIR_OPTION,
    port: int = typer.Option(5006, "--port", min=1, max=65535, help="TCP port to listen on."),
    address: str = typer.Option(
        "127.0.0.1", "--address", help="Interface to bind (default: this machine only)."
    ),
    allow_websocket_origin: Optional[list[str]] = typer.Option(  # noqa: UP045 - typer needs Optional
        None,
        "--allow-websocket-origin",
        metavar="HOST:PORT",
        help="Extra host:port allowed to connect (e.g. behind an SSH tunnel or proxy); repeatable.",
    ),
    show: bool = typer.Option(False, "--show/--no-show", help="Open a browser tab."),
) -> None:
    """Explore, compare and present the results in the dashboard (Ctrl-C stops it)."""
    from dashboard.server import serve  # panel is imported only when serving

    serve(
        workdir,
        port=port,
        address=address,
        show=show,
        allow_websocket_origin=allow_websocket_origin,
    )
