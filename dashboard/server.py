"""Start the dashboard server (``smcore serve``): localhost by default, explicit origins only.

Beyond this machine (``--address`` other than loopback) the browsers' origins must be named
(``--allow-websocket-origin``); ``--basic-auth`` puts Panel's login page in front of the app
and ``--ssl-certfile``/``--ssl-keyfile`` serve it over HTTPS; without either a warning says
that anyone who reaches the port sees the dashboard. The page always loads its scripts from
this server, whatever ``BOKEH_RESOURCES`` says (no CDN: it works offline and asks nothing of
third parties).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import secrets
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from smcore.errors import ConfigError, InputError
from smcore.workdir import WorkDir

__all__ = [
    "serve",
    "websocket_origins",
    "check_workdir",
    "check_exposure",
    "parse_basic_auth",
    "force_server_resources",
    "configure_logging",
    "run_until_signalled",
]

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


def parse_basic_auth(value: str | None) -> str | dict[str, str] | None:
    """``--basic-auth``: a JSON file ``{"user": "password"}`` (Panel's) or ``USER:PASSWORD``.

    Returns what Panel's basic-auth provider takes: the file's path (read at each login, so
    accounts can change without a restart) or ``{user: password}``. Anything else is a
    :class:`ConfigError`.
    """
    if value is None:
        return None
    path = Path(value).expanduser()
    if path.is_file():
        try:
            accounts = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"--basic-auth {path}: not a JSON file: {exc}") from exc
        if (
            not isinstance(accounts, dict)
            or not accounts
            or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in accounts.items())
        ):
            raise ConfigError(
                f'--basic-auth {path}: expected a JSON object {{"user": "password", ...}}'
            )
        return str(path.resolve())
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ConfigError(
            "--basic-auth: expected USER:PASSWORD or a JSON file of "
            '{"user": "password"} (no such file: ' + value.split(":")[0] + ")"
        )
    return {user: password}


def check_exposure(
    address: str,
    allow_websocket_origin: Sequence[str] | None,
    *,
    basic_auth: object = None,
    tls: bool = False,
) -> list[str]:
    """Refuse an unsafe public server; return the warnings to print for a permitted one.

    A non-loopback ``address`` needs explicit ``--allow-websocket-origin`` values (the
    host:port the browsers use), else a :class:`ConfigError`. Without TLS and without basic
    auth, anyone who reaches the port sees the dashboard: a warning says so; with auth but no
    TLS, passwords travel in clear text: a warning says that too.
    """
    if not _is_public(address):
        return []
    if not [o for o in allow_websocket_origin or [] if o.strip()]:
        raise ConfigError(
            f"--address {address} makes the dashboard reachable from other machines: name the "
            "host:port browsers will use with --allow-websocket-origin (e.g. "
            "--allow-websocket-origin myhost.example.org:5006), and consider --basic-auth and "
            "--ssl-certfile/--ssl-keyfile"
        )
    if basic_auth is None and not tls:
        return [
            f"serving on {address} without TLS or --basic-auth: anyone who can reach this port "
            "sees the dashboard and its data"
        ]
    if not tls:
        return [
            f"serving on {address} with --basic-auth but without TLS: passwords and data "
            "travel in clear text (use --ssl-certfile/--ssl-keyfile or a TLS proxy)"
        ]
    return []


def force_server_resources() -> None:
    """Make Bokeh and Panel load every script and style from this server, never from a CDN.

    ``BOKEH_RESOURCES`` in the environment (e.g. ``cdn``) is overridden for this process.
    """
    os.environ["BOKEH_RESOURCES"] = "server"
    from bokeh.settings import settings

    settings.resources.set_value("server")


def skip_document_validation() -> None:
    """Build each visitor's page without Bokeh's layout checks, unless ``BOKEH_VALIDATE_DOC``.

    Bokeh checks every model of a new page for layout mistakes (about 40 ms of the event loop
    per visitor on 2 cores) and only logs what it finds; the test suite checks the page and
    each tab instead (``tests/test_dashboard_server.py``).
    """
    if "BOKEH_VALIDATE_DOC" in os.environ:
        return
    from bokeh.settings import settings

    settings.perform_document_validation.set_value(False)


COLLECTOR_THRESHOLDS = (10_000, 20, 20)
"""Python's cycle collector in the server: a young collection per 10,000 new objects, not 700."""


def tune_collector() -> None:
    """Run Python's cycle collector less often in the server (:data:`COLLECTOR_THRESHOLDS`).

    Building a visitor's page and tabs makes tens of thousands of Python objects that live
    as long as the page; with Python's default thresholds that set off about 85 collections
    per visitor, 0.13–0.15 s of the event loop on 2 cores, against 6 and 0.03 s with these
    (measured in one process, page and three tabs, twelve visitors). The garbage of a closed
    page is collected when Panel destroys its session (a full collection then), whatever the
    thresholds.
    """
    import gc

    gc.set_threshold(*COLLECTOR_THRESHOLDS)


def configure_logging(debug: bool = False) -> None:
    """How the server logs the failures it contains (:mod:`dashboard.contain`).

    By default one warning line each (Python's last-resort handler prints it on stderr when
    nothing else is configured); with ``debug`` the traceback too, and information messages
    (the warm-up's steps) on stderr.
    """
    from dashboard.contain import set_debug

    set_debug(debug)
    if debug and not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )


