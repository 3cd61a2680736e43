"""``smcore run``: prepare → train → predict → evaluate → analyse, skipping what is up to date.

Each step after prepare records a *stamp* (``WD/.stamps/<step>.json``) holding a hash of
what it depends on (the files it reads: path, size, modification time; and the part of the
configuration it uses) and the state of what it wrote: each output's size and modification
time, and for checkpoints (``*.pt``) its SHA-256. A step is skipped only when both match:
any change upstream (a new prepared store, a new checkpoint, other products) changes the
hash, and any output replaced, removed or rewritten by hand (or by an interrupted standalone
``smcore train``) no longer matches, so the step and everything after it rerun. A step's
stamp is removed before it runs and written only when it completed, so an interrupted step
is never "up to date". ``prepare`` keeps its own fingerprint of the raw inputs and of its
store (see :mod:`smcore.prep.manifest`).

The whole run converts SIGTERM into an exception (:func:`smcore.errors.signals_as_exceptions`)
so that a killed step removes its temporaries; those a killed process could not remove are
swept at the start of the next step (:meth:`smcore.workdir.WorkDir.sweep`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from smcore import runstate
from smcore.config import Config
from smcore.errors import check_interrupted, signals_as_exceptions
from smcore.io.atomic import write_json
from smcore.workdir import STEPS, WorkDir

__all__ = [
    "file_state",
    "output_state",
    "step_key",
    "is_fresh",
    "mark_done",
    "run_pipeline",
    "STEPS",
]

HASHED_SUFFIXES = (".pt",)
"""Outputs whose stamp records a SHA-256 of the content besides size and mtime."""


def file_state(paths: Sequence[Path]) -> list[list[Any]]:
    """``[path, size, mtime_ns]`` of each existing file (missing files give ``[path, None, None]``)."""
    out: list[list[Any]] = []
    for p in sorted(Path(x) for x in paths):
        try:
            st = p.stat()
            out.append([str(p), st.st_size, st.st_mtime_ns])
        except FileNotFoundError:
            out.append([str(p), None, None])
    return out


def _sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def output_state(
    paths: Sequence[Path], root: Path | None = None, *, hash_content: bool = True
) -> list[list[Any]]:
    """``[path, size, mtime_ns, sha256]`` of each output (``None`` for what does not apply).

    Paths are relative to ``root`` when given; the SHA-256 is computed for checkpoints
    (:data:`HASHED_SUFFIXES`) when ``hash_content``; missing files give ``[path, None, None,
    None]``.
    """
    out: list[list[Any]] = []
    for p in sorted(Path(x) for x in paths):
        name = str(p.relative_to(root)) if root is not None and p.is_relative_to(root) else str(p)
        try:
            st = p.stat()
        except FileNotFoundError:
            out.append([name, None, None, None])
            continue
        digest = _sha256(p) if hash_content and p.suffix in HASHED_SUFFIXES else None
        out.append([name, st.st_size, st.st_mtime_ns, digest])
    return out


def step_key(**parts: Any) -> str:
    """A stable hash of the JSON-serialisable ``parts``."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def _stamp(wd: WorkDir, step: str) -> Path:
    return wd.stamps / f"{step}.json"


