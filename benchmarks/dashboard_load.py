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
serialises and sends every patch), and its latency is what the room waits for. Drawing in the
browser adds a constant per page, measured by ``tests/test_browser.py``. Each client keeps its
page as the protocol's JSON (:class:`Page`: every model's type and attributes by id, patched as
BokehJS patches its models) instead of building Bokeh's Python objects, which cost about a
second of CPU per page: twenty visitors' browsers run on twenty machines, not on the server's
two cores. The clients run in ``--clients`` processes (asyncio inside); their CPU time and the
server's (in all, and during the sessions) are printed so that a saturated client is visible.

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
class Ref(str):
    """A reference to a model of the page: its id."""


class Model:
    """A read-only view of one model of a :class:`Page`: ``model.title``, ``model.renderers``.

    An attribute the server did not send (left at Bokeh's default) reads as None.
    """

    def __init__(self, page: Page, ref: str) -> None:
        self._page = page
        self.id = Ref(ref)

    @property
    def type(self) -> str:
        """The type name the protocol gives the model: ``Figure``, ``panel.models.tabs.Tabs``."""
        return self._page.models[self.id][0]

    def __getattr__(self, name: str) -> Any:
        attributes = self._page.models[self.id][1]
        return self._page.view(attributes.get(name))


class Page:
    """The page as the browser holds it: every model's type and attributes, by id.

    Built from the server's ``PULL-DOC-REPLY`` and kept up to date with each ``PATCH-DOC``
    (changed attributes, new column data, new models), as BokehJS does, but as plain JSON: the
    client does not build Bokeh's Python objects, whose construction would cost the load
    generator about a second of CPU per page on the server's own cores. References stay
    references (:class:`Ref`); arrays sent as binary buffers become NumPy arrays.
    """

    def __init__(self) -> None:
        self.models: dict[str, tuple[str, dict[str, Any]]] = {}
        self.roots: list[Ref] = []

    # -- what the server sends ------------------------------------------------------------
    def load(self, doc: dict[str, Any], buffers: list[Any]) -> None:
        """The document of a ``PULL-DOC-REPLY``."""
        known = {b.id: b.to_bytes() for b in buffers}
        self.roots = [self.decode(root, known) for root in doc.get("roots", [])]

    def apply(self, events: list[dict[str, Any]], buffers: list[Any]) -> None:
        """The events of a ``PATCH-DOC``, in order."""
        known = {b.id: b.to_bytes() for b in buffers}
        for event in events:
            kind = event.get("kind")
            if kind == "ModelChanged":
                new = self.decode(event["new"], known)
                self.models[event["model"]["id"]][1][event["attr"]] = new
            elif kind == "ColumnDataChanged":
                data = self.decode(event["data"], known)
                attrs = self.models[event["model"]["id"]][1]
                cols = event.get("cols")
                attrs["data"] = data if cols is None else {**attrs.get("data", {}), **data}
            elif kind == "ColumnsStreamed":
                import numpy as np

                data = self.decode(event["data"], known)
                old = self.models[event["model"]["id"]][1].setdefault("data", {})
                for col, values in data.items():
                    both = np.concatenate([np.asarray(old.get(col, [])), np.asarray(values)])
                    rollover = event.get("rollover")
                    old[col] = both[-rollover:] if rollover else both
            elif kind == "ColumnsPatched":
                patches = self.decode(event["patches"], known)
                data = self.models[event["model"]["id"]][1].get("data", {})
                for col, changes in patches.items():
                    for index, value in changes:
                        if isinstance(index, int):
                            data[col][index] = value
            elif kind == "RootAdded":
                self.roots.append(self.decode(event["model"], known))
            elif kind == "RootRemoved":
                gone = event["model"]["id"]
                self.roots = [r for r in self.roots if r != gone]

    def decode(self, value: Any, buffers: dict[str, bytes]) -> Any:
        """A serialised value: new models registered (and referenced), arrays decoded."""
        if isinstance(value, list):
            return [self.decode(v, buffers) for v in value]
        if not isinstance(value, dict):
            return value
        kind = value.get("type")
        if kind is None:
            if "id" in value and len(value) == 1:
                return Ref(value["id"])
            return {k: self.decode(v, buffers) for k, v in value.items()}
        if kind == "object" and "id" in value:
            ref = Ref(value["id"])
            attributes = {
                k: self.decode(v, buffers) for k, v in value.get("attributes", {}).items()
            }
            if ref in self.models:
                self.models[ref][1].update(attributes)
            else:
                self.models[ref] = (value["name"], attributes)
            return ref
        if kind == "ref":
            return Ref(value["id"])
        if kind == "number":
            return float(value["value"]) if isinstance(value["value"], str) else value["value"]
        if kind in ("array", "set"):
            return [self.decode(v, buffers) for v in value.get("entries", [])]
        if kind == "map":
            return {
                self.decode(k, buffers): self.decode(v, buffers)
                for k, v in value.get("entries", [])
            }
        if kind == "bytes":
            data = value["data"]
            if isinstance(data, str):
                import base64
                import gzip

                return gzip.decompress(base64.b64decode(data))
            if hasattr(data, "to_bytes"):  # a message made here, not received
                return data.to_bytes()
            return buffers[data["id"]]
        if kind in ("ndarray", "typed_array"):
            import numpy as np

            raw = self.decode(value["array"], buffers)
            if isinstance(raw, bytes):
                array = np.frombuffer(raw, dtype=value["dtype"]).copy()
                if value.get("order", sys.byteorder) != sys.byteorder:
                    array.byteswap(inplace=True)
            else:
                array = np.asarray(raw, dtype=value["dtype"])
            shape = value.get("shape")
            return array.reshape(shape) if shape and len(shape) > 1 else array
        return {k: self.decode(v, buffers) for k, v in value.items()}

    # -- what the page shows --------------------------------------------------------------
    def view(self, value: Any) -> Any:
        """``value`` with references as :class:`Model` views (in a list too, one level)."""
        if isinstance(value, Ref):
            return Model(self, value)
        if isinstance(value, list):
            return [Model(self, v) if isinstance(v, Ref) else v for v in value]
        return value

    def reachable(self, start: Ref | None = None) -> list[Model]:
        """The models of the page (or under ``start``), each once: what the browser shows."""
        seen: set[str] = set()
        order: list[Model] = []
        stack: list[Any] = [start] if start is not None else list(reversed(self.roots))
        while stack:
            value = stack.pop()
            if isinstance(value, Ref):
                if value in seen or value not in self.models:
                    continue
                seen.add(value)
                order.append(Model(self, value))
                stack.extend(_containers(self.models[value][1].values()))
            elif isinstance(value, list):
                stack.extend(_containers(value))
            elif isinstance(value, dict):
                stack.extend(_containers(value.values()))
        return order

    def select(self, *types: str) -> list[Model]:
        """The page's models whose type name ends with one of ``types``."""
        return [m for m in self.reachable() if m.type.split(".")[-1] in types]


