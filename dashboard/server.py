"""Start the dashboard server (``smcore serve``): localhost by default, explicit origins only."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from smcore.errors import ConfigError, InputError
from smcore.workdir import WorkDir

__all__ = ["serve", "websocket_origins", "check_workdir"]

log = logging.getLogger(__name__)

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_workdir(workdir: str | Path) -> Path:
    """The resolved work directory; a one-line error if it is not a folder."""
    root = WorkDir(workdir).root
    if not root.is_dir():
        raise InputError(
            root, "work directory does not exist (run `smcore run` or `smcore demo-data` first)"
        )
    return root


def websocket_origins(address: str, port: int, extra: Sequence[str] | None = None) -> list[str]:
    """Origins allowed to open the session websocket: the served host and ``extra`` host:port.

    A wildcard is refused: it would let any web page a user visits drive the server.
    """
    hosts = ["127.0.0.1", "localhost"] if address in _LOOPBACK else [address]
    origins = [f"{h}:{port}" for h in hosts]
    for origin in extra or []:
        origin = origin.strip()
        if not origin:
            continue
        if "*" in origin:
            raise ConfigError(
                f"--allow-websocket-origin {origin!r}: wildcards are not allowed; name host:port"
            )
        origins.append(origin)
    return list(dict.fromkeys(origins))


def _is_public(address: str) -> bool:
    try:
        return not ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address not in _LOOPBACK


def serve(
    workdir: str | Path,
    port: int = 5006,
    address: str = "127.0.0.1",
    show: bool = False,
    allow_websocket_origin: Sequence[str] | None = None,
    start: bool = True,
    **kwargs: Any,
) -> Any:
    """Serve the dashboard of ``workdir`` at ``http://address:port/`` (blocks while ``start``).

    The app reads only the artifacts inside ``workdir``; no static folder is exposed. Returns
    the Bokeh server (when ``start`` is False the caller starts it).
    """
    root = check_workdir(workdir)
    import panel as pn

    from dashboard.app import configure, create_app
    from dashboard.config import TITLE
    from dashboard.loaders import start_warm_up

    configure()
    start_warm_up(str(root))
    if _is_public(address):
        log.warning("serving on %s: the dashboard is reachable from other machines", address)
    origins = websocket_origins(address, port, allow_websocket_origin)
    host = "127.0.0.1" if address in _LOOPBACK else address
    print(f"smcore dashboard of {root} at http://{host}:{port}/", flush=True)

    def session() -> pn.template.FastListTemplate:
        return create_app(root)

    return pn.serve(
        session,
        port=port,
        address=address,
        websocket_origin=origins,
        show=show,
        start=start,
        title=TITLE,
        verbose=False,
        liveness=True,
        **kwargs,
    )
