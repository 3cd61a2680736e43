"""The dashboard under load: N sessions of ``smcore serve`` at once, timed per interaction.

Usage::

    .venv/bin/python benchmarks/dashboard_load.py --workdir WD [--sessions 20] [--rounds 2]
        [--clients 2] [--ramp 20] [--think 2] [--timeout 60] [--json out.json]
    .venv/bin/python benchmarks/dashboard_load.py --synthetic small --sessions 2 --rounds 1

It starts ``smcore serve`` on the work directory (``--synthetic small|full`` writes a synthetic
one to a temporary folder first), opens one unmeasured session (the presenter checking the
page), then N sessions, started evenly over ``--ramp`` seconds, each a real websocket session
of the Bokeh protocol the browser speaks: the client pulls the page's document, tells the
server it is ready, changes the same model properties the browser's widgets change (the tabs'
``active``, the month slider's ``value_throttled``, the period buttons, the scenario slider)
and sends the map's ``Tap`` event with a cell's coordinates, and applies every patch the
server sends back. An interaction is timed from the change until the patch that shows its
result arrived and was applied:

- ``page``: connect and pull the page (sidebar and Explorer);
- ``tab``: open Future trends, Evaluation, then Explorer again (until their plots arrived);
- ``month``: move the month slider to a month of the session's own (the CMIP6_DL map's title
  names it);
- ``scenario``: switch the Explorer to the scenario period, later to another scenario (the
  map's title and the series' title name it);
- ``cell``: click a land cell of the session's own on the CMIP6_DL map (the series' title
  names the cell).

Each session does ``page``, the three tabs, then ``--rounds`` times month, scenario and cell,
waiting ``--think`` seconds (± 50 %, seeded) between interactions as a person would. An
interaction that does not complete within ``--timeout`` seconds, a lost connection, a protocol
error, an error shown in a tab, and a traceback in the server's log count as errors. The
server's peak resident memory is its ``VmHWM`` (Linux), children included by sampling.

Why protocol clients and not browsers: on a 2-core machine 20 Chromium pages would spend the
cores drawing canvases and measure the browsers, not the server; the server does the same
work for a protocol client as for a browser (it builds the session, renders every model,
serialises and sends every patch, and the client deserialises and applies them), and its
latency is what the room waits for. Drawing in the browser adds a constant per page, measured
by ``tests/test_browser.py``. The clients run in ``--clients`` processes (asyncio inside); their
CPU time is printed so that a saturated client is visible.

Last line: ``dashboard_load sessions=N p95_s=… errors=… rss_gb=…`` (p95 over every timed
interaction). Targets at N = 20 on a 2-core machine: p95 ≤ 2 s, no error, RSS ≤ 2 GB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import re
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_P95_S = 2.0
TARGET_RSS_GB = 2.0
KINDS = ("page", "tab", "month", "scenario", "cell")
TABS = {"Explorer": 3, "Evaluation": 5, "Future trends": 7}  # tab title → plots it draws
TAB_ORDER = ("Future trends", "Evaluation", "Explorer")
FAILURE_TEXT = ("cannot show the data", "failed**", "The dashboard cannot be shown")


# -- the server ----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def alive(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def start_server(workdir: Path, port: int, log: Path) -> subprocess.Popen:
    """``smcore serve`` on ``workdir`` (its log in ``log``), answering on /liveness."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "smcore", "serve", "--workdir", str(workdir)]
            + ["--port", str(port)],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {log.read_text()[-2000:]}")
        if alive(f"http://127.0.0.1:{port}/liveness"):
            return proc
        time.sleep(0.25)
    proc.kill()
    raise RuntimeError("the server did not answer within 300 s")


class MemoryWatch:
    """The server's resident memory, sampled (children included) and its kernel high-water mark."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        import psutil

        self.proc = psutil.Process(pid)
        self.every = every
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rss = self.proc.memory_info().rss
                rss += sum(c.memory_info().rss for c in self.proc.children(recursive=True))
                self.peak = max(self.peak, rss)
            except Exception:  # noqa: BLE001 - the process ended
                return
            self._stop.wait(self.every)

    def high_water(self) -> int:
        """``VmHWM`` of the server process (bytes), 0 where unknown."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def stop(self) -> int:
        """Peak resident bytes seen (the larger of the samples and the high-water mark)."""
        peak = max(self.peak, self.high_water())
        self._stop.set()
        self._thread.join(timeout=2)
        return peak


