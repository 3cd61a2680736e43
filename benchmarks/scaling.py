"""Strong and weak scaling of `smcore prepare` and `smcore analyse` over dask workers.

    .venv/bin/python benchmarks/scaling.py [--data demo/data] [--workdir demo/work-run2]
                                           [--modes threads,local:1,local:2] [--no-weak]

Every measurement runs in a fresh Python process (so peak memory is its own):

* ``prepare`` of the full demo (``--data``, always recomputed) and ``analyse`` of a copy of
  ``--workdir`` (its ``product/``; figures off), once per scheduler mode: ``threads`` (the
  in-process default), ``local:1`` and ``local:2`` (LocalCluster, single-threaded workers);
* weak scaling (unless ``--no-weak``): ``local:1`` on half the work (half the models for
  prepare, half the scenarios for analyse) against ``local:2`` on all of it.

Seconds exclude starting the cluster (reported separately). Peak memory: ``client`` is
the measuring process's peak RSS, ``worker`` the largest worker process's; CPU seconds
(user + system) of the client and of all workers together show where the work ran. The last line is
machine-readable::

    scaling prepare_ratio=<t(local:1)/t(local:2)> analyse_ratio=<...>
            prepare_weak=<t1(half)/t2(full)> analyse_weak=<...>
            prepare_threads_s=<s> analyse_threads_s=<s> load1=<load average>

(one line in the output).

It also prints the per-unit rates that ``docs/scaling.md`` extrapolates from.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _peak_gb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024**2  # kB on Linux


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def _one(args: argparse.Namespace) -> int:
    """Child process: run one step under one scheduler and print a JSON line."""
    from smcore.config import load_config
    from smcore.distributed import scheduler

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    with scheduler(args.scheduler, quiet=True) as client:
        started = time.perf_counter() - t0
        if args.one == "prepare":
            import importlib

            pp = importlib.import_module("smcore.prep.prepare")  # the module, not the function

            for name in ("compute_reference", "compute_inputs"):  # time the two phases
                fn = getattr(pp, name)

                def timed(*a, _fn=fn, _name=name, **k):
                    s = time.perf_counter()
                    out = _fn(*a, **k)
                    timings[_name] = time.perf_counter() - s
                    return out

                setattr(pp, name, timed)
            data = Path(args.data)
            era5 = data / "era5land" if (data / "era5land").exists() else data / "era5"
            cfg = load_config(data / "smcore.toml" if (data / "smcore.toml").exists() else None)
            exclude = []
            if args.half:
                models = [m.source_id for m in cfg.models]
                exclude = models[len(models) // 2 + len(models) % 2 :]
            t = time.perf_counter()
            res = pp.prepare(cfg, args.out, cmip6=data / "cmip6", era5=era5, force=True, exclude=exclude, client=client)
            seconds = time.perf_counter() - t
            units = {
                "datasets": len(res.channels) * len(res.data.experiments),
                "model_months": sum(res.data.inputs(e).sizes["time"] for e in res.data.experiments)
                * len(res.channels),
                "reference_cell_months": int(
                    res.data.static.sizes["time"] * res.data.static.sizes["lat"]
                    * res.data.static.sizes["lon"]
                ),
            }
        else:
            from smcore.analysis.analyse import analyse
            from smcore.cli.common import workdir_config

            cfg = workdir_config(Path(args.out), None)
            if args.half:
                fut = list(cfg.future_experiments)
                cfg = cfg.override(experiments=("historical", *fut[: max(1, len(fut) // 2)]))
            t = time.perf_counter()
            analyse(cfg, Path(args.out), progress=False, figures=False, client=client)
            seconds = time.perf_counter() - t
            import xarray as xr

            with xr.open_dataset(Path(args.out) / "product" / "CMIP6_DL_historical.nc") as ds:
                cells = ds.sizes["lat"] * ds.sizes["lon"]
            units = {"experiments": len(cfg.future_experiments), "cells": cells}
    print(json.dumps({
        "step": args.one, "scheduler": args.scheduler or "threads", "half": args.half,
        "seconds": round(seconds, 2), "cluster_start_s": round(started, 2),
        "client_peak_gb": round(_peak_gb(resource.RUSAGE_SELF), 2),
        "worker_peak_gb": round(_peak_gb(resource.RUSAGE_CHILDREN), 2),
        "client_cpu_s": round(_cpu(resource.RUSAGE_SELF), 1),
        "worker_cpu_s": round(_cpu(resource.RUSAGE_CHILDREN), 1),
        "phases": {k: round(v, 2) for k, v in timings.items()}, "units": units,
    }))
    return 0


def _run(step: str, mode: str, out: Path, data: Path, half: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--one", step, "--scheduler", mode, "--out", str(out),
           "--data", str(data)] + (["--half"] if half else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"{step} {mode}: failed")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"{step:8s} {mode:8s}{' half' if half else '     '} {res['seconds']:8.1f} s  "
        f"(cluster start {res['cluster_start_s']:.1f} s)  "
        f"client peak {res['client_peak_gb']:.2f} GB  "
        f"worker peak {res['worker_peak_gb']:.2f} GB  cpu client/workers "
        f"{res['client_cpu_s']:.0f}/{res['worker_cpu_s']:.0f} s  "
        f"{res['phases'] or ''}",
        flush=True,
    )
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("demo/data"))
    ap.add_argument("--workdir", type=Path, default=Path("demo/work-run2"))
    ap.add_argument("--modes", default="threads,local:1,local:2")
    ap.add_argument("--no-weak", action="store_true")
    ap.add_argument("--one", choices=("prepare", "analyse"), help=argparse.SUPPRESS)
    ap.add_argument("--scheduler", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--half", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        return _one(args)

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    tmp = Path(tempfile.mkdtemp(prefix="smcore-scaling-"))
    wd = tmp / "analyse-wd"
    wd.mkdir()
    for part in ("prepared", "product"):
        shutil.copytree(args.workdir / part, wd / part)
    load = os.getloadavg()
    print(f"cpus={os.cpu_count()} load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"data={args.data} workdir copy={wd}")
    res: dict[tuple[str, str, bool], dict] = {}
    for step in ("prepare", "analyse"):
        for mode in modes:
            out = tmp / f"prepare-{mode.replace(':', '')}" if step == "prepare" else wd
            res[(step, mode, False)] = _run(step, mode, out, args.data)
        if not args.no_weak and "local:1" in modes:
            out = tmp / "prepare-half" if step == "prepare" else wd
            res[(step, "local:1", True)] = _run(step, "local:1", out, args.data, half=True)

    def ratio(a: tuple[str, str, bool], b: tuple[str, str, bool]) -> float:
        if a in res and b in res and res[b]["seconds"] > 0:
            return res[a]["seconds"] / res[b]["seconds"]
        return float("nan")

    # Per-unit rates for the sizing table (threads mode: one process, all cores).
    p, a = res.get(("prepare", "threads", False)), res.get(("analyse", "threads", False))
    nan = float("nan")
    if p:
        ph, u = p["phases"], p["units"]
        ref_rate = ph.get("compute_reference", nan) / u["reference_cell_months"] * 1e9
        per_ds = ph.get("compute_inputs", nan) / u["datasets"]
        per_month = ph.get("compute_inputs", nan) / u["model_months"] * 1e3
        print(f"rate prepare reference: {ref_rate:.1f} s per 1e9 target cell-months")
        print(f"rate prepare models: {per_ds:.2f} s per dataset ({per_month:.2f} s per 1000 "
              "model-months)")
    if a:
        u = a["units"]
        per_cell = a["seconds"] / (u["cells"] * u["experiments"]) * 1e6
        print(f"rate analyse: {per_cell:.1f} s per 1e6 cells x scenario")
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    pw = ("prepare", "local:1", True), ("prepare", "local:2", False)
    aw = ("analyse", "local:1", True), ("analyse", "local:2", False)
    print(
        "scaling "
        f"prepare_ratio={ratio(('prepare', 'local:1', False), ('prepare', 'local:2', False)):.2f} "
        f"analyse_ratio={ratio(('analyse', 'local:1', False), ('analyse', 'local:2', False)):.2f} "
        f"prepare_weak={ratio(*pw):.2f} analyse_weak={ratio(*aw):.2f} "
        f"prepare_threads_s={p['seconds'] if p else nan:.1f} "
        f"analyse_threads_s={a['seconds'] if a else nan:.1f} load1={load[0]:.2f}"
    )
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
