"""Server-side cost of the dashboard: time to build each tab, to answer interactions, and memory.

Usage::

    .venv/bin/python benchmarks/dashboard.py [--workdir WD] [--small] [--projection albers]
                                             [--json out.json]

Without ``--workdir`` it uses ``demo/work`` when that exists, else it writes a synthetic work
directory of the study's full size (0.25°, 144 × 264, 1950–2014 + four SSPs 2015–2100) to a
temporary folder (``--small``: the tiny test one). Each tab is built and rendered to Bokeh
models alone, in a first and a second session, after the server's warm-up (what ``smcore serve``
reads in the background at start); then the interactions are timed in one session where every
tab has been opened. The explorer's cell series is read on a loader thread when served, so its
read time is reported apart from the response time. ``--projection`` draws the maps in
latitude/longitude (``lonlat``, the default) or the Albers conic (``albers``); the last
interactions switch to the other projection (the Explorer's maps are redrawn), back with the
Future trends tab on display (its six maps are redrawn), and turn on presentation mode (fonts
and tool bars of every open tab change in place). Last, the tabs are drawn ahead in both
projections as ``smcore serve`` does before its first visitor (:func:`dashboard.app.prerender`),
and a new session switches projection and back again: what a visitor who comes after that waits.
Targets: ≤ 1 s per interaction, ≤ 2 s per tab, ≤ 1.5 GB resident memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import psutil
from bokeh.document import Document

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_S = 1.0
TARGET_TAB_S = 2.0
TARGET_RSS_GB = 1.5


def rss_gb() -> float:
    return psutil.Process().memory_info().rss / 1e9


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # Linux: kB


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def build_session(workdir: Path, projection: str = "lonlat"):
    """One browser session: the app, its page (sidebar, first tab) rendered to a Bokeh document."""
    from dashboard.app import App

    doc = Document()
    app = App(workdir)
    app.store.projection = projection
    app.template().server_doc(doc)
    return app, doc


def render_tab(view, doc) -> None:
    view.__panel__().get_root(doc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--small", action="store_true", help="synthetic tiny work directory")
    parser.add_argument(
        "--projection", choices=("lonlat", "albers"), default="lonlat", help="map projection"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    tmp = None
    workdir = args.workdir
    if workdir is None and (ROOT / "demo" / "work").is_dir() and not args.small:
        workdir = ROOT / "demo" / "work"
    if workdir is None:
        from tests.factories.dashboard import make_workdir

        tmp = tempfile.TemporaryDirectory(prefix="smcore-bench-")
        t = time.perf_counter()
        workdir = make_workdir(Path(tmp.name) / "work", small=args.small).root
        print(
            f"synthetic work directory ({'small' if args.small else 'full size'}) written in "
            f"{time.perf_counter() - t:.1f} s"
        )
    print(f"work directory: {workdir}")

    rss0 = rss_gb()
    t = time.perf_counter()
    from dashboard import loaders
    from dashboard.app import App, configure
    from dashboard.config import DEFAULT_PIXEL

    configure()
    import_s = time.perf_counter() - t
    t = time.perf_counter()
    warm_steps = loaders.warm_up(workdir)
    warm_s = time.perf_counter() - t
    results: dict[str, object] = {
        "workdir": str(workdir),
        "import_s": round(import_s, 3),
        "warm_up_s": round(warm_s, 3),
        "warm_up_steps_s": warm_steps,
        "projection": args.projection,
    }

    # each tab built and rendered alone, in a new session, twice (first and second session)
    sessions: dict[str, dict[str, object]] = {}
    for label in ("first", "second"):
        t = time.perf_counter()
        app, doc = build_session(workdir, args.projection)
        page = time.perf_counter() - t
        per_tab = {}
        other = App(workdir)
        other.store.projection = args.projection
        for view in other.views:
            per_tab[view.title] = round(timed(lambda v=view: render_tab(v, Document())), 3)
        sessions[label] = {"page_s": round(page, 3), "tabs_s": per_tab}
    results["sessions"] = sessions

    # interactions in one session where every tab has been opened (all views listen)
    app, doc = build_session(workdir, args.projection)
    for view in app.views[1:]:
        render_tab(view, doc)
    store = app.store
    series_time = [0.0]
    read_series = store.pixel_series

    def timed_series(*a, **k):
        t0 = time.perf_counter()
        try:
            return read_series(*a, **k)
        finally:
            series_time[0] += time.perf_counter() - t0

    store.pixel_series = timed_series  # to split the explorer's series read from the rest
    other = "albers" if args.projection == "lonlat" else "lonlat"

    def show_trends(tabs=app._tabs) -> None:
        tabs.active = 3  # the Future trends tab on display (rebuilt: it was stale)

    months = list(store.param.month.objects)
    scenarios = list(store.param.scenario.objects)
    steps: list[tuple] = [
        ("month (explorer)", lambda: setattr(store, "month", months[len(months) // 2])),
        (
            "compared model (explorer)",
            lambda: setattr(
                store, "product", store.channels[0] if store.channels else "ensemble_mean"
            ),
        ),
        ("click a new cell (explorer)", lambda: setattr(store, "pixel", (104.1, 30.6))),
        ("period → scenario (explorer)", lambda: setattr(store, "period", "future")),
    ]
    for s in scenarios:
        if s != store.scenario:
            steps.append((f"scenario → {s}", lambda s=s: setattr(store, "scenario", s)))
    steps += [
        ("season → JJA (trends)", lambda: setattr(store, "season", "JJA")),
        ("season → DJF (trends)", lambda: setattr(store, "season", "DJF")),
        ("back to the first cell (explorer)", lambda: setattr(store, "pixel", DEFAULT_PIXEL)),
        ("projection → other (explorer maps)", lambda: setattr(store, "projection", other)),
        (
            "projection → back (trends maps)",
            lambda: setattr(store, "projection", args.projection),
            show_trends,
        ),
        (
            "presentation on (every open tab, in place)",
            lambda: setattr(store, "presentation", True),
        ),
    ]
    interactions = {}

    def run(steps: list[tuple]) -> None:
        for name, fn, *setup in steps:
            for prepare in setup:  # not timed
                prepare()
            series_time[0] = 0.0
            total = timed(fn)
            interactions[name] = {
                "total_s": round(total, 3),
                "series_read_s": round(series_time[0], 3),
                "response_s": round(total - series_time[0], 3),
            }

    run(steps)

    # as served after its drawing ahead (every tab in both projections, dashboard.app.prerender):
    # a new session's switch of projection copies its maps
    from dashboard.app import prerender

    results["drawn_ahead_s"] = round(timed(lambda: list(prerender(workdir))), 3)
    app, doc = build_session(workdir, args.projection)
    for view in app.views[1:]:
        render_tab(view, doc)
    ahead = app.store
    run([
        ("projection → other, drawn ahead", lambda: setattr(ahead, "projection", other)),
        (
            "projection → back, drawn ahead",
            lambda: setattr(ahead, "projection", args.projection),
            lambda: show_trends(app._tabs),
        ),
    ])
    results["interactions"] = interactions
    results["rss_gb"] = round(rss_gb(), 3)
    results["peak_rss_gb"] = round(peak_rss_gb(), 3)
    results["rss_before_gb"] = round(rss0, 3)

    print(
        f"\nimports and configuration: {import_s:.2f} s; server warm-up (background thread when "
        f"served): {warm_s:.2f} s; every tab drawn ahead in both projections (when served, "
        f"before the first visitor): {results['drawn_ahead_s']:.2f} s"
    )
    print(f"projection: {args.projection}")
    print(f"{'tab (built + rendered alone)':<30}{'1st session':>12}{'2nd session':>12}")
    print(
        f"{'page: sidebar + Explorer':<30}"
        f"{sessions['first']['page_s']:>12.2f}{sessions['second']['page_s']:>12.2f}"
    )
    for name in sessions["first"]["tabs_s"]:
        first, second = sessions["first"]["tabs_s"][name], sessions["second"]["tabs_s"][name]
        flag = "" if first <= TARGET_TAB_S else "  > target"
        print(f"{name:<30}{first:>12.2f}{second:>12.2f}{flag}")
    print(f"\n{'interaction (every tab open)':<36}{'response s':>11}{'series read s':>14}")
    for name, r in interactions.items():
        flag = "" if r["response_s"] <= TARGET_S else "  > target"
        print(f"{name:<36}{r['response_s']:>11.2f}{r['series_read_s']:>14.2f}{flag}")
    worst_tab = max(sessions["first"]["tabs_s"].values())
    print(f"\nslowest first build of a tab {worst_tab:.2f} s (target ≤ {TARGET_TAB_S} s)")
    worst = max(r["response_s"] for r in interactions.values())
    worst_series = max(r["series_read_s"] for r in interactions.values())
    print(
        f"\nslowest response {worst:.2f} s (target ≤ {TARGET_S} s); slowest explorer series read "
        f"{worst_series:.2f} s (on the loader thread when served: the page stays responsive)"
    )
    print(
        f"RSS {results['rss_gb']:.2f} GB, peak {results['peak_rss_gb']:.2f} GB "
        f"(target ≤ {TARGET_RSS_GB} GB)"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
