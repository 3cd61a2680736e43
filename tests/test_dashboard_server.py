"""`smcore serve` and dashboard.server: localhost by default, explicit origins, clear errors."""

from __future__ import annotations

import socket

import panel as pn
import pytest

from dashboard.server import check_workdir, serve, websocket_origins
from smcore.cli import main
from smcore.errors import ConfigError, InputError
from tests.factories.dashboard import make_workdir


def test_origins_default_to_this_machine():
    assert websocket_origins("127.0.0.1", 5006) == ["127.0.0.1:5006", "localhost:5006"]
    assert websocket_origins("localhost", 80, ["myhost:8443", " "]) == [
        "127.0.0.1:80",
        "localhost:80",
        "myhost:8443",
    ]
    assert websocket_origins("10.0.0.5", 5006) == ["10.0.0.5:5006"]


def test_wildcard_origins_are_refused():
    with pytest.raises(ConfigError, match="wildcards are not allowed"):
        websocket_origins("127.0.0.1", 5006, ["*"])


def test_missing_workdir_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(InputError, match="work directory does not exist"):
        check_workdir(tmp_path / "nope")
    assert main(["serve", "--workdir", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "work directory does not exist" in err[0]


def test_serve_help_documents_the_options(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich folds long option names in narrow terminals
    assert main(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--workdir", "--port", "--address", "--allow-websocket-origin"):
        assert option in out
    assert "127.0.0.1" in out


def test_server_binds_localhost_by_default(tmp_path, stopped):
    wd = make_workdir(tmp_path / "w")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = serve(wd.root, port=port, start=False)
    stopped(server)
    assert server.address == "127.0.0.1" and server.port == port
    assert {f"127.0.0.1:{port}", f"localhost:{port}"} <= set(server._tornado._websocket_origins)


# -- serving beyond localhost ------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fetch(server, path, **kwargs):
    """One HTTP request to ``server`` (running its IOLoop meanwhile); redirects not followed."""
    from tornado.httpclient import AsyncHTTPClient

    async def go():
        return await AsyncHTTPClient().fetch(
            f"http://127.0.0.1:{server.port}{path}", raise_error=False, follow_redirects=False,
            request_timeout=120, **kwargs,
        )

    return server.io_loop.run_sync(go, timeout=180)


@pytest.fixture(scope="module")
def served_workdir(tmp_path_factory):
    return make_workdir(tmp_path_factory.mktemp("serve") / "w")


@pytest.fixture
def stopped():
    """``stopped(server)``: stop it after the test, and put back the process-wide settings
    ``serve()`` changes (the cycle collector's thresholds, Bokeh's page validation)."""
    import gc

    from bokeh.settings import settings

    thresholds = gc.get_threshold()
    servers = []
    yield servers.append
    for server in servers:
        server.stop()
    pn.state.reset()
    gc.set_threshold(*thresholds)
    settings.perform_document_validation.unset_value()


def test_public_address_needs_explicit_origins(served_workdir, stopped, capsys):
    with pytest.raises(ConfigError, match="--allow-websocket-origin"):
        stopped(serve(served_workdir.root, address="0.0.0.0", port=_free_port(), start=False))
    assert main(["serve", "--workdir", str(served_workdir.root), "--address", "10.1.2.3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "smcore: error: --address 10.1.2.3 makes the dashboard reachable from other machines"
    )


def test_public_address_without_tls_or_auth_warns(served_workdir, stopped, capsys):
    port = _free_port()
    server = serve(
        served_workdir.root, address="0.0.0.0", port=port, start=False,
        allow_websocket_origin=[f"myhost.example.org:{port}"],
    )
    stopped(server)
    assert server.address == "0.0.0.0"
    assert f"myhost.example.org:{port}" in set(server._tornado._websocket_origins)
    err = capsys.readouterr().err
    assert (
        "smcore: warning: serving on 0.0.0.0 without TLS or --basic-auth: anyone who can reach "
        "this port sees the dashboard and its data"
    ) in err


def test_basic_auth_argument_forms(tmp_path):
    from dashboard.server import parse_basic_auth

    assert parse_basic_auth("alice:s3:cret") == {"alice": "s3:cret"}
    accounts = tmp_path / "users.json"
    accounts.write_text('{"alice": "s3cret", "bob": "pw"}')
    assert parse_basic_auth(str(accounts)) == str(accounts.resolve())
    for bad in ("justapassword", ":pw", "alice:"):
        with pytest.raises(ConfigError, match="--basic-auth"):
            parse_basic_auth(bad)
    accounts.write_text('["alice"]')
    with pytest.raises(ConfigError, match="expected a JSON object"):
        parse_basic_auth(str(accounts))


def test_basic_auth_asks_for_a_login(served_workdir, stopped):
    server = serve(served_workdir.root, port=_free_port(), start=False, basic_auth="alice:s3cret")
    stopped(server)
    server.start()
    page = _fetch(server, "/")
    assert page.code == 302 and "login" in page.headers["Location"]
    wrong = _fetch(server, "/login", method="POST", body="username=alice&password=nope")
    assert wrong.code == 302 and "error" in wrong.headers["Location"]
    assert "user=" not in ";".join(wrong.headers.get_list("Set-Cookie"))
    good = _fetch(server, "/login", method="POST", body="username=alice&password=s3cret")
    assert good.code == 302 and good.headers["Location"] == "/"
    cookies = "; ".join(c.split(";")[0] for c in good.headers.get_list("Set-Cookie"))
    assert "user=" in cookies
    assert _fetch(server, "/", headers={"Cookie": cookies}).code == 200


def test_bokeh_resources_cannot_switch_the_page_to_a_cdn(served_workdir, stopped, monkeypatch):
    from bokeh.settings import settings

    monkeypatch.setenv("BOKEH_RESOURCES", "cdn")
    try:
        server = serve(served_workdir.root, port=_free_port(), start=False)
        stopped(server)
        server.start()
        page = _fetch(server, "/")
        assert page.code == 200
        html = page.body.decode()
        assert "bokeh" in html and "/static/" in html
        for cdn in ("cdn.bokeh.org", "cdn.holoviz.org", "cdn.jsdelivr.net", "unpkg.com"):
            assert cdn not in html, cdn
    finally:
        settings.resources.unset_value()


# -- the tabs drawn ahead of the first visitor -----------------------------------------------
def test_prerender_leaves_every_tab_of_a_new_session_to_copy(served_workdir, fresh_panel):
    from bokeh.document import Document

    from dashboard.app import App, prerender
    from dashboard.live import RENDERS

    RENDERS.clear()
    steps = list(prerender(served_workdir.root))
    titles = [view.title for view in App(served_workdir.root).views]
    assert [title for title, _ in steps] == titles + [f"{t} (albers)" for t in titles]
    drawn = RENDERS.misses
    assert drawn >= 30  # maps, heat maps, diagrams and series of every tab, in two projections
    hits = RENDERS.hits
    app = App(served_workdir.root)
    for view in app.views:
        view.__panel__().get_root(Document())
        assert not view.missing, view.title
    assert RENDERS.misses == drawn  # the visitor's figures: copies, none rendered
    assert RENDERS.hits - hits >= 15
    # and after the visitor's switch of projection: the maps on display and every tab shown later
    app.store.projection = "albers"
    for view in app.views:
        view.__panel__().get_root(Document())
        assert not view.missing, view.title
    assert RENDERS.misses == drawn


def test_the_server_draws_the_tabs_after_its_warm_up(served_workdir, stopped):
    import time

    from dashboard.live import RENDERS

    RENDERS.clear()
    server = serve(served_workdir.root, port=_free_port(), start=False, prerender=True)
    stopped(server)

    async def drawn() -> None:
        import asyncio

        t0 = time.monotonic()
        while RENDERS.misses < 15 and time.monotonic() - t0 < 120:
            await asyncio.sleep(0.2)

    server.io_loop.run_sync(drawn, timeout=150)
    assert RENDERS.misses >= 15
    RENDERS.clear()


class _Loop:
    """A server's event loop that keeps its callbacks until the test runs them."""

    def __init__(self):
        self.queue = []

    def add_callback(self, fn, *args):
        self.queue.append((fn, args))

    def run(self):
        while self.queue:
            fn, args = self.queue.pop(0)
            fn(*args)


def test_a_visitor_stops_the_drawing_ahead(served_workdir, fresh_panel):
    """Once a page has begun, the tabs are no longer drawn for nobody (the visitor would wait
    behind them)."""
    from dashboard.app import create_app
    from dashboard.live import RENDERS
    from dashboard.server import _prerender

    from dashboard.app import sessions_started

    RENDERS.clear()
    loop = _Loop()
    _prerender(loop, served_workdir.root, sessions_started())  # a tab, the next one queued
    first = RENDERS.misses
    assert first > 0 and len(loop.queue) == 1
    create_app(served_workdir.root)  # a visitor's page
    fn, args = loop.queue.pop()
    fn(*args)
    assert RENDERS.misses == first and loop.queue == []
    # a page begun before the warm-up ended (counted after serve() started) stops it too
    RENDERS.clear()
    _prerender(loop, served_workdir.root, sessions_started() - 1)
    assert RENDERS.misses == 0 and loop.queue == []


def test_a_tab_whose_files_appear_is_drawn_again_for_its_next_visitor(
    served_workdir, fresh_panel, tmp_path
):
    """While a pipeline fills the work directory, the server draws each tab whose files
    appeared or changed for nobody, so that the visitor who opens it next gets copies."""
    import shutil

    from bokeh.document import Document

    from dashboard.app import App
    from dashboard.live import RENDERS
    from dashboard.server import _DrawChanged
    from dashboard.views import TABS

    root = tmp_path / "w"
    shutil.copytree(served_workdir.root, root)
    held = tmp_path / "analysis"
    (root / "analysis").rename(held)  # the pipeline has not analysed yet
    loop = _Loop()
    drawer = _DrawChanged(loop, root)
    drawer.check()  # the stamps when the server begins to look
    drawer.check()
    assert loop.queue == []  # nothing changed, nothing drawn
    held.rename(root / "analysis")  # the analysis appears
    RENDERS.clear()
    drawer.check()
    loop.run()
    drawn = RENDERS.misses
    assert drawn >= 2 and drawer.steps is None
    drawer.check()
    assert loop.queue == []  # drawn once per change
    hits = RENDERS.hits
    for key in ("trends", "change_rates"):
        view = App(root).views[[tab.key for tab in TABS].index(key)]
        view.__panel__().get_root(Document())
        assert not view.missing, key
    assert RENDERS.misses == drawn and RENDERS.hits > hits  # the visitor's figures: copies


# -- what one visitor's work costs the others -------------------------------------------------
def test_one_visitors_work_sends_nothing_to_another_visitors_page(served_workdir, fresh_panel):
    """Panel's busy state is one for the whole process: an indicator that follows it would be
    patched in every open page whenever any page (or its timer) runs a callback."""
    from bokeh.document import Document
    from panel.util.parameters import edit_readonly

    from dashboard.app import create_app

    docs = []
    for _ in range(2):
        doc = Document()
        create_app(served_workdir.root).server_doc(doc)
        docs.append(doc)
    changes: list[object] = []
    for doc in docs:
        doc.callbacks.on_change(changes.append)
    for busy in (True, False):
        with edit_readonly(pn.state):
            pn.state.busy = busy  # what Panel does around a callback of some page
    assert changes == []


def test_a_page_collects_its_models_once(served_workdir, fresh_panel, model_walks):
    """Bokeh collects a document's models again after each change; the page is made as one."""
    import bokeh.model.util as model_util
    from bokeh.document import Document

    from dashboard.app import create_app

    doc = Document()
    create_app(served_workdir.root).server_doc(doc)
    assert model_walks[0] == 1
    everything = model_util.collect_models(*doc.roots)
    assert len(everything) > 100
    assert {m.id for m in doc.models} == {m.id for m in everything}


def test_a_tab_switch_prepares_and_collects_the_page_once(
    served_workdir, fresh_panel, monkeypatch, model_walks
):
    """A click on a tab (the browser's ``active``): Panel's page-wide preparation (links,
    theme) and Bokeh's collection of the document's models run once each, and the document
    then holds exactly the models under its roots, the new tab's plots among them."""
    import bokeh.model.util as model_util
    from bokeh.document import Document
    from bokeh.models import Plot, Tabs
    from panel.io.state import set_curdoc
    from panel.viewable import Renderable

    from dashboard.app import App

    preparations = [0]
    preprocess = Renderable._preprocess

    def counted_preparation(self, *args, **kwargs):
        preparations[0] += 1
        return preprocess(self, *args, **kwargs)

    monkeypatch.setattr(Renderable, "_preprocess", counted_preparation)
    doc = Document()
    app = App(served_workdir.root)
    app.template().server_doc(doc)
    tabs = app._tabs
    (model,) = doc.select({"type": Tabs})
    for title in ("Evaluation", "Future trends", "Explorer"):
        model_walks[0] = preparations[0] = 0
        with set_curdoc(doc):
            tabs._process_events({"active": tabs._names.index(title)})  # as a click sends it
        assert (model_walks[0], preparations[0]) == (1, 1), title
        everything = model_util.collect_models(*doc.roots)
        assert {m.id for m in doc.models} == {m.id for m in everything}
        assert model.tabs[tabs.active].child.select({"type": Plot}), title


def test_a_served_page_reads_a_new_month_off_the_event_loop(
    served_workdir, fresh_panel, stopped, monkeypatch, load_client
):
    """A month's maps take a moment to decompress: in a served page the month slider's read
    runs on the loader thread, so that the server's one event loop goes on with the other
    pages, and the map still arrives with the new month. A browser speaks through the load
    generator's protocol client."""
    import threading

    from dashboard import loaders

    reads: list[tuple[int, str]] = []
    product_month = loaders.product_month

    def recorded(root, experiment, index, *args, **kwargs):
        reads.append((index, threading.current_thread().name))
        return product_month(root, experiment, index, *args, **kwargs)

    monkeypatch.setattr(loaders, "product_month", recorded)
    server = serve(served_workdir.root, port=_free_port(), start=False, prerender=False)
    stopped(server)
    event_loop = threading.current_thread().name  # run_sync runs the server's loop here

    async def visit() -> tuple[int, str, str]:
        session = load_client.Session(f"ws://127.0.0.1:{server.port}/ws", 120)
        await session.open()
        await session.until(lambda: session.figure("CMIP6_DL ·") is not None, "page")
        slider = session.slider("Month")
        target = (int(slider.value) + 5) % (int(slider.end) + 1)
        month = load_client._shift_month(session.label("Month"), target - int(slider.value))
        session.set(slider, "value", target)
        session.set(slider, "value_throttled", target)
        await session.until(lambda: f" {month} " in session.title("CMIP6_DL ·") + " ", "month")
        session.close()
        return target, month, session.title("CMIP6_DL ·")

    server.start()
    target, month, title = server.io_loop.run_sync(visit, timeout=300)
    assert month in title
    # the month's block (a warm-up still running reads other months, on its own thread)
    threads = {name for index, name in reads if index == target}
    assert threads, f"month {target} was not read: {reads}"
    assert threads == {"smcore-loader_0"}, reads
    assert event_loop not in threads


def test_serve_skips_bokehs_page_checks_unless_asked(served_workdir, stopped, monkeypatch):
    """Bokeh's layout checks of each new page cost every visitor (and only log): the server
    skips them, unless ``BOKEH_VALIDATE_DOC`` asks for them."""
    from bokeh.settings import settings

    monkeypatch.delenv("BOKEH_VALIDATE_DOC", raising=False)
    stopped(serve(served_workdir.root, port=_free_port(), start=False, prerender=False))
    assert settings.perform_document_validation() is False
    settings.perform_document_validation.unset_value()
    monkeypatch.setenv("BOKEH_VALIDATE_DOC", "true")
    stopped(serve(served_workdir.root, port=_free_port(), start=False, prerender=False))
    assert settings.perform_document_validation() is True


def test_serve_runs_the_cycle_collector_less_often(served_workdir, stopped):
    """Each visitor's page and tabs would set off some 85 young collections with Python's
    defaults (700 new objects each); the server collects per 10,000."""
    import gc

    from dashboard.server import COLLECTOR_THRESHOLDS

    gc.set_threshold(700, 10, 10)
    stopped(serve(served_workdir.root, port=_free_port(), start=False, prerender=False))
    assert gc.get_threshold() == COLLECTOR_THRESHOLDS
    assert COLLECTOR_THRESHOLDS[0] >= 10 * 700


def test_the_page_and_each_tab_pass_bokehs_checks(served_workdir, fresh_panel):
    """What the server no longer checks per visitor is checked here: the page, then the page
    with each tab shown, has no error by Bokeh's validation."""
    from bokeh.core.validation.check import check_integrity
    from bokeh.document import Document
    from bokeh.models import Plot
    from panel.io.state import set_curdoc

    from dashboard.app import App

    doc = Document()
    app = App(served_workdir.root)
    app.template().server_doc(doc)
    checked = []
    with set_curdoc(doc):
        for index, title in enumerate(app._tabs._names):
            app._tabs.active = index
            models = set().union(*(root.references() for root in doc.roots))
            assert check_integrity(models).error == [], title
            checked.append(sum(isinstance(m, Plot) for m in models))
    assert len(checked) == len(app.views) and min(checked) > 0


def test_a_failure_while_the_page_is_held_leaves_it_collectable(fresh_panel):
    """Bokeh's own ``freeze()`` stays held when its block raises: the document would never
    collect its models again (new plots unknown to it, their changes never sent)."""
    from bokeh.document import Document
    from bokeh.models import Div

    from dashboard.app import collected_once

    doc = Document()
    with pytest.raises(RuntimeError), collected_once(doc, None, doc):
        doc.add_root(Div(text="a"))
        raise RuntimeError("a tab failed half-way")
    div = Div(text="b")
    doc.add_root(div)
    assert div.id in {m.id for m in doc.models}


def test_sigterm_stops_the_server_even_while_it_builds_a_page(tmp_path, load_client):
    """The signal lands while the event loop builds a page: the server still stops, with the
    usual one line and exit status, and no traceback."""
    import signal
    import subprocess
    import threading
    import time
    import urllib.request

    wd = make_workdir(tmp_path / "w")
    port = _free_port()
    log = tmp_path / "serve.log"
    proc = load_client.start_server(wd.root, port, log)  # `smcore serve`, answering
    try:

        def page() -> None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=60).read()
            except OSError:
                pass  # the server went away meanwhile

        threading.Thread(target=page, daemon=True).start()
        time.sleep(0.3)  # the page's session is being built on the event loop
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pass  # still running: the assertion below says so
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = log.read_text()
    assert proc.returncode == 128 + signal.SIGTERM, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    assert "smcore: interrupted by SIGTERM" in out