def _containers(values: Any) -> list[Any]:
    """The references, lists and dicts among ``values``, last first (a walk's stack order).

    Numbers and strings, such as a series' thousands of values, are not pushed.
    """
    return [v for v in reversed(list(values)) if isinstance(v, (Ref, list, dict))]


class Failed(Exception):
    """An interaction that did not complete (timeout, lost connection, an error on the page)."""


PLOTS = ("Plot", "Figure", "GMap", "GMapPlot")
TEXTS = ("Div", "Paragraph", "PreText", "HTML", "Markdown")


def _title(plot: Model) -> str:
    """A plot's title text ('' without one); the title is a model or, unset, a string."""
    title = plot.title
    text = title.text if isinstance(title, Model) else title
    return "" if text is None else str(text)


class Session:
    """One visitor: a websocket session of the Bokeh protocol, applying the server's patches."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self.page = Page()

    async def open(self) -> None:
        """Connect, pull the page's document and tell the server that it is displayed."""
        from bokeh.client.session import ClientSession
        from bokeh.client.websocket import WebSocketClientConnectionWrapper
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
        if "doc" not in reply.content:
            raise Failed("no document in the server's PULL-DOC-REPLY")
        self.page.load(reply.content["doc"], reply.buffers)
        self._event("document_ready", {"type": "map"})

    def _send(self, events: list[dict[str, Any]]) -> None:
        from bokeh.protocol.messages.patch_doc import patch_doc

        message = patch_doc(patch_doc.create_header(), {}, {"events": events})
        asyncio.ensure_future(message.send(self.ws))

    def _event(self, name: str, values: dict[str, Any]) -> None:
        """A UI event (``document_ready``, ``tap``) sent as BokehJS sends it."""
        data = {"type": "event", "name": name, "values": values}
        self._send([{"kind": "MessageSent", "msg_type": "bokeh_event", "msg_data": data}])

    def set(self, model: Model, attr: str, value: Any) -> None:
        """A widget's change: ``model.attr = value`` here and on the server."""
        self.page.models[model.id][1][attr] = value
        change = {"kind": "ModelChanged", "model": {"id": model.id}, "attr": attr, "new": value}
        self._send([change])

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
                self.page.apply(message.content.get("events", []), message.buffers)
            elif message.msgtype == "ERROR":
                raise Failed(f"{what}: server error: {message.content.get('text')}")

    def click(self, figure: Model, x: float, y: float) -> None:
        """A click on ``figure`` at data coordinates (x, y), sent as the browser sends it."""
        keys = {"shift": False, "ctrl": False, "alt": False}
        point = [["sx", 0.0], ["sy", 0.0], ["x", x], ["y", y], ["modifiers", keys]]
        self._event("tap", {"type": "map", "entries": [["model", {"id": figure.id}], *point]})

    def failure(self) -> str:
        """The text of an error panel or notice visible on the page ('' if none)."""
        for model in self.page.select(*TEXTS):
            text = str(model.text or "")
            if model.visible is not False and any(marker in text for marker in FAILURE_TEXT):
                return re.sub(r"<[^>]+>|&\w+;", " ", text)[:300]
        return ""

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001
            pass

    # -- what is on the page --------------------------------------------------------------
    def tabs(self) -> Model:
        found = self.page.select("Tabs")
        if not found:
            raise Failed("no tabs on the page")
        return found[0]

    def plots_in_tab(self, title: str) -> int:
        tabs = self.tabs()
        panels = tabs.tabs
        index = [t.title for t in panels].index(title)
        under = self.page.reachable(panels[index].id)
        return sum(1 for m in under if m.type.split(".")[-1] in PLOTS)

    def figure(self, prefix: str) -> Model:
        for plot in self.page.select(*PLOTS):
            if _title(plot).startswith(prefix):
                return plot
        raise Failed(f"no plot titled {prefix!r} on the page")

    def title(self, prefix: str) -> str:
        return _title(self.figure(prefix))

    def label(self, name: str) -> str:
        """The value a discrete slider shows: ``Month: <b>2009-07</b>`` → ``2009-07``."""
        for div in self.page.select("Div"):
            m = re.match(rf"{name}: <b>(.*)</b>", str(div.text or ""))
            if m:
                return m.group(1)
        raise Failed(f"no {name} slider on the page")

    def slider(self, name: str) -> Model:
        """The Bokeh slider of the discrete slider labelled ``name`` (Month, Scenario)."""
        for col in self.page.select("Column"):
            kids = [k for k in (col.children or []) if isinstance(k, Model)]
            if any(k.type == "Div" and str(k.text or "").startswith(f"{name}: ") for k in kids):
                for k in kids:
                    if k.type == "Slider":
                        return k
        raise Failed(f"no {name} slider on the page")


