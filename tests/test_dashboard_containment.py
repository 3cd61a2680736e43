"""A broken artifact stays in its tab: an error panel naming the file and the problem, the
other tabs and the warm-up keep working, one log line (the traceback only with ``--debug``),
and every artifact value shown as text or Markdown is escaped (issue 16, item 3)."""

from __future__ import annotations

import html
import json
import logging
import re
import shutil

import holoviews as hv
import netCDF4
import numpy as np
import pandas as pd
import panel as pn
import pytest
from bokeh.document import Document

from dashboard import loaders

hv.extension("bokeh", logo=False)

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(autouse=True)
def _fresh(fresh_panel):
    yield
    from dashboard.contain import set_debug

    set_debug(False)


@pytest.fixture
def root(dashboard_workdir, tmp_path):
    """A private copy of the synthetic work directory, to break."""
    return shutil.copytree(dashboard_workdir.root, tmp_path / "w")


def _render(viewable):
    """The Bokeh models of ``viewable``, as a session's page would hold them."""
    return viewable.get_root(Document())


def _alerts(viewable) -> str:
    """The text of every alert (error panel, notice) shown in ``viewable``."""
    return "\n".join(
        str(a.object) for a in viewable.select(pn.pane.Alert) if a.visible and a.object
    )


def _page_html(root) -> str:
    """What the browser puts into the page for the Markdown and HTML panes under ``root``.

    Panel sends a pane's HTML escaped once in the model's ``text``; the browser unescapes it
    and inserts the result as HTML.
    """
    from bokeh.models import Markup

    return "\n".join(
        html.unescape(str(m.text or "")) for m in root.references() if isinstance(m, Markup)
    )


def _app(root):
    from dashboard.app import App

    app = App(root)
    app.tabs()
    return app


def _view(app, title):
    return next(v for v in app.views if v.title == title)


def _working(app, titles):
    """Build the tabs ``titles``: each shows its content, no error, no notice."""
    for title in titles:
        view = _view(app, title)
        _render(view.__panel__())
        assert not view.missing and not view.problems, (title, _alerts(view.__panel__()))
        assert not isinstance(view.content, pn.pane.Alert), title


def _last_july(path) -> int:
    with netCDF4.Dataset(path) as nc:
        time = netCDF4.num2date(nc["time"][:], nc["time"].units, nc["time"].calendar)
    return max(k for k, t in enumerate(time) if t.month == 7)


def _no_traceback(caplog) -> None:
    for record in caplog.records:
        assert record.exc_info is None, record.getMessage()
        assert "Traceback" not in record.getMessage()


# -- corrupted data chunks ------------------------------------------------------------------
def test_a_corrupted_product_month_is_shown_in_the_explorer_only(root, caplog):
    from tests.factories.dashboard import corrupt_compressed_chunk

    path = root / "product" / "CMIP6_DL_historical.nc"
    corrupt_compressed_chunk(path, "ssm", (_last_july(path), 0, 0))  # the month shown first
    caplog.set_level(logging.WARNING)
    app = _app(root)
    explorer = _view(app, "Explorer")
    _render(explorer.__panel__())
    text = _alerts(explorer.__panel__())
    assert "CMIP6_DL_historical.nc" in text and "cannot read month" in text, text
    assert not explorer.missing  # the slider stays: another month can be shown
    _working(app, ["Evaluation", "Future trends", "Change rates", "Model", "Regional series"])
    # another month (another chunk) reads, and its notice goes away (the default cell's
    # series crosses the broken chunk too: that notice stays)
    assert "read of the month's maps" in explorer.problems
    app.store.month = "2001-01"
    assert "read of the month's maps" not in explorer.problems
    assert np.isfinite(explorer._dl.image).any()
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("CMIP6_DL_historical.nc" in m and "--debug" in m for m in messages), messages
    _no_traceback(caplog)


def test_a_corrupted_chunk_met_while_updating_the_explorer(root, caplog):
    from tests.factories.dashboard import corrupt_compressed_chunk

    path = root / "product" / "CMIP6_DL_historical.nc"
    where = corrupt_compressed_chunk(path, "ssm", (0, 0, 0))  # 2000-01..2001-12, a corner
    caplog.set_level(logging.WARNING)
    app = _app(root)
    explorer = _view(app, "Explorer")
    _render(explorer.__panel__())
    store = app.store
    good_month = store.month
    body = explorer.content
    maps = "read of the month's maps"
    assert maps not in explorer.problems
    # the month slider moves to a month in the broken chunk: a notice, the tab stays usable
    store.month = "2000-03"
    text = _alerts(explorer.__panel__())
    assert "CMIP6_DL_historical.nc" in text and "2000-03" in text, text
    assert explorer.content is body and not explorer.missing
    assert maps in explorer.problems
    store.month = good_month
    assert maps not in explorer.problems
    # a click on a cell whose series crosses the broken chunk: the series says why
    with netCDF4.Dataset(path) as nc:
        lat, lon = nc["lat"][:], nc["lon"][:]
        ssm = nc["ssm"][_last_july(path)]
    land = np.argwhere(~np.ma.getmaskarray(ssm) & np.isfinite(np.ma.filled(ssm, np.nan)))
    inside = [(i, j) for i, j in land if i < where[1].stop and j < where[2].stop]
    i, j = inside[0]
    explorer._on_tap(float(lon[j]), float(lat[i]))
    text = _alerts(explorer.__panel__())
    assert "CMIP6_DL_historical.nc" in text and "series of cell" in text, text
    assert explorer._series.figure.title.text.startswith("cannot read this cell")
    # the other tabs are not affected
    _working(app, ["Evaluation", "Model"])
    _no_traceback(caplog)


