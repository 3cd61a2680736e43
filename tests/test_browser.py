"""The dashboard in a real browser: Debian's chromium driven by Playwright (no browser download).

A deterministic synthetic work directory is served by ``smcore serve`` on a free localhost
port, first as a pipeline still writing it: ``evaluation/`` is held back while
``.stamps/running.json`` says ``evaluate`` runs; the page must answer, say so, and fill the
Evaluation tab in without a reload when the folder appears. Then the test opens every tab,
clicks a map cell (also in the Albers projection), moves the scenario slider, turns on the
presentation mode, and checks that each tab draws Bokeh canvases, that the console shows no
error, that no request fails, and that every request goes to the local server. Another test
clicks an ISMN station on the Explorer's map (its series and scores appear) and downloads the
box the map shows (``smcore export``'s file). One screenshot
per tab is written to a temporary folder (and also to ``$SMCORE_SCREENSHOTS`` when set). A last
test measures on a rendered PNG how much of a small trend map the significance dots cover.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.factories.dashboard import make_workdir, study_grid_field
from tests.factories.stations import add_stations

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TABS = ["Explorer", "Evaluation", "Regional series", "Future trends", "Change rates", "Model"]
# text each tab shows once its content arrived (DOM text, not canvas text)
TAB_TEXT = {
    "Explorer": "Click a cell",
    "Evaluation": "Metrics (Table 2 and baselines)",
    "Regional series": "Regional means over each climate region",
    "Future trends": "Share of land with a significant trend",
    "Change rates": "Change of mean SSM relative to the historical baseline",
    "Model": "Configuration",
}
# a canvas-free tab would pass vacuously; each of these draws at least this many Bokeh plots
MIN_CANVASES = {
    "Explorer": 4,
    "Evaluation": 5,
    "Regional series": 8,
    "Future trends": 7,
    "Change rates": 2,
    "Model": 1,
}

# share of a small map's pixels the significance dots may change on the rendered PNG
# (STIPPLE_MAX_COVER of the dots' geometry, plus their anti-aliased rims)
PNG_MAX_COVER = 0.12

# the explorer's first cell: DEFAULT_PIXEL snapped to the small test grid (1.125°)
DEFAULT_PIXEL_SNAPPED_LON, DEFAULT_PIXEL_SNAPPED_LAT = 116.0, 39.375

if CHROMIUM is None:
    pytest.skip(
        "no chromium binary (CI installs Debian's chromium; `apt-get install chromium`)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until(predicate, timeout: float, what: str, interval: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _alive(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The dashboard of a work directory whose pipeline is still at ``evaluate``."""
    wd = make_workdir(tmp_path_factory.mktemp("wd") / "work")
    stations = add_stations(wd)  # ISMN station results: points on the maps
    staged = tmp_path_factory.mktemp("staged") / "evaluation"
    shutil.move(wd.root / "evaluation", staged)
    # a live process stands for `smcore run`, busy with the evaluation
    pipeline = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    (wd.root / ".stamps").mkdir(exist_ok=True)
    running = wd.root / ".stamps" / "running.json"

    def evaluation_at(step: int) -> None:
        """What `smcore evaluate`'s progress bar writes when it is at ``step`` of 6."""
        bar = {"desc": "evaluate", "n": step, "total": 6, "unit": "it", "elapsed": 30.0 * step}
        state = {"step": "evaluate", "pid": pipeline.pid, "started": time.time(), "progress": [bar]}
        tmp = running.with_name(".running.json.tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(running)

    evaluation_at(2)
    port = _free_port()
    log = tmp_path_factory.mktemp("log") / "serve.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "smcore",
                "serve",
                "--workdir",
                str(wd.root),
                "--port",
                str(port),
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=Path(__file__).resolve().parent.parent,
        )

    def finish_evaluation() -> None:
        """What `smcore evaluate` does when it ends: its folder appears, the step is over."""
        if staged.exists():
            shutil.move(staged, wd.root / "evaluation")
        pipeline.kill()
        pipeline.wait()

    finish_evaluation.at = evaluation_at  # the step's progress, moved on by the test

    try:
        _wait_until(
            lambda: proc.poll() is not None or _alive(f"http://127.0.0.1:{port}/liveness"),
            timeout=180,
            what="the dashboard server",
        )
        assert proc.poll() is None, f"server exited: {log.read_text()[-3000:]}"
        yield f"http://127.0.0.1:{port}", log, finish_evaluation, (wd, stations)
    finally:
        pipeline.kill()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


