"""Serve a work directory and save a PNG of every dashboard tab, timing each tab in a browser.

Usage::

    .venv/bin/python benchmarks/screenshots.py --workdir demo/work [--out docs/screenshots]
        [--projection albers] [--presentation] [--port 5007]

Starts ``smcore serve`` on a free localhost port, opens the page in Debian's chromium with
Playwright (``/usr/bin/chromium``; nothing is downloaded), clicks each tab, waits until its
plots are drawn and saves ``<tab>.png`` (``explorer.png``, ``evaluation.png``, …) in
``--out``. Prints, per tab, the seconds from the click until its plots stopped changing: the
first build of the tab as a user sees it (server build + transfer + drawing in the browser).
``docs/screenshots/`` holds the pictures of the default demo (``make demo``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABS = ["Explorer", "Evaluation", "Regional series", "Future trends", "Change rates", "Model"]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"no answer from {url} after {timeout:.0f} s")


def settle(page, timeout: float = 120.0, quiet: float = 1.0) -> float:
    """Seconds until the number of drawn canvases stopped changing for ``quiet`` seconds."""
    t0 = time.monotonic()
    last, changed = -1, t0
    while time.monotonic() - t0 < timeout:
        n = page.locator("canvas >> visible=true").count()
        now = time.monotonic()
        if n != last:
            last, changed = n, now
        elif n > 0 and now - changed >= quiet:
            return changed - t0
        time.sleep(0.1)
    return timeout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--projection", choices=("lonlat", "albers"), default="lonlat")
    parser.add_argument("--presentation", action="store_true", help="presentation mode on")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--width", type=int, default=1500)
    parser.add_argument("--height", type=int, default=2700, help="tall enough for every tab")
    parser.add_argument(
        "--after", type=float, default=0.0,
        help="seconds between the server answering and the page's request (the server draws "
        "the tabs ahead of the first visitor meanwhile); default 0",
    )
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    port = args.port or free_port()
    args.out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "smcore", "serve", "--workdir", str(args.workdir)]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port)], cwd=ROOT, env=dict(os.environ, PYTHONUNBUFFERED="1")
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(base + "/liveness", proc)
        time.sleep(args.after)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            page.set_default_timeout(120_000)
            t0 = time.monotonic()
            page.goto(base + "/", wait_until="load")
            page.locator(".bk-tab").first.wait_for()
            first = time.monotonic() - t0 + settle(page)
            print(f"page with its first tab drawn {first:.1f} s after the request")
            sidebar = page.locator("#sidebar")
            if args.projection == "albers":
                sidebar.locator("select").last.select_option(label="Albers equal-area (China)")
            if args.presentation:
                sidebar.get_by_text("Presentation mode").first.click()
            for tab in TABS:
                t0 = time.monotonic()
                page.locator(".bk-tab", has_text=tab).first.click()
                seconds = settle(page)
                name = tab.lower().replace(" ", "_") + ".png"
                page.screenshot(path=str(args.out / name), full_page=True)
                print(f"{tab:<18} drawn {seconds:5.1f} s after the click -> {args.out / name}")
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