def _draw_ahead(
    loop: Any,
    steps: Iterator[tuple[str, float]],
    what: str,
    stop: Callable[[], bool] = lambda: False,
    finished: Callable[[], None] = lambda: None,
) -> None:
    """Draw the tabs of ``steps`` (a :func:`dashboard.app.prerender`) for nobody.

    They are drawn on the server's event loop ``loop``, where the sessions are built
    (HoloViews rendering is not shared between threads), one tab per callback, so that a
    visitor waits for one tab at most; given up before the next tab once ``stop()`` is true.
    ``finished()`` is called at the end, whatever ended it; a failure is one log line naming
    ``what``.
    """
    from dashboard.contain import log_failure

    spent: dict[str, float] = {}

    def step() -> None:
        if stop():
            log.info("%s: a visitor came first; drawn: %s", what, spent)
            finished()
            return
        try:
            title, seconds = next(steps)
        except StopIteration:
            log.info("%s: %s", what, spent)
            finished()
            return
        except Exception as exc:  # noqa: BLE001 - the visitors' sessions draw the tabs
            log_failure(log, what, exc)
            finished()
            return
        spent[title] = seconds
        loop.add_callback(step)

    step()


def _prerender(loop: Any, root: Path, before: int) -> None:
    """Every tab drawn ahead of the first visitor on the server's event loop ``loop``.

    :func:`dashboard.app.prerender` through :func:`_draw_ahead`, only while no page has begun
    since :func:`~dashboard.app.sessions_started` counted ``before``.
    """
    from dashboard.app import prerender, sessions_started

    _draw_ahead(loop, prerender(root), "drawing the tabs ahead of the first visitor",
                stop=lambda: sessions_started() > before)


class _DrawChanged:
    """Tabs whose files changed, drawn again for nobody while a pipeline runs.

    Each tab whose files appeared or changed (:class:`dashboard.app.TabFiles`) is drawn, so
    that a visitor who opens it next gets copies of its figures
    (:class:`dashboard.live.RenderCache`) instead of waiting for HoloViews: :meth:`check`
    every :data:`dashboard.app.REFRESH_MS` on the server's event loop ``loop``, then one tab
    per callback in the default projection (:func:`_draw_ahead`).
    """

    def __init__(self, loop: Any, root: Path) -> None:
        self.loop = loop
        self.root = root
        self.files: Any = None
        self.steps: Any = None

    def check(self) -> None:
        """Look at the tabs' files; start drawing the changed tabs (not while still drawing)."""
        from dashboard.app import TabFiles, prerender
        from dashboard.contain import log_failure

        if self.steps is not None:
            return
        try:
            if self.files is None:  # the stamps when the server began to look
                self.files = TabFiles(self.root)
                return
            tabs = self.files.changed()
        except Exception as exc:  # noqa: BLE001 - the visitors' sessions draw the tabs
            log_failure(log, "looking for changed tabs to draw ahead", exc)
            return
        if tabs:
            self.steps = prerender(self.root, tabs, every_projection=False)
            _draw_ahead(self.loop, self.steps, "drawing changed tabs ahead of the visitors",
                        finished=self._finished)

    def _finished(self) -> None:
        self.steps = None