# -- one session ---------------------------------------------------------------------------
def client_models() -> None:
    """Make the page's custom Bokeh models known to this process (Panel loads them lazily)."""
    import importlib
    import pkgutil

    import panel.models

    warnings.filterwarnings("ignore")  # bokeh: "reference already known" while patching
    for info in pkgutil.iter_modules(panel.models.__path__):
        try:
            importlib.import_module(f"panel.models.{info.name}")
        except Exception:  # noqa: BLE001, S112 - an optional dependency the page does not use
            continue


class Failed(Exception):
    """An interaction that did not complete (timeout, lost connection, an error on the page)."""


class Session:
    """One visitor: a websocket session of the Bokeh protocol, applying the server's patches."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self.doc: Any = None

    async def open(self) -> None:
        """Connect, pull the page's document and tell the server that it is displayed."""
        from bokeh.client.session import ClientSession
        from bokeh.client.websocket import WebSocketClientConnectionWrapper
        from bokeh.document import Document
        from bokeh.events import DocumentReady
        from bokeh.protocol import Protocol
        from bokeh.protocol.receiver import Receiver
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        token = ClientSession(websocket_url=self.url).token
        self.protocol = Protocol()
        self.receiver = Receiver(self.protocol)
        socket_ = await asyncio.wait_for(
            websocket_connect(
                HTTPRequest(self.url), subprotocols=["bokeh", token], max_message_size=1 << 30
            ),
            self.timeout,
        )
        self.ws = WebSocketClientConnectionWrapper(socket_)
        ack = await self._pop(self.timeout)
        if ack.msgtype != "ACK":
            raise Failed(f"expected ACK, got {ack.msgtype}")
        request = self.protocol.create("PULL-DOC-REQ")
        await request.send(self.ws)
        while True:
            reply = await self._pop(self.timeout)
            if reply.msgtype == "ERROR":
                raise Failed(f"server error: {reply.content.get('text')}")
            if reply.msgtype == "PULL-DOC-REPLY":
                break
        self.doc = Document()
        reply.push_to_document(self.doc)
        self.doc.callbacks.on_change_dispatch_to(self)
        self.doc.callbacks.send_event(DocumentReady())

    def _document_patched(self, event: Any) -> None:  # bokeh calls this for a client change
        if event.setter is self:
            return  # a change the server sent
        message = self.protocol.create("PATCH-DOC", [event])
        asyncio.ensure_future(message.send(self.ws))

    async def _pop(self, timeout: float) -> Any:
        while True:
            fragment = await asyncio.wait_for(self.ws.read_message(), timeout)
            if fragment is None:
                raise Failed("the server closed the connection")
            message = await self.receiver.consume(fragment)
            if message is not None:
                return message

    async def until(self, done: Any, what: str) -> None:
        """Apply the server's messages until ``done()``; :class:`Failed` after the timeout."""
        deadline = time.monotonic() + self.timeout
        while not done():
            failure = self.failure()
            if failure:
                raise Failed(f"{what}: the page shows an error: {failure}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failed(f"{what}: no answer within {self.timeout:.0f} s")
            try:
                message = await self._pop(left)
            except TimeoutError:
                continue
            if message.msgtype == "PATCH-DOC":
                message.apply_to_document(self.doc, self)
            elif message.msgtype == "ERROR":
                raise Failed(f"{what}: server error: {message.content.get('text')}")

    def click(self, figure: Any, x: float, y: float) -> None:
        """A click on ``figure`` at data coordinates (x, y), sent as the browser sends it."""
        from bokeh.events import Tap

        tap = Tap(figure, sx=0.0, sy=0.0, x=x, y=y)
        point = {"sx": 0.0, "sy": 0.0, "x": x, "y": y}
        keys = {"shift": False, "ctrl": False, "alt": False}
        # bokeh's Python events serialise only their model; the browser sends the point too
        tap.event_values = lambda: {"model": figure, **point, "modifiers": keys}  # type: ignore[method-assign]
        self.doc.callbacks.send_event(tap)

    def failure(self) -> str:
        """The text of an error panel or notice visible on the page ('' if none)."""
        from bokeh.models import Markup

        for model in self.doc.select({"type": Markup}):
            text = str(getattr(model, "text", "") or "")
            if model.visible and any(marker in text for marker in FAILURE_TEXT):
                return re.sub(r"<[^>]+>|&\w+;", " ", text)[:300]
        return ""

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001
            pass

    # -- what is on the page --------------------------------------------------------------
    def tabs(self) -> Any:
        from bokeh.models import Tabs

        return next(iter(self.doc.select({"type": Tabs})))

    def plots_in_tab(self, title: str) -> int:
        from bokeh.models import Plot

        tabs = self.tabs()
        index = [t.title for t in tabs.tabs].index(title)
        return len(list(tabs.tabs[index].child.select({"type": Plot})))

    def figure(self, prefix: str) -> Any:
        from bokeh.models import Plot

        for plot in self.doc.select({"type": Plot}):
            if plot.title is not None and str(plot.title.text).startswith(prefix):
                return plot
        raise Failed(f"no plot titled {prefix!r} on the page")

    def title(self, prefix: str) -> str:
        return str(self.figure(prefix).title.text)

    def label(self, name: str) -> str:
        """The value a discrete slider shows: ``Month: <b>2009-07</b>`` → ``2009-07``."""
        from bokeh.models import Div

        for div in self.doc.select({"type": Div}):
            m = re.match(rf"{name}: <b>(.*)</b>", str(div.text))
            if m:
                return m.group(1)
        raise Failed(f"no {name} slider on the page")

    def slider(self, name: str) -> Any:
        """The Bokeh slider of the discrete slider labelled ``name`` (Month, Scenario)."""
        from bokeh.models import Column, Div, Slider

        for col in self.doc.select({"type": Column}):
            kids = list(col.children)
            if any(isinstance(k, Div) and str(k.text).startswith(f"{name}: ") for k in kids):
                for k in kids:
                    if isinstance(k, Slider):
                        return k
        raise Failed(f"no {name} slider on the page")


def _shift_month(label: str, months: int) -> str:
    y, m = (int(x) for x in label.split("-"))
    n = y * 12 + (m - 1) + months
    return f"{n // 12:04d}-{n % 12 + 1:02d}"


async def visit(k: int, url: str, opts: dict[str, Any], start_at: float) -> list[tuple]:
    """Session ``k``: page, tabs, then rounds of month, scenario and cell. Records
    ``(session, kind, seconds or None, error)``."""
    import numpy as np
    from bokeh.models import Image, RadioButtonGroup

    rng = random.Random(opts["seed"] * 1000 + k)
    records: list[tuple] = []
    session = Session(url, opts["timeout"])

    async def think() -> None:
        await asyncio.sleep(opts["think"] * rng.uniform(0.5, 1.5))

    async def timed(kind: str, act: Any, done: Any) -> bool:
        t0 = time.perf_counter()
        try:
            act()
            await session.until(done, kind)
        except (TimeoutError, Failed, OSError) as exc:
            records.append((k, kind, None, f"{type(exc).__name__}: {exc}"))
            return False
        records.append((k, kind, time.perf_counter() - t0, ""))
        return True

    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    t0 = time.perf_counter()
    try:
        await session.open()
        await session.until(lambda: session.figure("CMIP6_DL ·") is not None, "page")
    except (TimeoutError, Failed, OSError) as exc:
        records.append((k, "page", None, f"{type(exc).__name__}: {exc}"))
        session.close()
        return records
    records.append((k, "page", time.perf_counter() - t0, ""))
    try:
        for tab in TAB_ORDER:
            await think()
            tabs = session.tabs()
            index = [t.title for t in tabs.tabs].index(tab)
            await timed(
                "tab",
                lambda index=index, tabs=tabs: setattr(tabs, "active", index),
                lambda tab=tab: session.plots_in_tab(tab) >= TABS[tab],
            )
        for r in range(opts["rounds"]):
            # month: a month of this session's own
            await think()
            slider = session.slider("Month")
            n = int(slider.end) + 1
            target = (k * 7919 + r * 104729 + 13) % n
            if target == int(slider.value):
                target = (target + 1) % n
            expected = _shift_month(session.label("Month"), target - int(slider.value))

            def move(slider: Any = slider, target: int = target) -> None:
                slider.value = target
                slider.set_from_json("value_throttled", target)

            await timed(
                "month", move, lambda e=expected: f" {e} " in session.title("CMIP6_DL ·") + " "
            )
            # scenario: the scenario period first, then another scenario
            await think()
            before = session.title("CMIP6_DL ·")
            if r == 0:
                period = next(iter(session.doc.select({"type": RadioButtonGroup})))
                change = lambda period=period: setattr(period, "active", 1)  # noqa: E731
            else:
                scen = session.slider("Scenario")
                nxt = (int(scen.value) + 1 + rng.randrange(int(scen.end))) % (int(scen.end) + 1)

                def change(scen: Any = scen, nxt: int = nxt) -> None:
                    scen.value = nxt
                    scen.set_from_json("value_throttled", nxt)

            def switched(before: str = before) -> bool:
                title = session.title("CMIP6_DL ·")
                label = session.label("Scenario")
                series = session.title("Cell ")
                return title != before and title.endswith(label) and series.endswith(label)

            await timed("scenario", change, switched)
            # cell: a land cell of this session's own on the CMIP6_DL map
            await think()
            fig = session.figure("CMIP6_DL ·")
            image = next(r for r in fig.renderers if isinstance(getattr(r, "glyph", None), Image))
            data = image.data_source.data
            values = np.asarray(data["image"][0])
            land = np.argwhere(np.isfinite(values))
            x0, y0 = float(np.ravel(data["x"])[0]), float(np.ravel(data["y"])[0])
            dw, dh = float(np.ravel(data["dw"])[0]), float(np.ravel(data["dh"])[0])
            before = session.title("Cell ")
            for _ in range(20):
                i, j = land[rng.randrange(len(land))]
                lon = x0 + (j + 0.5) * dw / values.shape[1]
                lat = y0 + (i + 0.5) * dh / values.shape[0]
                if f"{lat:.2f}°N {lon:.2f}°E" not in before:
                    break
            await timed(
                "cell",
                lambda fig=fig, lon=lon, lat=lat: session.click(fig, lon, lat),
                lambda before=before: (
                    session.title("Cell ") != before
                    and not session.title("Cell ").startswith("cannot")
                ),
            )
    except Failed as exc:  # the page lost something it needs: the rest cannot run
        records.append((k, "session", None, str(exc)))
    finally:
        session.close()
    return records


def client(indices: list[int], url: str, opts: dict[str, Any], t_start: float) -> dict[str, Any]:
    """A client process: its sessions concurrently on one event loop."""
    client_models()

    async def run() -> list[tuple]:
        n = opts["sessions"]
        starts = [t_start + opts["ramp"] * k / max(n, 1) for k in indices]
        visits = [visit(k, url, opts, s) for k, s in zip(indices, starts, strict=True)]
        done = await asyncio.gather(*visits)
        return [r for rs in done for r in rs]

    records = asyncio.run(run())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"records": records, "cpu_s": usage.ru_utime + usage.ru_stime}