class _Watch:
    """A page with listeners for console errors, failed and foreign requests, navigations."""

    def __init__(self, browser, base: str) -> None:
        self.base = base
        self.requests: list[str] = []
        self.sockets: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        self.navigations: list[str] = []
        page = browser.new_page(viewport={"width": 1500, "height": 1700})
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("websocket", lambda ws: self.sockets.append(ws.url))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url} ({r.failure})"))
        page.on(
            "response",
            lambda r: self.failed.append(f"{r.url} (HTTP {r.status})") if r.status >= 400 else None,
        )
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on(
            "framenavigated",
            lambda f: self.navigations.append(f.url) if f == page.main_frame else None,
        )
        page.set_default_timeout(90_000)
        self.page = page

    def check(self, log: Path) -> None:
        host = self.base.split("//", 1)[1]
        server_log = log.read_text()
        assert "Traceback" not in server_log, server_log[-4000:]
        assert not self.errors, f"console errors: {self.errors}"
        assert not self.failed, f"failed requests: {self.failed}"
        foreign = [
            u
            for u in self.requests
            if not (u.startswith(self.base + "/") or u.startswith(("data:", "blob:")))
        ]
        assert not foreign, f"requests leaving the server: {foreign}"
        assert self.sockets and all(s.startswith(f"ws://{host}/") for s in self.sockets)


@contextlib.contextmanager
def _browse(base: str) -> Iterator[_Watch]:
    """Chromium on the served page, with its listeners; closed at the end."""
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            watch = _Watch(browser, base)
            watch.page.goto(base + "/", wait_until="load")
            yield watch
        finally:
            browser.close()


def _visible_canvases(page) -> int:
    return page.locator("canvas >> visible=true").count()


def _settle(page, minimum: int, timeout: float = 90) -> int:
    """Wait until at least ``minimum`` visible canvases exist and their count stops changing."""
    counts: list[int] = []

    def stable() -> bool:
        counts.append(_visible_canvases(page))
        return counts[-1] >= minimum and len(counts) >= 4 and len(set(counts[-4:])) == 1

    _wait_until(stable, timeout, f"{minimum} canvases (saw {counts[-1:] or 0})", interval=0.3)
    return counts[-1]


def _export_series(page) -> pd.DataFrame:
    """The selected cell's series, downloaded with the Explorer's CSV button."""
    with page.expect_download() as info:
        page.get_by_text("Series (CSV)").first.click()
    return pd.read_csv(info.value.path())


def _click_map(page, fx: float, fy: float, before: pd.DataFrame) -> pd.DataFrame:
    """Click the first map at (fx, fy) of its canvas; the series export of the new cell."""
    box = page.locator("canvas >> visible=true").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
    after = before
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (
        (after["lon"].iloc[0], after["lat"].iloc[0])
        == (before["lon"].iloc[0], before["lat"].iloc[0])
    ):
        time.sleep(0.5)
        after = _export_series(page)
    return after


def _click_map_and_export(page) -> pd.DataFrame:
    """Click the middle of the first map, then download the series CSV of the selected cell."""
    before = _export_series(page)
    assert (float(before["lon"].iloc[0]), float(before["lat"].iloc[0])) == (
        DEFAULT_PIXEL_SNAPPED_LON,
        DEFAULT_PIXEL_SNAPPED_LAT,
    )
    return _click_map(page, 0.45, 0.5, before)