def _shift_month(label: str, months: int) -> str:
    y, m = (int(x) for x in label.split("-"))
    n = y * 12 + (m - 1) + months
    return f"{n // 12:04d}-{n % 12 + 1:02d}"


async def visit(k: int, url: str, opts: dict[str, Any], start_at: float) -> list[tuple]:
    """Session ``k``: page, tabs, then rounds of month, scenario and cell. Records
    ``(session, kind, seconds or None, error, began)`` (``began``: seconds since the client's
    first session was due)."""
    import numpy as np

    rng = random.Random(opts["seed"] * 1000 + k)
    records: list[tuple] = []
    session = Session(url, opts["timeout"])

    def at(t0: float) -> float:
        """When an interaction began: seconds since this client's first session was due."""
        return round(t0 - time.perf_counter() + time.monotonic() - opts["t_start"], 3)

    async def think() -> None:
        await asyncio.sleep(opts["think"] * rng.uniform(0.5, 1.5))

    async def timed(kind: str, act: Any, done: Any) -> bool:
        t0 = time.perf_counter()
        try:
            act()
            await session.until(done, kind)
        except (TimeoutError, Failed, OSError) as exc:
            records.append((k, kind, None, f"{type(exc).__name__}: {exc}", at(t0)))
            return False
        records.append((k, kind, time.perf_counter() - t0, "", at(t0)))
        return True

    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    t0 = time.perf_counter()
    try:
        await session.open()
        await session.until(lambda: session.figure("CMIP6_DL ·") is not None, "page")
    except (TimeoutError, Failed, OSError) as exc:
        records.append((k, "page", None, f"{type(exc).__name__}: {exc}", at(t0)))
        session.close()
        return records
    records.append((k, "page", time.perf_counter() - t0, "", at(t0)))
    try:
        for tab in TAB_ORDER:
            await think()
            tabs = session.tabs()
            index = [t.title for t in tabs.tabs].index(tab)
            await timed(
                "tab",
                lambda index=index, tabs=tabs: session.set(tabs, "active", index),
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
                session.set(slider, "value", target)  # while dragging
                session.set(slider, "value_throttled", target)  # on release

            await timed(
                "month", move, lambda e=expected: f" {e} " in session.title("CMIP6_DL ·") + " "
            )
            # scenario: the scenario period first, then another scenario
            await think()
            before = session.title("CMIP6_DL ·")
            if r == 0:
                period = session.page.select("RadioButtonGroup")[0]
                change = lambda period=period: session.set(period, "active", 1)  # noqa: E731
            else:
                scen = session.slider("Scenario")
                nxt = (int(scen.value) + 1 + rng.randrange(int(scen.end))) % (int(scen.end) + 1)

                def change(scen: Any = scen, nxt: int = nxt) -> None:
                    session.set(scen, "value", nxt)
                    session.set(scen, "value_throttled", nxt)

            def switched(before: str = before) -> bool:
                title = session.title("CMIP6_DL ·")
                label = session.label("Scenario")
                series = session.title("Cell ")
                return title != before and title.endswith(label) and series.endswith(label)

            await timed("scenario", change, switched)
            # cell: a land cell of this session's own on the CMIP6_DL map
            await think()
            fig = session.figure("CMIP6_DL ·")
            image = next(r for r in fig.renderers if r.glyph and r.glyph.type == "Image")
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
        records.append((k, "session", None, str(exc), None))
    finally:
        session.close()
    return records


def client(indices: list[int], url: str, opts: dict[str, Any], t_start: float) -> dict[str, Any]:
    """A client process: its sessions concurrently on one event loop."""

    async def run() -> list[tuple]:
        n = opts["sessions"]
        starts = [t_start + opts["ramp"] * k / max(n, 1) for k in indices]
        visits = [visit(k, url, opts, s) for k, s in zip(indices, starts, strict=True)]
        done = await asyncio.gather(*visits)
        return [r for rs in done for r in rs]

    opts = {**opts, "t_start": t_start}
    records = asyncio.run(run())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"records": records, "cpu_s": usage.ru_utime + usage.ru_stime}


def warm(url: str, timeout: float) -> None:
    """One unmeasured session opening every tab of the load (the presenter checks the page)."""

    async def go() -> None:
        session = Session(url, timeout)
        await session.open()
        await session.until(lambda: session.figure("CMIP6_DL ·") is not None, "page")
        for tab in TAB_ORDER:
            tabs = session.tabs()
            session.set(tabs, "active", [t.title for t in tabs.tabs].index(tab))
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
    cpu_before = float("nan")
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
        times = memory.proc.cpu_times()
        cpu_before = times.user + times.system
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
        try:
            times = memory.proc.cpu_times()
            server_cpu = times.user + times.system
        except Exception:  # noqa: BLE001 - the server ended
            server_cpu = float("nan")
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
    print(
        f"client processes' CPU time: {client_cpu} s; server's: {server_cpu:.1f} s, "
        f"{server_cpu - cpu_before:.1f} s of it during the sessions"
    )
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
        server_cpu_s=round(server_cpu, 1),
        server_cpu_sessions_s=round(server_cpu - cpu_before, 1),
        records=[
            {"session": r[0], "kind": r[1], "began_s": r[4], "seconds": r[2], "error": r[3]}
            for r in records
        ],
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