def is_fresh(wd: WorkDir, step: str, key: str, outputs: Sequence[Path]) -> bool:
    """True when ``step`` last completed with ``key`` and its outputs are as it left them.

    Every output must exist with the size and modification time recorded in the stamp (and,
    for checkpoints, the same SHA-256, computed only when size and time match). A stamp
    without recorded outputs (written by an older smcore) is not fresh.
    """
    stamp = _stamp(wd, step)
    if not stamp.exists() or not all(Path(p).exists() for p in outputs):
        return False
    try:
        recorded = json.loads(stamp.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    if not isinstance(recorded, dict) or recorded.get("key") != key:
        return False
    saved = recorded.get("outputs")
    if not isinstance(saved, list):
        return False
    now = output_state(outputs, wd.root, hash_content=False)
    if [row[:3] for row in saved] != [row[:3] for row in now]:
        return False
    return saved == output_state(outputs, wd.root)


def mark_done(
    wd: WorkDir, step: str, key: str, seconds: float, outputs: Sequence[Path] = ()
) -> None:
    """Record that ``step`` completed with ``key``, and the state of its ``outputs``."""
    write_json(
        {
            "step": step,
            "key": key,
            "outputs": output_state(outputs, wd.root),
            "seconds": round(seconds, 2),
            "finished": time.time(),
        },
        _stamp(wd, step),
    )


def _invalidate(wd: WorkDir, steps: Sequence[str]) -> None:
    for s in steps:
        _stamp(wd, s).unlink(missing_ok=True)


def run_pipeline(
    cfg: Config,
    workdir: str | Path | WorkDir,
    *,
    cmip6: str | Path,
    era5: str | Path,
    truth: str | Path | None = None,
    prepare_options: Mapping[str, Any] | None = None,
    force: bool = False,
    resume: bool = False,
    progress: bool = True,
    report: Callable[[str], None] = print,
    scheduler: str | None = None,
    stations: str | Path | None = None,
    station_flags: Sequence[str] | None = None,
) -> dict[str, float | None]:
    """Run every step whose outputs are missing or out of date; return seconds per step.

    A step that was skipped reports ``None``. ``force`` reruns every step. ``scheduler``
    (see :mod:`smcore.distributed`) runs prepare, evaluate and analyse on a dask cluster,
    started once for the whole run; train and predict are not affected. The steps after
    prepare work on the experiments that were prepared (:meth:`WorkDir.experiments`).
    ``stations``/``station_flags`` (an ISMN download and its flag policy) go to evaluate,
    whose stamp then covers the station files and the policy.
    """
    from smcore.distributed import scheduler as dask_scheduler
    from smcore.train.runtime import select_runtime

    t = cfg.train
    select_runtime(t.device, t.amp, micro_batch=t.micro_batch)  # an unusable device fails first
    wd = workdir if isinstance(workdir, WorkDir) else WorkDir(workdir)
    with signals_as_exceptions(), dask_scheduler(scheduler, report=report) as client:
        return _run_steps(
            cfg, wd, cmip6=cmip6, era5=era5, truth=truth, prepare_options=prepare_options,
            force=force, resume=resume, progress=progress, report=report, client=client,
            stations=stations, station_flags=station_flags,
        )


def _run_steps(
    cfg: Config,
    wd: WorkDir,
    *,
    cmip6: str | Path,
    era5: str | Path,
    truth: str | Path | None,
    prepare_options: Mapping[str, Any] | None,
    force: bool,
    resume: bool,
    progress: bool,
    report: Callable[[str], None],
    client: Any,
    stations: str | Path | None = None,
    station_flags: Sequence[str] | None = None,
) -> dict[str, float | None]:
    from smcore.analysis.analyse import analyse
    from smcore.evaluation.evaluate import evaluate
    from smcore.prep.prepare import prepare
    from smcore.train.loop import train
    from smcore.train.predict import predict

    timings: dict[str, float | None] = {}
    if force:
        _invalidate(wd, STEPS)
    wd.sweep()

    t0 = time.perf_counter()
    runstate.mark_running(wd, "prepare")  # prepare keeps its own fingerprint, not a stamp
    try:
        prepared = prepare(
            cfg, wd, cmip6=cmip6, era5=era5, force=force, progress=progress, report=report,
            client=client, **dict(prepare_options or {}),
        )
    finally:
        runstate.mark_finished(wd, "prepare")
    timings["prepare"] = time.perf_counter() - t0
    cfg = prepared.config  # the resolved study: the experiments that were prepared
    fingerprint = prepared.data.manifest.get("fingerprint")
    experiments = wd.experiments()
    scenarios = wd.scenarios()
    truth_state = file_state(sorted(Path(truth).glob("truth_*.nc"))) if truth else None

    def step(name: str, key: str, fn: Callable[[], Any], extra: Sequence[Path] = ()) -> None:
        outputs = [*wd.outputs(name, scenarios if name == "analyse" else experiments), *extra]
        if is_fresh(wd, name, key, outputs):
            report(f"[{name}] up to date, skipping")
            timings[name] = None
            return
        report(f"[{name}] running")
        _invalidate(wd, [name])  # until it completes, this step is not up to date
        start = time.perf_counter()
        runstate.mark_running(wd, name)  # the dashboard shows the step as running
        try:
            fn()
        finally:
            runstate.mark_finished(wd, name)
        check_interrupted()  # a signal dropped inside the step: it does not count as done
        timings[name] = time.perf_counter() - start
        mark_done(wd, name, key, timings[name] or 0.0, outputs)

    common = {"progress": progress, "report": report}
    networks = [wd.member(k).checkpoint_best for k in range(cfg.train.members)]
    step(
        "train",
        step_key(prepared=fingerprint, train=dataclasses.asdict(cfg.train)),
        lambda: train(cfg, wd, resume=resume, **common),
        extra=networks[1:],  # training/best.pt is among the train step's outputs already
    )
    step(
        "predict",
        step_key(checkpoint=file_state(networks), experiments=experiments),
        lambda: predict(cfg, wd, **common),
    )
    product_state = file_state([wd.product(e) for e in experiments])
    station_state = None
    if stations is not None:
        from smcore.evaluation.stations import parse_flags

        root = Path(stations)
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        station_state = {"files": file_state(files), "flags": list(parse_flags(station_flags))}
    evaluate_key = {"stations": station_state} if station_state is not None else {}
    step(
        "evaluate",
        step_key(prepared=fingerprint, products=product_state, truth=truth_state, **evaluate_key),
        lambda: evaluate(
            cfg, wd, truth=truth, client=client, stations=stations, station_flags=station_flags,
            **common,
        ),
    )
    step(
        "analyse",
        step_key(
            products=product_state,
            truth=truth_state,
            periods=dataclasses.asdict(cfg.periods),
            split=[cfg.north_south_split_lat, cfg.east_of_lon],
            analysis=dataclasses.asdict(cfg.analysis),
        ),
        lambda: analyse(cfg, wd, truth=truth, client=client, **common),
    )
    return timings