def serve(
    workdir: str | Path,
    port: int = 5006,
    address: str = "127.0.0.1",
    show: bool = False,
    allow_websocket_origin: Sequence[str] | None = None,
    start: bool = True,
    *,
    basic_auth: str | None = None,
    ssl_certfile: str | Path | None = None,
    ssl_keyfile: str | Path | None = None,
    debug: bool = False,
    prerender: bool | None = None,
    **kwargs: Any,
) -> Any:
    """Serve the dashboard of ``workdir`` at ``http://address:port/`` (blocks while ``start``).

    The app reads only the artifacts inside ``workdir``; no static folder is exposed. A
    non-loopback ``address`` needs ``allow_websocket_origin`` (:func:`check_exposure`);
    ``basic_auth`` (:func:`parse_basic_auth`) puts Panel's login page in front of the app;
    ``ssl_certfile``/``ssl_keyfile`` serve HTTPS. A failure while a tab is built or updated is
    shown in that tab and logged as one line; ``debug`` logs its traceback too
    (:mod:`dashboard.contain`). After the warm-up's reads, the server's event loop draws every
    tab once for nobody (``prerender``, by default when ``start``:
    :func:`dashboard.app.prerender`), so that the first visitors get copies of the figures;
    then, while a pipeline fills the work directory, it draws again each tab whose files
    changed (:class:`_DrawChanged`).
    Returns the Bokeh server (when ``start`` is False the caller starts it).
    """
    root = check_workdir(workdir)
    auth = parse_basic_auth(basic_auth)
    if ssl_keyfile is not None and ssl_certfile is None:
        raise ConfigError("--ssl-keyfile needs --ssl-certfile")
    for name, f in (("--ssl-certfile", ssl_certfile), ("--ssl-keyfile", ssl_keyfile)):
        if f is not None and not Path(f).is_file():
            raise InputError(f, f"{name}: no such file")
    tls = ssl_certfile is not None
    warnings = check_exposure(address, allow_websocket_origin, basic_auth=auth, tls=tls)
    origins = websocket_origins(address, port, allow_websocket_origin)
    force_server_resources()
    import panel as pn
    from tornado.ioloop import IOLoop, PeriodicCallback

    from dashboard.app import REFRESH_MS, configure, create_app, sessions_started
    from dashboard.config import TITLE
    from dashboard.loaders import start_warm_up

    configure()
    configure_logging(debug)
    skip_document_validation()
    tune_collector()
    loop = kwargs.setdefault("loop", IOLoop.current())  # where the sessions are built
    draw = start if prerender is None else prerender
    # a page that begins before the warm-up ends stops the drawing too
    before = sessions_started()
    changed = _DrawChanged(loop, root)
    follow = PeriodicCallback(changed.check, REFRESH_MS)

    def then() -> None:
        loop.add_callback(_prerender, loop, root, before)
        loop.add_callback(follow.start)

    start_warm_up(str(root), then=then if draw else None)
    for text in warnings:
        log.warning(text)
        print(f"smcore: warning: {text}", file=sys.stderr, flush=True)
    host = "127.0.0.1" if address in _LOOPBACK else address
    scheme = "https" if tls else "http"
    print(f"smcore dashboard of {root} at {scheme}://{host}:{port}/", flush=True)

    def session() -> pn.template.FastListTemplate:
        return create_app(root)

    if auth is not None:
        kwargs["basic_auth"] = auth
        # signs the login cookie; a new secret per start logs everyone out on restart
        kwargs.setdefault("cookie_secret", pn.config.cookie_secret or secrets.token_urlsafe(32))
    if tls:
        kwargs["ssl_certfile"] = str(ssl_certfile)
        if ssl_keyfile is not None:
            kwargs["ssl_keyfile"] = str(ssl_keyfile)
    server = pn.serve(
        session,
        port=port,
        address=address,
        websocket_origin=origins,
        show=show,
        start=False,
        title=TITLE,
        verbose=False,
        liveness=True,
        **kwargs,
    )
    if start:
        run_until_signalled(server)
    return server


def run_until_signalled(server: Any) -> None:
    """Run ``server`` until SIGTERM or SIGINT, then stop it and raise :class:`Interrupted`.

    The signals are handled by the event loop, between its callbacks: raised inside one (a
    page being built, a session's timer), the exception would be caught and logged with its
    traceback by asyncio, and the server would go on running.
    """
    import signal

    from smcore.errors import Interrupted

    loop = server.io_loop.asyncio_loop
    received: list[int] = []

    def stop(signum: int) -> None:
        received.append(signum)
        server.io_loop.stop()

    wanted = (signal.SIGTERM, signal.SIGINT)
    for signum in wanted:
        loop.add_signal_handler(signum, stop, signum)
    try:
        server.start()
        server.io_loop.start()
    finally:
        for signum in wanted:
            loop.remove_signal_handler(signum)
    server.stop()
    if received:
        raise Interrupted(received[0])