def _visible_toolbars(page) -> int:
    return page.locator(".bk-Toolbar >> visible=true").count()


def _move_scenario_slider(page) -> None:
    """Press → on the scenario slider; wait for its label, then for the server's new land shares."""
    label = page.locator("#sidebar").get_by_text("Scenario:").first
    before = label.inner_text()
    shares = page.get_by_text(re.compile(r"^\s*\d+(\.\d+)? %\s*$"))
    shares_before = shares.all_inner_texts()
    assert len(shares_before) == 2, shares_before  # drying, wetting
    handle = page.locator("#sidebar .noUi-handle").first
    handle.focus()
    t0 = time.monotonic()
    handle.press("ArrowRight")
    _wait_until(lambda: label.inner_text() != before, 30, "the scenario label to change", 0.05)
    t_label = time.monotonic() - t0
    assert "SSP3-7.0" in label.inner_text(), label.inner_text()
    # the server answered: the land shares shown now are those of SSP3-7.0
    _wait_until(
        lambda: shares.all_inner_texts() != shares_before,
        30,
        "the land shares to follow the scenario",
        0.05,
    )
    print(
        f"scenario change: slider label after {t_label:.2f} s, "
        f"server's answer shown after {time.monotonic() - t0:.2f} s"
    )


def _sidebar_says(page, text: str, timeout: float = 30) -> None:
    page.locator("#sidebar").get_by_text(text).first.wait_for(
        state="visible", timeout=timeout * 1000
    )


def test_the_page_answers_while_the_pipeline_runs(server):
    base, log, finish_evaluation, _ = server
    with _browse(base) as watch:
        page = watch.page
        _sidebar_says(page, "evaluation: running now (evaluate 2/6)", 60)
        _sidebar_says(page, "✔ products")
        finish_evaluation.at(3)  # the sidebar follows the step's progress bar
        _sidebar_says(page, "evaluation: running now (evaluate 3/6)")
        page.locator(".bk-tab", has_text="Evaluation").first.click()
        page.get_by_text("Evaluation: nothing to show yet").first.wait_for(state="visible")
        assert _visible_canvases(page) == 0
        finish_evaluation()
        # no reload: the session notices the new folder by itself
        page.get_by_text(TAB_TEXT["Evaluation"]).first.wait_for(state="visible", timeout=30_000)
        assert _settle(page, MIN_CANVASES["Evaluation"]) >= MIN_CANVASES["Evaluation"]
        _sidebar_says(page, "✔ evaluation")
        assert len(watch.navigations) == 1, watch.navigations
    watch.check(log)


