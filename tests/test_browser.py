"""The dashboard in a real browser: Debian's chromium driven by Playwright (no browser download).

A deterministic synthetic work directory is served by ``smcore serve`` on a free localhost
port; the test opens every tab, moves the scenario slider, and checks that each tab draws
Bokeh canvases, that the console shows no error, that no request fails, and that every
request goes to the local server. One screenshot per tab is written to a temporary folder
(and also to ``$SMCORE_SCREENSHOTS`` when set).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from _dashboard_factories import make_workdir

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
    "Explorer": 3,
    "Evaluation": 5,
    "Regional series": 8,
    "Future trends": 7,
    "Change rates": 2,
    "Model": 1,
}

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
    wd = make_workdir(tmp_path_factory.mktemp("wd") / "work")
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
    try:
        _wait_until(
            lambda: proc.poll() is not None or _alive(f"http://127.0.0.1:{port}/liveness"),
            timeout=180,
            what="the dashboard server",
        )
        assert proc.poll() is None, f"server exited: {log.read_text()[-3000:]}"
        yield f"http://127.0.0.1:{port}", log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


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


def _click_map_and_export(page) -> pd.DataFrame:
    """Click the middle of the first map, then download the series CSV of the selected cell."""
    canvas = page.locator("canvas >> visible=true").first
    box = canvas.bounding_box()
    button = page.get_by_text("Series (CSV)").first

    def download() -> pd.DataFrame:
        with page.expect_download() as info:
            button.click()
        return pd.read_csv(info.value.path())

    before = download()
    page.mouse.click(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.5)
    after = before
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and after["lon"].iloc[0] == before["lon"].iloc[0]:
        time.sleep(0.5)
        after = download()
    assert (float(before["lon"].iloc[0]), float(before["lat"].iloc[0])) == (
        DEFAULT_PIXEL_SNAPPED_LON,
        DEFAULT_PIXEL_SNAPPED_LAT,
    )
    return after


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


def test_every_tab_renders_offline(server, tmp_path):
    base, log = server
    host = base.split("//", 1)[1]
    shots = tmp_path / "screenshots"
    shots.mkdir()
    requests: list[str] = []
    sockets: list[str] = []
    failed: list[str] = []
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1700})
            page.on("request", lambda r: requests.append(r.url))
            page.on("websocket", lambda ws: sockets.append(ws.url))
            page.on("requestfailed", lambda r: failed.append(f"{r.url} ({r.failure})"))
            page.on(
                "response",
                lambda r: failed.append(f"{r.url} (HTTP {r.status})") if r.status >= 400 else None,
            )
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.set_default_timeout(90_000)
            page.goto(base + "/", wait_until="load")

            rendered: dict[str, int] = {}
            for tab in TABS:
                page.locator(".bk-tab", has_text=tab).first.click()
                page.get_by_text(TAB_TEXT[tab]).first.wait_for(state="visible")
                rendered[tab] = _settle(page, MIN_CANVASES[tab])
                if tab == "Explorer":
                    clicked = _click_map_and_export(page)
                if tab == "Future trends":
                    _move_scenario_slider(page)
                    rendered[tab] = _settle(page, MIN_CANVASES[tab])
                page.screenshot(path=str(shots / f"{tab.lower().replace(' ', '_')}.png"))
        finally:
            browser.close()

    server_log = log.read_text()
    assert "Traceback" not in server_log, server_log[-4000:]
    assert not errors, f"console errors: {errors}"
    assert not failed, f"failed requests: {failed}"
    foreign = [
        u for u in requests if not (u.startswith(base + "/") or u.startswith(("data:", "blob:")))
    ]
    assert not foreign, f"requests leaving the server: {foreign}"
    assert sockets and all(s.startswith(f"ws://{host}/") for s in sockets), sockets
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
