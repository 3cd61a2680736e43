"""``smcore run``: prepare → train → predict → evaluate → analyse, skipping what is up to date.

Each step after prepare records a *stamp* (``WD/.stamps/<step>.json``) holding a hash of
what it depends on: the files it reads (path, size, modification time) and the part of
the configuration it uses. A step is skipped when its stamp matches and all its outputs
exist; any change upstream (a new prepared store, a new checkpoint, other products)
changes the hash and reruns the step and everything after it. ``prepare`` keeps its own
fingerprint of the raw inputs (see :mod:`smcore.prep.manifest`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from smcore.config import Config
from smcore.io.atomic import write_json
from smcore.workdir import WorkDir

__all__ = ["file_state", "step_key", "is_fresh", "mark_done", "run_pipeline", "STEPS"]

STEPS: tuple[str, ...] = ("prepare", "train", "predict", "evaluate", "analyse")


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


def step_key(**parts: Any) -> str:
    """A stable hash of the JSON-serialisable ``parts``."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def _stamp(wd: WorkDir, step: str) -> Path:
    return wd.root / ".stamps" / f"{step}.json"


def is_fresh(wd: WorkDir, step: str, key: str, outputs: Sequence[Path]) -> bool:
    """True when ``step`` last ran with ``key`` and every output still exists."""
    stamp = _stamp(wd, step)
    if not stamp.exists() or not all(Path(p).exists() for p in outputs):
        return False
    try:
        return json.loads(stamp.read_text()).get("key") == key
    except (OSError, json.JSONDecodeError):
        return False


def mark_done(wd: WorkDir, step: str, key: str, seconds: float) -> None:
    """Record that ``step`` completed with ``key``."""
    write_json({"step": step, "key": key, "seconds": round(seconds, 2), "finished": time.time()}, _stamp(wd, step))


def _invalidate(wd: WorkDir, steps: Sequence[str]) -> None:
    for s in steps:
        _stamp(wd, s).unlink(missing_ok=True)


def run_pipeline(
    cfg: Config,
    cmip6: str | Path,
    era5: str | Path,
    workdir: str | Path | WorkDir,
    *,
    truth: str | Path | None = None,
    prepare_options: Mapping[str, Any] | None = None,
    force: bool = False,
    resume: bool = False,
    progress: bool = True,
    report: Callable[[str], None] = print,
    scheduler: str | None = None,
) -> dict[str, float | None]:
    """Run every step whose outputs are missing or out of date; return seconds per step.

    A step that was skipped reports ``None``. ``force`` reruns every step. ``scheduler``
    (see :mod:`smcore.distributed`) runs prepare, evaluate and analyse on a dask cluster,
    started once for the whole run; train and predict are not affected.
    """
    from smcore.distributed import scheduler as dask_scheduler

    with dask_scheduler(scheduler, report=report) as client:
        return _run_steps(
            cfg, cmip6, era5, workdir, truth=truth, prepare_options=prepare_options,
            force=force, resume=resume, progress=progress, report=report, client=client,
        )


def _run_steps(
    cfg: Config,
    cmip6: str | Path,
    era5: str | Path,
    workdir: str | Path | WorkDir,
    *,
    truth: str | Path | None,
    prepare_options: Mapping[str, Any] | None,
    force: bool,
    resume: bool,
    progress: bool,
    report: Callable[[str], None],
    client: Any,
) -> dict[str, float | None]:
    from smcore.analysis.analyse import analyse
    from smcore.evaluation.evaluate import run_evaluation
    from smcore.prep.prepare import prepare
    from smcore.prep.store import open_prepared
    from smcore.train.loop import train
    from smcore.train.predict import predict

    wd = workdir if isinstance(workdir, WorkDir) else WorkDir(workdir)
    timings: dict[str, float | None] = {}
    if force:
        _invalidate(wd, STEPS)

    t0 = time.perf_counter()
    prepare(
        cfg, cmip6, era5, wd, force=force, progress=progress, report=report, client=client,
        **dict(prepare_options or {}),
    )
    timings["prepare"] = time.perf_counter() - t0
    prepared = open_prepared(wd)
    experiments = list(prepared.experiments)
    truth_state = file_state(sorted(Path(truth).glob("truth_*.nc"))) if truth else None

    def step(name: str, key: str, outputs: Sequence[Path], fn: Callable[[], Any]) -> None:
        if is_fresh(wd, name, key, outputs):
            report(f"[{name}] up to date, skipping")
            timings[name] = None
            return
        report(f"[{name}] running")
        start = time.perf_counter()
        fn()
        timings[name] = time.perf_counter() - start
        mark_done(wd, name, key, timings[name] or 0.0)

    train_key = step_key(
        prepared=prepared.manifest.get("fingerprint"),
        train=dataclasses.asdict(cfg.train),
    )
    step(
        "train",
        train_key,
        [wd.checkpoint_best, wd.history],
        lambda: train(cfg, wd, resume=resume, progress=progress),
    )

    products = [wd.product(e) for e in experiments]
    predict_key = step_key(checkpoint=file_state([wd.checkpoint_best]), experiments=experiments)
    step("predict", predict_key, products, lambda: predict(cfg, wd, experiments=experiments, progress=progress))

    product_state = file_state(products)
    eval_key = step_key(
        prepared=prepared.manifest.get("fingerprint"), products=product_state, truth=truth_state
    )
    step(
        "evaluate",
        eval_key,
        [wd.evaluation / "metrics.csv", wd.evaluation / "taylor.csv", wd.evaluation / "maps.nc"],
        lambda: run_evaluation(wd.root, cfg, truth, progress=progress, echo=report, client=client),
    )

    analyse_key = step_key(
        products=product_state,
        truth=truth_state,
        periods=dataclasses.asdict(cfg.periods),
        split=[cfg.north_south_split_lat, cfg.east_of_lon],
    )
    step(
        "analyse",
        analyse_key,
        [wd.analysis / "ssmi_trends.nc", wd.analysis / "change_rates.csv", wd.analysis / "area_fractions.csv"],
        lambda: analyse(wd, cfg, truth=truth, progress=progress, client=client),
    )
    return timings