def test_every_tab_renders_offline(server, tmp_path):
    base, log, finish_evaluation, _ = server
    finish_evaluation()  # whether or not the test above ran
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with _browse(base) as watch:
        page = watch.page
        rendered: dict[str, int] = {}
        for tab in TABS:
            page.locator(".bk-tab", has_text=tab).first.click()
            page.get_by_text(TAB_TEXT[tab]).first.wait_for(state="visible")
            rendered[tab] = _settle(page, MIN_CANVASES[tab])
            if tab == "Explorer":
                clicked = _click_map_and_export(page)
                _wait_until(lambda: _uncertainty_on_screen(page)["band"] > 0, 30, "the interval band")
                uncertainty = _uncertainty_on_screen(page)
            if tab == "Future trends":
                _move_scenario_slider(page)
                rendered[tab] = _settle(page, MIN_CANVASES[tab])
                marks = _marks_on_screen(page)
            page.screenshot(path=str(shots / f"{tab.lower().replace(' ', '_')}.png"))

        # the Albers projection: the maps redraw, a click still selects the cell under it
        page.locator(".bk-tab", has_text="Explorer").first.click()
        _settle(page, MIN_CANVASES["Explorer"])
        before = _export_series(page)
        page.locator("#sidebar select").last.select_option(label="Albers equal-area (China)")
        page.get_by_text("Maps: Albers equal-area conic").first.wait_for(state="visible")
        _settle(page, MIN_CANVASES["Explorer"])
        projected = _click_map(page, 0.6, 0.45, before)
        page.screenshot(path=str(tmp_path / "explorer_albers.png"))

        # presentation mode: no tool bar left on the page
        assert _visible_toolbars(page) > 0
        page.locator("#sidebar").get_by_text("Presentation mode").first.click()
        _wait_until(lambda: _visible_toolbars(page) == 0, 30, "the tool bars to go")
        _settle(page, MIN_CANVASES["Explorer"])

    watch.check(log)
    # the product's uncertainty: the interval width map and the cell's interval band, drawn
    assert any("90 % interval width" in t for t in uncertainty["maps"]), uncertainty
    assert uncertainty["band"] == len(clicked) == 120, uncertainty
    assert (clicked["CMIP6_DL_q05"] < clicked["CMIP6_DL"]).all()
    assert (clicked["CMIP6_DL"] < clicked["CMIP6_DL_q95"]).all()
    # the models' robustness on the trend maps: hatching and crosses drawn, the rule in the text
    assert marks["dash"] > 0 and marks["x"] > 0, marks
    plon, plat = float(projected["lon"].iloc[0]), float(projected["lat"].iloc[0])
    # a click mapped back from the conic's metres lands inside China, not on the grid's edge
    assert (plon, plat) != (float(before["lon"].iloc[0]), float(before["lat"].iloc[0]))
    assert 76 <= plon <= 132 and 21 <= plat <= 51, (plon, plat)
    for tab, n in rendered.items():
        assert n >= MIN_CANVASES[tab], (tab, n)
    # a click on the map selected another cell, whose series the CSV export holds
    assert list(clicked.columns[:3]) == ["time", "reference", "CMIP6_DL"], clicked.columns
    assert len(clicked) == 120 and clicked["CMIP6_DL"].notna().all()
    lon, lat = float(clicked["lon"].iloc[0]), float(clicked["lat"].iloc[0])
    assert (
        (lon, lat) != (DEFAULT_PIXEL_SNAPPED_LON, DEFAULT_PIXEL_SNAPPED_LAT)
        and 71 <= lon <= 137
        and 18 <= lat <= 54
    )
    assert sorted(p.name for p in shots.iterdir()) == sorted(
        f"{t.lower().replace(' ', '_')}.png" for t in TABS
    )
    target = os.environ.get("SMCORE_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        for png in shots.iterdir():
            shutil.copy(png, Path(target) / png.name)


def _marks_on_screen(page) -> dict[str, int]:
    """How many marks of each Scatter marker the visible plots draw (Bokeh's own models; a
    marker read from a column counts each drawn row's own)."""
    return page.evaluate(
        """() => {
          const out = {};
          for (const view of Bokeh.index.all_views()) {
            const glyph = view.model?.glyph;
            if (!glyph || glyph.type !== "Scatter" || !view.parent?.canvas_view) continue;
            const rect = view.parent.canvas_view.events_el.getBoundingClientRect();
            if (rect.width === 0 || rect.height === 0) continue;  // a map on a hidden tab
            const data = view.model.data_source.data;
            const xs = data.lon ?? data.x ?? [];
            const spec = glyph.marker;
            if (spec?.field !== undefined) {  // one glyph for several kinds of marks
              const kinds = data[spec.field];
              for (let i = 0; i < xs.length; i++) {
                if (Number.isFinite(xs[i])) out[kinds[i]] = (out[kinds[i]] ?? 0) + 1;
              }
              continue;
            }
            const marker = typeof spec === "string" ? spec : spec?.value;
            out[marker] = (out[marker] ?? 0) + xs.length;
          }
          return out;
        }"""
    )


def _uncertainty_on_screen(page) -> dict[str, object]:
    """What the visible Explorer draws of the product's uncertainty, by Bokeh's own models: the
    titles of plots with an image in the uncertainty colour map, and the number of finite
    points of a visible interval band (VArea)."""
    return page.evaluate(
        """() => {
          const out = {maps: [], band: 0};
          for (const view of Bokeh.index.all_views()) {
            const glyph = view.model?.glyph;
            if (!glyph || !view.parent?.canvas_view) continue;
            const rect = view.parent.canvas_view.events_el.getBoundingClientRect();
            if (rect.width === 0 || rect.height === 0 || !view.model.visible) continue;
            if (glyph.type === "VArea") {
              const d = view.model.data_source.data;
              let n = 0;
              for (let i = 0; i < d.lower.length; i++) {
                if (Number.isFinite(d.lower[i]) && Number.isFinite(d.upper[i])) n++;
              }
              out.band = Math.max(out.band, n);
            }
            if (glyph.type === "Image") {
              const title = view.parent.model.title?.text ?? "";
              if (title.includes("interval width")) out.maps.push(title);
            }
          }
          return out;
        }"""
    )


def _station_on_screen(page, index: int) -> tuple[float, float] | None:
    """Page coordinates of station ``index`` on the first visible map, by Bokeh's own scales."""
    return page.evaluate(
        """(index) => {
          for (const view of Bokeh.index.all_views()) {
            if (view.model?.name !== "stations" || !view.coordinates) continue;
            const plot = view.parent;
            const rect = plot.canvas_view.events_el.getBoundingClientRect();
            if (rect.width === 0 || rect.height === 0) continue;  // a map on a hidden tab
            const data = view.model.data_source.data;
            const sx = view.coordinates.x_scale.compute(data.x[index]);
            const sy = view.coordinates.y_scale.compute(data.y[index]);
            return [rect.left + sx, rect.top + sy];
          }
          return null;
        }""",
        index,
    )


def test_a_station_click_and_the_box_export(server, tmp_path):
    """Click a station on the Explorer's map: its series and scores show; then download the
    box the map shows, which is `smcore export`'s file of the product shown."""
    import numpy as np
    import xarray as xr

    base, log, finish_evaluation, (wd, stations) = server
    finish_evaluation()
    st = stations[0]
    with _browse(base) as watch:
        page = watch.page
        page.locator(".bk-tab", has_text="Explorer").first.click()
        page.get_by_text(TAB_TEXT["Explorer"]).first.wait_for(state="visible")
        _settle(page, MIN_CANVASES["Explorer"])
        page.get_by_text("click one on a map").first.wait_for(state="visible")
        where: list = []
        _wait_until(lambda: where.append(_station_on_screen(page, 0)) or where[-1], 30,
                    "the stations drawn on the map")
        x, y = where[-1]
        page.mouse.click(x, y)
        # the caption (not the hover tooltip, which names the station too)
        caption = page.get_by_text(
            re.compile(rf"Station {st.network}/{st.station} .* complete months")
        ).first
        caption.wait_for(state="visible", timeout=30_000)
        text = caption.inner_text()
        _settle(page, MIN_CANVASES["Explorer"] + 1)  # the station's series plot
        page.screenshot(path=str(tmp_path / "station.png"))

        with page.expect_download() as info:
            page.get_by_text("Box (NetCDF)").first.click()
        download = info.value
        box_file = tmp_path / download.suggested_filename
        download.save_as(box_file)
    watch.check(log)

    # the caption: the station's months and its CMIP6_DL scores, as in stations.csv
    scores = pd.read_csv(wd.evaluation / "stations.csv")
    row = scores[(scores.station == st.station) & (scores["product"] == "CMIP6_DL")].iloc[0]
    assert f"{int(row['months'])} complete months" in text, text
    assert f"bias {row['bias']:+.3f}" in text and f"r {row['r']:.2f}" in text, text
    # the box: the whole grid as first shown, the product's values, CF-1.8 with provenance
    head = box_file.read_bytes()[:300]
    assert not head.startswith(b"# cannot export"), head.decode(errors="replace")
    assert box_file.name.startswith("smcore_historical_") and box_file.suffix == ".nc"
    box = xr.open_dataset(box_file)
    product = xr.open_dataset(wd.product("historical"))
    assert "CF-1.8" in box.attrs["Conventions"] and box.attrs["product"] == "CMIP6_DL"
    for key in ("smcore_version", "models_used", "bbox", "smcore_config", "history"):
        assert box.attrs.get(key), key
    np.testing.assert_array_equal(box["lat"].values, product["lat"].values)
    np.testing.assert_array_equal(box["lon"].values, product["lon"].values)
    np.testing.assert_array_equal(
        box["ssm"].sel(experiment="historical").values, product["ssm"].values
    )


def test_significance_dots_cover_little_of_a_rendered_map():
    """On the PNG of a small trend map (every cell significant) the dots change few pixels."""
    import io

    import holoviews as hv
    import numpy as np
    from bokeh.embed import file_html
    from bokeh.models import Scatter
    from bokeh.resources import INLINE
    from PIL import Image

    from dashboard.app import configure
    from dashboard.config import SMALL_MAP_WIDTH
    from dashboard.maps import map_image
    from dashboard.views.trends import stipple_coords, trend_map

    configure()
    trend = study_grid_field(0.05)
    everywhere = trend.notnull()

    def pixels(page, overlay, dots: bool) -> np.ndarray:
        fig = hv.render(overlay)
        fig.toolbar_location = None
        for r in fig.renderers:
            if isinstance(r.glyph, Scatter):
                r.visible = dots
        page.set_content(file_html(fig, INLINE, "map"))
        canvas = page.locator("canvas").first
        canvas.wait_for()
        time.sleep(0.5)
        return np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("RGB"), dtype=int)

    def changed_share(page, overlay) -> float:
        with_dots, without = pixels(page, overlay, True), pixels(page, overlay, False)
        changed = np.abs(with_dots - without).max(axis=2) > 30
        coloured = (without < 245).any(axis=2)  # the map's colours (the frame)
        return float((changed & coloured).sum() / coloured.sum())

    small = trend_map(trend, everywhere, title="t", limit=0.1, width=SMALL_MAP_WIDTH, compact=True)
    # every cell significant and of no robust change, and a band of conflicting signals
    band = everywhere & (np.abs(trend["lat"] - 35) < 5)
    marked = trend_map(trend, everywhere, title="t", limit=0.1, width=SMALL_MAP_WIDTH,
                       compact=True, robustness=(everywhere & ~band, band))
    # the earlier stippling: a 1.6 px dot on every significant cell
    lon_all, lat_all = stipple_coords(everywhere, stride=1)
    earlier = map_image(
        trend, title="t", cmap="BrBG", clim=(-0.1, 0.1), clabel="trend",
        width=SMALL_MAP_WIDTH, compact=True,
    ) * hv.Points((lon_all, lat_all), kdims=["lon", "lat"]).opts(
        color="#1a1a1a", size=1.6, alpha=0.55
    )  # fmt: skip
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 500, "height": 400})
            share = changed_share(page, small)
            old_share = changed_share(page, earlier)
            marked_share = changed_share(page, marked)
        finally:
            browser.close()
    print(f"significance dots change {share:.1%} of the map's pixels (earlier: {old_share:.1%})")
    print(f"with the robustness marks: {marked_share:.1%}")
    assert 0.005 < share <= PNG_MAX_COVER
    assert share < marked_share <= PNG_MAX_COVER
    assert old_share > PNG_MAX_COVER  # the check fails on the earlier maps