def warm(url: str, timeout: float) -> None:
    """One unmeasured session opening every tab of the load (the presenter checks the page)."""
    client_models()

    async def go() -> None:
        session = Session(url, timeout)
        await session.open()
        await session.until(lambda: session.figure("CMIP6_DL ·") is not None, "page")
        for tab in TAB_ORDER:
            tabs = session.tabs()
            tabs.active = [t.title for t in tabs.tabs].index(tab)
            await session.until(lambda tab=tab: session.plots_in_tab(tab) >= TABS[tab], tab)
        session.close()

    asyncio.run(go())


# -- the run --------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q)) if values else float("nan")


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workdir", type=Path, help="work directory to serve")
    where.add_argument(
        "--synthetic", choices=("small", "full"), help="write a synthetic work directory first"
    )
    parser.add_argument("--sessions", type=int, default=20, help="concurrent sessions (N)")
    parser.add_argument("--rounds", type=int, default=2, help="month/scenario/cell rounds")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--ramp", type=float, default=20.0, help="seconds over which N start")
    parser.add_argument("--think", type=float, default=2.0, help="mean pause between actions")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per interaction")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-warm", action="store_true", help="no unmeasured first session")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    tmp = tempfile.TemporaryDirectory(prefix="smcore-load-")
    workdir = args.workdir
    if workdir is None and args.synthetic is None and (ROOT / "demo" / "work").is_dir():
        workdir = ROOT / "demo" / "work"
    if workdir is None:
        from tests.factories.dashboard import make_workdir

        t = time.perf_counter()
        workdir = make_workdir(Path(tmp.name) / "work", small=args.synthetic != "full").root
        print(
            f"synthetic work directory ({args.synthetic or 'small'}) written in "
            f"{time.perf_counter() - t:.1f} s"
        )
    workdir = Path(workdir).resolve()
    print(f"work directory: {workdir}")
    port = free_port()
    log = Path(tmp.name) / "serve.log"
    t = time.perf_counter()
    server = start_server(workdir, port, log)
    memory = MemoryWatch(server.pid)
    url = f"ws://127.0.0.1:{port}/ws"
    results: dict[str, Any] = {"workdir": str(workdir), "sessions": args.sessions}
    try:
        print(f"server answering after {time.perf_counter() - t:.1f} s")
        if not args.no_warm:
            t = time.perf_counter()
            warm(url, max(args.timeout, 120))
            print(f"first (unmeasured) session with its tabs: {time.perf_counter() - t:.1f} s")
        opts = {
            "sessions": args.sessions, "rounds": args.rounds, "think": args.think,
            "timeout": args.timeout, "seed": args.seed, "ramp": args.ramp,
        }  # fmt: skip
        load_before = load_average()
        n_clients = max(1, min(args.clients, args.sessions))
        groups = [list(range(c, args.sessions, n_clients)) for c in range(n_clients)]
        ctx = multiprocessing.get_context("spawn")
        t = time.perf_counter()
        with ctx.Pool(n_clients) as pool:
            # each client process starts its sessions relative to its own clock, 3 s from now
            pending = [pool.apply_async(client_main, (g, url, opts, 3.0)) for g in groups]
            outs = [p.get() for p in pending]
        wall = time.perf_counter() - t
        load_after = load_average()
    finally:
        rss = memory.stop()
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    server_log = log.read_text()
    tracebacks = server_log.count("Traceback")
    records = [r for out in outs for r in out["records"]]
    by_kind = {kind: [r[2] for r in records if r[1] == kind and r[2] is not None] for kind in KINDS}
    errors = [r for r in records if r[2] is None]
    all_times = [r[2] for r in records if r[2] is not None]
    p95 = percentile(all_times, 95)
    rss_gb = rss / 1e9

    print(
        f"\n{args.sessions} sessions over {args.ramp:g} s, {args.rounds} rounds, think "
        f"{args.think:g} s; {n_clients} client processes; {wall:.1f} s in all"
    )
    print(
        f"load average (1, 5, 15 min) before {load_before}, after {load_after}; "
        f"{os.cpu_count()} CPUs"
    )
    print(f"{'interaction':<12}{'n':>5}{'p50 s':>9}{'p95 s':>9}{'max s':>9}{'errors':>8}")
    for kind in KINDS:
        times = by_kind[kind]
        n_err = sum(1 for r in errors if r[1] == kind)
        print(
            f"{kind:<12}{len(times):>5}{percentile(times, 50):>9.2f}"
            f"{percentile(times, 95):>9.2f}{max(times, default=float('nan')):>9.2f}{n_err:>8}"
        )
    for r in errors[:10]:
        print(f"  error: session {r[0]} {r[1]}: {r[3]}")
    if tracebacks:
        print(f"  error: {tracebacks} traceback(s) in the server log:\n{server_log[-3000:]}")
    client_cpu = [round(out["cpu_s"], 1) for out in outs]
    print(f"client processes' CPU time: {client_cpu} s")
    print(
        f"server peak RSS {rss_gb:.2f} GB (target ≤ {TARGET_RSS_GB} GB); p95 {p95:.2f} s "
        f"(target ≤ {TARGET_P95_S} s)"
    )
    n_errors = len(errors) + tracebacks
    results.update(
        p95_s=round(p95, 3),
        errors=n_errors,
        rss_gb=round(rss_gb, 3),
        load_before=load_before,
        load_after=load_after,
        kinds={
            kind: {
                "n": len(by_kind[kind]),
                "p50_s": round(percentile(by_kind[kind], 50), 3),
                "p95_s": round(percentile(by_kind[kind], 95), 3),
            }
            for kind in KINDS
        },
        error_details=[f"session {r[0]} {r[1]}: {r[3]}" for r in errors],
        tracebacks=tracebacks,
        client_cpu_s=client_cpu,
        wall_s=round(wall, 1),
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    tmp.cleanup()
    print(
        f"dashboard_load sessions={args.sessions} p95_s={p95:.2f} errors={n_errors} "
        f"rss_gb={rss_gb:.2f}"
    )
    return 0


def client_main(indices: list[int], url: str, opts: dict[str, Any], delay: float) -> dict:
    """Entry point of a client process: its sessions start ``delay`` s from now, then ramp."""
    return client(indices, url, opts, time.monotonic() + delay)


if __name__ == "__main__":
    sys.exit(main())