def test_a_corrupted_maps_nc_is_shown_in_the_evaluation_tab(root, caplog):
    from tests.factories.dashboard import corrupt_compressed_chunk

    corrupt_compressed_chunk(root / "evaluation" / "maps.nc", "mae")
    caplog.set_level(logging.WARNING)
    app = _app(root)
    evaluation = _view(app, "Evaluation")
    _render(evaluation.__panel__())
    assert evaluation.missing and isinstance(evaluation.content, pn.pane.Alert)
    text = evaluation.content.object
    assert "maps.nc" in text and "cannot read NetCDF" in text and "cannot show the data" in text
    _working(app, ["Explorer", "Future trends", "Model"])
    _no_traceback(caplog)


def test_the_warm_up_goes_on_past_broken_files(root):
    from tests.factories.dashboard import corrupt_compressed_chunk

    path = root / "product" / "CMIP6_DL_historical.nc"
    corrupt_compressed_chunk(path, "ssm", (_last_july(path), 0, 0))
    corrupt_compressed_chunk(root / "evaluation" / "maps.nc", "mae")
    text = (root / "evaluation" / "metrics.csv").read_text()
    (root / "evaluation" / "metrics.csv").write_text(text[: len(text) // 2])
    spent = loaders.warm_up(root)  # raises nothing
    assert {"store", "evaluation/maps.nc", "default month ssp585"} <= set(spent)
    # what the warm-up could read is in the cache
    assert loaders.read_csv(root, "analysis/change_rates.csv") is loaders.read_csv(
        root, "analysis/change_rates.csv"
    )


# -- truncated and unexpected files ---------------------------------------------------------
def test_a_truncated_csv_is_shown_in_its_tab(root, caplog):
    for rel in ("evaluation/metrics.csv", "analysis/change_rates.csv"):
        text = (root / rel).read_text()
        (root / rel).write_text(text[: len(text) // 2 + 3])  # cut in the middle of a line
    caplog.set_level(logging.WARNING)
    app = _app(root)
    for title, name in (("Evaluation", "metrics.csv"), ("Change rates", "change_rates.csv")):
        view = _view(app, title)
        _render(view.__panel__())
        assert view.missing and isinstance(view.content, pn.pane.Alert), title
        text = view.content.object
        assert name in text and "truncated" in text, text
    _working(app, ["Explorer", "Regional series", "Future trends", "Model"])
    _no_traceback(caplog)


@pytest.mark.parametrize(
    ("summary", "problem"),
    [
        ({"best_epoch": "twelve"}, "'best_epoch' is 'twelve'"),
        ({"n_parameters": {"a": 1}}, "'n_parameters' is {'a': 1}"),
        ([1, 2], "expected a JSON object"),
        ('{"best_epoch": 1', "cannot read JSON"),
    ],
    ids=["string-epoch", "dict-count", "list", "truncated"],
)
def test_an_unexpected_summary_value_is_shown_in_the_model_tab(root, summary, problem, caplog):
    path = root / "training" / "summary.json"
    if isinstance(summary, str):
        path.write_text(summary)
    else:
        full = json.loads(path.read_text())
        path.write_text(json.dumps({**full, **summary} if isinstance(summary, dict) else summary))
    caplog.set_level(logging.WARNING)
    app = _app(root)
    model = _view(app, "Model")
    doc = _render(model.__panel__())
    text = _alerts(model.__panel__())
    assert "summary.json" in text and problem in html.unescape(_page_html(doc)), text
    # the loss curves and the configuration are still there
    assert model.content.select(pn.pane.HoloViews) and model.content.select(pn.pane.JSON)
    _working(app, ["Explorer", "Evaluation"])
    _no_traceback(caplog)


# -- escaping -------------------------------------------------------------------------------
def _tags(page: str) -> set[str]:
    return {t.lower() for t in re.findall(r"<\s*([a-zA-Z]+)", page)}


def test_summary_values_render_as_text(root):
    path = root / "training" / "summary.json"
    summary = json.loads(path.read_text())
    summary.update(device=XSS, amp="**bold** [link](javascript:alert(1)) `code` | cell")
    path.write_text(json.dumps(summary))
    manifest = json.loads((root / "prepared" / "manifest.json").read_text())
    manifest["excluded"] = {"<b>X</b>": "<script>alert(2)</script>"}
    (root / "prepared" / "manifest.json").write_text(json.dumps(manifest))
    app = _app(root)
    model = _view(app, "Model")
    page = _page_html(_render(model.__panel__()))
    assert "img" not in _tags(page) and "script" not in _tags(page) and "a" not in _tags(page)
    assert "&lt;img src=x onerror=alert(1)&gt;" in page  # shown as the characters
    assert "**bold**" in page and "&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert "javascript:" not in re.sub(r"\[link\]\(javascript:alert\(1\)\)", "", page)


def test_a_value_in_an_error_message_renders_as_text(root):
    path = root / "training" / "summary.json"
    summary = json.loads(path.read_text())
    summary["epochs_run"] = XSS  # refused (not a number): the error panel quotes it
    path.write_text(json.dumps(summary))
    app = _app(root)
    model = _view(app, "Model")
    page = _page_html(_render(model.__panel__()))
    assert "'epochs_run' is" in page and "img" not in _tags(page)
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_attributes_of_evaluation_files_render_as_text(root):
    with netCDF4.Dataset(root / "evaluation" / "maps.nc", "a") as nc:
        nc.setncattr("test_period", XSS)
    app = _app(root)
    evaluation = _view(app, "Evaluation")
    page = _page_html(_render(evaluation.__panel__()))
    assert not evaluation.missing
    assert "img" not in _tags(page) and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_escape_markdown_and_code_span():
    from dashboard.contain import code_span, escape_markdown

    assert escape_markdown(XSS) == "&lt;img src=x onerror=alert(1)&gt;"
    assert escape_markdown("a*b_c`d[e](f)|g\nh") == r"a\*b\_c\`d\[e\](f)\|g h"
    assert escape_markdown("x" * 10, max_len=5) == "xxxx…"
    assert code_span("a`b") == "``a`b``" and code_span("`x") == "`` `x ``"
    md = pn.pane.Markdown(f"{escape_markdown(XSS)} {code_span(XSS)}")
    page = _page_html(_render(md))
    assert "img" not in _tags(page) and page.count("&lt;img src=x onerror=alert(1)&gt;") == 2


def test_station_names_render_as_text(root, monkeypatch):
    from dashboard.stations import StationLayer
    from smcore.workdir import WorkDir
    from tests.factories import stations as factory

    monkeypatch.setattr(factory, "STATIONS", (("SYNTH-NCP", XSS, 36.8, 116.6, -0.02),))
    factory.add_stations(WorkDir(root))
    layer = StationLayer(root, contained=lambda source, fn, default=None: fn())
    assert layer.available and layer.names() == [f"SYNTH-NCP/{XSS}"]
    layer.select(0)
    page = _page_html(_render(layer.caption))
    assert "img" not in _tags(page) and "&lt;img src=x onerror=alert(1)&gt;" in page


# -- the log --------------------------------------------------------------------------------
def test_a_contained_failure_is_one_line_and_the_traceback_needs_debug(root, caplog):
    from dashboard.contain import set_debug

    (root / "evaluation" / "metrics.csv").write_text("product,MAE\nCMIP6_DL,0.0")
    caplog.set_level(logging.WARNING)
    app = _app(root)
    _render(_view(app, "Evaluation").__panel__())
    records = [r for r in caplog.records if "metrics.csv" in r.getMessage()]
    assert len(records) == 1 and records[0].exc_info is None
    assert "\n" not in records[0].getMessage() and "--debug" in records[0].getMessage()
    caplog.clear()
    loaders.clear_caches()
    set_debug(True)
    app = _app(root)
    _render(_view(app, "Evaluation").__panel__())
    records = [r for r in caplog.records if "metrics.csv" in r.getMessage()]
    assert records and records[0].exc_info is not None  # --debug: with the traceback


def test_serve_debug_option_reaches_the_server(root, capsys, monkeypatch):
    import dashboard.server
    from smcore.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    assert main(["serve", "--help"]) == 0
    assert "--debug" in capsys.readouterr().out
    seen = []
    monkeypatch.setattr(dashboard.server, "serve", lambda *a, **kw: seen.append(kw["debug"]))
    for argv in (["serve"], ["serve", "--debug"], ["--debug", "serve"]):
        assert main([*argv, "--workdir", str(root)]) == 0
    assert seen == [False, True, True]


def test_the_page_of_a_broken_work_directory_is_still_served(root):
    """The first session of a work directory whose every tab is broken still shows the page."""
    from dashboard.app import create_app

    for rel in ("evaluation/metrics.csv", "analysis/change_rates.csv", "training/history.csv"):
        (root / rel).write_text("x,y\n1,")
    (root / "training" / "summary.json").write_text("{")
    template = create_app(root)
    _render(template.main[0])
    assert isinstance(template.main[0], pn.Tabs)
    assert pd.read_csv(root / "analysis" / "area_fractions.csv").shape[0] > 0
