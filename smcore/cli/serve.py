"""`smcore serve`: the Panel dashboard of a work directory, on localhost by default."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from smcore.cli import app
from smcore.cli.common import WORKDIR_OPTION

_BASIC_AUTH_HELP = (
    'Log in first (Panel\'s basic auth): a JSON file {"user": "password", ...} (preferred: a '
    "password on the command line is visible to other users) or USER:PASSWORD."
)


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
        help="Extra host:port allowed to connect (e.g. behind an SSH tunnel or proxy); repeatable. "
        "Required with a non-loopback --address.",
    ),
    basic_auth: Optional[str] = typer.Option(  # noqa: B008, UP045 - typer idiom
        None, "--basic-auth", metavar="FILE|USER:PASSWORD", help=_BASIC_AUTH_HELP
    ),
    ssl_certfile: Optional[Path] = typer.Option(  # noqa: B008, UP045 - typer idiom
        None, "--ssl-certfile", help="Serve HTTPS with this certificate (PEM)."
    ),
    ssl_keyfile: Optional[Path] = typer.Option(  # noqa: B008, UP045 - typer idiom
        None, "--ssl-keyfile", help="Private key of --ssl-certfile (PEM), unless it holds it."
    ),
    show: bool = typer.Option(False, "--show/--no-show", help="Open a browser tab."),
    debug: bool = typer.Option(
        False,
        "--debug",
        help="Log the traceback of every failure the dashboard shows in a tab (by default one "
        "line each).",
    ),
) -> None:
    """Explore, compare and present the results in the dashboard (Ctrl-C stops it).

    Beyond this machine: `--address 0.0.0.0 --allow-websocket-origin HOST:PORT`, with
    `--basic-auth` and TLS (see README, "Serving beyond localhost").
    """
    from dashboard.server import serve  # panel is imported only when serving
    from smcore.cli import debug_requested

    serve(
        workdir,
        port=port,
        address=address,
        show=show,
        allow_websocket_origin=allow_websocket_origin,
        basic_auth=basic_auth,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        # `smcore --debug serve …` and `smcore serve --debug …` alike: the command line's entry
        # point takes --debug out of the arguments (for its own tracebacks) and records it
        debug=debug or debug_requested(),
    )
