"""``smcore evaluate``: score the merged product and honest baselines over the test period.

Reads the prepared store and the products; writes the ``evaluate`` artifacts of
:data:`smcore.workdir.ARTIFACTS` (``truth_metrics.csv`` with a truth folder; see
docs/workdir.md and docs/evaluation.md).

Every product is scored on the same pixels: study land where the reference and the
network's product are finite in every test month. Baselines are fitted by
:func:`smcore.evaluation.fitting.fit_baselines` on
:func:`smcore.evaluation.data.load_fit_data`, which reads training and validation months only.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from smcore.config import Config
from smcore.distributed import map_tasks
from smcore.errors import ConfigError, InputError
from smcore.evaluation import baselines as bl
from smcore.evaluation.audit import audit_normalisation
from smcore.evaluation.calibration import Calibration
from smcore.evaluation.data import (
    CHUNK_MONTHS,
    EvalGrid,
    chunks,
    load_fit_data,
    month_keys,
    months_of,
    read_fields,
    select_months,
)
from smcore.evaluation.fitting import (
    BC_MEMBERS,
    DL,
    ENSEMBLE_MEAN,
    BaselineFits,
    bias_corrected_members,
    fit_baselines,
    predict_baselines,
)
from smcore.evaluation.metrics import SCORE_COLUMNS, Scores, score_product, temporal_maps
from smcore.evaluation.outputs import maps_dataset, regional_dataset
from smcore.evaluation.regions import classify_regions
from smcore.evaluation.taylor import taylor_table
from smcore.io.atomic import atomic_dir, write_csv, write_json
from smcore.io.nclock import open_netcdf
from smcore.io.netcdf import provenance_attrs, write_netcdf
from smcore.io.product import check_same_checkpoint, open_product
from smcore.prep.store import PreparedData, open_prepared
from smcore.progress import StepBar
from smcore.workdir import WorkDir, artifact, hint_for

__all__ = ["EvaluationResult", "evaluate"]


@dataclass
class EvaluationResult:
    """What ``evaluate`` computed: the tables it wrote and a few counts."""

    metrics: pd.DataFrame
    taylor: pd.DataFrame
    truth_metrics: pd.DataFrame | None
    calibration: pd.DataFrame
    n_pixels: int
    n_months: int
    models: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _plateau_mask(cfg: Config, lat: np.ndarray, lon: np.ndarray, notes: list[str]) -> xr.DataArray:
    empty = xr.DataArray(np.zeros((lat.size, lon.size), bool), dims=("lat", "lon"))
    try:
        from smcore.assets import tibetan_plateau_mask

        tp = tibetan_plateau_mask(cfg.target)
    except Exception as exc:  # noqa: BLE001 - the region is then empty, and the report says why
        notes.append(
            f"Tibetan Plateau boundary unavailable ({exc}): region tibetan_plateau is empty"
        )
        return empty
    if tp.shape != (lat.size, lon.size):
        notes.append(
            f"Tibetan Plateau mask has shape {tp.shape}, not {(lat.size, lon.size)}: region empty"
        )
        return empty
    return tp


def _check_grid(cfg: Config, static: xr.Dataset, path: Path) -> tuple[np.ndarray, np.ndarray]:
    lat = np.asarray(static["lat"].values, dtype=np.float64)
    lon = np.asarray(static["lon"].values, dtype=np.float64)
    if (lat.size, lon.size) != cfg.target.shape or not (
        np.allclose(lat, cfg.target.lat, atol=1e-4) and np.allclose(lon, cfg.target.lon, atol=1e-4)
    ):
        raise ConfigError(
            f"{path}: the prepared target grid ({lat.size}x{lon.size}) is not the configured one "
            f"{cfg.target.shape}; pass the configuration used by `smcore prepare`"
        )
    return lat, lon


def _score_table(
    products: dict[str, np.ndarray], truth: np.ndarray, months: np.ndarray
) -> tuple[list[dict[str, Any]], dict[str, Scores]]:
    rows, scores = [], {}
    for name, values in products.items():
        s = score_product(values, truth, months)
        scores[name] = s
        rows.append({"product": name, **s.row()})
    return rows, scores


def evaluate(
    cfg: Config,
    workdir: str | Path | WorkDir,
    *,
    truth: str | Path | None = None,
    progress: bool = True,
    report: Callable[[str], None] = print,
    use_qdm: bool = True,
    client: Any = None,
    stations: str | Path | None = None,
    station_flags: Sequence[str] | str | None = None,
) -> EvaluationResult:
    """Run the whole evaluation of a work directory, write ``WD/evaluation`` and report it.

    Parameters
    ----------
    cfg : Config
        The study configuration (its target grid must be the prepared one).
    workdir : path or WorkDir
        Holds ``prepared/`` and the products of the prepared experiments.
    truth : path, optional
        Folder with ``truth_<experiment>.nc`` (demo perfect-model validation).
    progress : bool
        Show progress bars.
    report : callable
        Receives the one-line summary, the score table and the notes.
    use_qdm : bool
        Add the quantile-delta-mapping baseline when xsdba is importable.
    client : distributed.Client, optional
        Run the baseline fits and predictions (ridge blocks, QDM) and the single-model
        scores as tasks on its cluster (see :mod:`smcore.distributed`); same numbers.
    stations : path, optional
        An ISMN download (folder or zip): also score every product at its stations
        (:mod:`smcore.evaluation.stations`; ``stations.csv``, ``stations_qc.csv``,
        ``stations.nc``).
    station_flags : sequence of str or str, optional
        ISMN flags whose values are kept (default ``G``).
    """
    run = _setup(cfg, workdir, truth)
    if stations is not None:
        from smcore.evaluation.stations import read_stations

        run.stations = read_stations(stations, station_flags)
    with StepBar(total=6, desc="evaluate", disable=not progress) as steps:
        result = _evaluate(run, cfg, steps, progress=progress, use_qdm=use_qdm, client=client)
    report(f"scored {result.n_pixels} pixels x {result.n_months} test months")
    shown = result.metrics[~result.metrics["product"].isin(result.models)]
    report(shown.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    report(f"(single models in {run.wd.path('metrics')})")
    for note in result.notes:
        report(f"note: {note}")
    return result


@dataclass
class _Run:
    """Checked inputs of one evaluation: store, scored pixels, test-period reference and product."""

    wd: WorkDir
    prepared: PreparedData
    grid: EvalGrid
    scored: np.ndarray
    keys_test: np.ndarray
    ref_test: np.ndarray
    dl_test: np.ndarray
    truth_dir: Path | None
    notes: list[str]
    dl_sd_test: np.ndarray | None = None
    """``ssm_sd`` of the network product over the test months (time, pixel), if it has one."""
    stations: Any = None
    """The ISMN stations to score (:class:`smcore.evaluation.stations.StationSet`), if any."""


def _setup(cfg: Config, workdir: str | Path | WorkDir, truth_dir: str | Path | None) -> _Run:
    """Open and check every input (one-line errors before any work starts)."""
    wd = workdir if isinstance(workdir, WorkDir) else WorkDir(workdir)
    wd.sweep()  # temporaries of a killed earlier run
    notes: list[str] = []
    prepared = open_prepared(wd)
    static = prepared.static
    lat, lon = _check_grid(cfg, static, prepared.path)
    if "historical" not in wd.experiments():
        raise InputError(prepared.path, "the historical experiment was not prepared")
    check_same_checkpoint(
        [wd.product(e) for e in wd.experiments()],
        hint=f"run `{hint_for(artifact('product').relative('historical'), wd.root)}` again",
    )
    truth_path = Path(truth_dir) if truth_dir is not None else None
    if truth_path is not None:
        if not truth_path.is_dir():
            raise InputError(truth_path, "truth folder not found")
        if not any((truth_path / f"truth_{exp}.nc").exists() for exp in wd.experiments()):
            raise InputError(
                truth_path, "no truth_<experiment>.nc file for any prepared experiment"
            )
    test_idx = np.flatnonzero(prepared.split_mask("test"))
    if test_idx.size == 0:
        raise InputError(prepared.path, "the test split has no months")
    keys_test = month_keys(static["time"])[test_idx]

    # Scored pixels: study land where the reference and the product are finite in every test month.
    product_path = wd.product("historical")
    dl_da = _open_product(wd, "historical", (lat, lon))
    dl_pos = select_months(dl_da, keys_test, product_path, "network product")
    land = np.asarray(static["land_mask"].values) != 0
    ref_full = np.asarray(static["reference"].isel(time=test_idx).values, dtype=np.float32)
    dl_full = np.asarray(dl_da.isel(time=dl_pos).values, dtype=np.float32)
    ref_ok = land & np.isfinite(ref_full).all(axis=0)
    scored = ref_ok & np.isfinite(dl_full).all(axis=0)
    if (ref_ok & ~scored).any():
        notes.append(
            f"{int((ref_ok & ~scored).sum())} land pixels where the network product has NaN "
            "are left out of every score"
        )
    if not scored.any():
        raise InputError(
            product_path, "no land pixel where the reference and the product are both finite"
        )
    grid = EvalGrid(
        lat=lat,
        lon=lon,
        pixels=np.flatnonzero(scored.ravel()),
        wlat=bl.bilinear_weights(np.asarray(static["clat"].values, dtype=np.float64), lat),
        wlon=bl.bilinear_weights(np.asarray(static["clon"].values, dtype=np.float64), lon),
    )
    return _Run(
        wd=wd,
        prepared=prepared,
        grid=grid,
        scored=scored,
        keys_test=keys_test,
        ref_test=grid.take(ref_full),
        dl_test=grid.take(dl_full),
        dl_sd_test=_read_spread(product_path, dl_pos, grid),
        truth_dir=truth_path,
        notes=notes,
    )


def _score_model(job: tuple[np.ndarray, np.ndarray, np.ndarray, EvalGrid]) -> Scores:
    """Scores of one model's coarse test months ``(time, clat, clon)`` against the reference."""
    coarse, ref_test, months_test, grid = job
    return score_product(grid.resample(np.asarray(coarse, dtype=np.float64)), ref_test, months_test)


def _evaluate(
    run: _Run, cfg: Config, steps: Any, *, progress: bool, use_qdm: bool, client: Any = None
) -> EvaluationResult:
    prepared, grid, notes = run.prepared, run.grid, run.notes
    static = prepared.static
    channels = prepared.channels
    keys_test, ref_test = run.keys_test, run.ref_test
    months_test = months_of(keys_test)

    # Fit on training (and validation) months only.
    steps.set_postfix_str("fitting baselines")
    data = load_fit_data(prepared, grid)
    fits = fit_baselines(data, grid, use_qdm=use_qdm, progress=progress, client=client)
    if fits.qdm_note:
        notes.append(fits.qdm_note)
    steps.update()

    # Test-period products.
    steps.set_postfix_str("predicting baselines")
    inputs = prepared.inputs("historical")
    in_test = select_months(inputs, keys_test, prepared.path, "historical inputs")
    coarse_test = np.asarray(inputs.isel(time=in_test).values, dtype=np.float32)
    products: dict[str, np.ndarray] = {DL: run.dl_test}
    products.update(predict_baselines(fits, coarse_test, keys_test, grid, client=client))
    steps.update()

    # Scores.
    steps.set_postfix_str("scoring")
    rows, scores = _score_table(products, ref_test, months_test)
    shared: Any = (ref_test, months_test, grid)
    if client is not None:  # sent to the workers once, not once per model
        shared = tuple(client.scatter(list(shared), broadcast=True))
    jobs = [(coarse_test[:, m], *shared) for m in range(len(channels))]
    for source_id, s in zip(
        channels,
        map_tasks(_score_model, jobs, client, desc="single models", progress=progress),
        strict=True,
    ):
        scores[source_id] = s
        rows.append({"product": source_id, **s.row()})
    metrics = pd.DataFrame(rows, columns=["product", *SCORE_COLUMNS])
    taylor = taylor_table({name: s.pooled for name, s in scores.items()})
    maps = {name: temporal_maps(v, ref_test) for name, v in products.items()}
    period_test = f"{keys_test[0] // 12}-{keys_test[-1] // 12}"
    calibration = [_calibration_row(
        "reference", "historical", period_test,
        _members_calibration(fits, coarse_test, keys_test, ref_test, grid),
    )]
    if run.dl_sd_test is not None:
        cal = Calibration()
        cal.add_gaussian(run.dl_test, run.dl_sd_test, ref_test)
        calibration.insert(0, _calibration_row("reference", "historical", period_test, cal, DL))
    steps.update()

    # Regions.
    steps.set_postfix_str("regions")
    lat, lon = grid.lat, grid.lon
    coords = {"lat": lat, "lon": lon}
    plateau = _plateau_mask(cfg, lat, lon, notes)
    region_map = classify_regions(
        xr.DataArray(
            grid.to_map(np.nanmean(fits.ref_clim, axis=0)), dims=("lat", "lon"), coords=coords
        ),
        xr.DataArray(run.scored.astype(np.int8), dims=("lat", "lon"), coords=coords),
        xr.DataArray(np.asarray(plateau.values).astype(bool), dims=("lat", "lon"), coords=coords),
    )
    region_of_pixel = grid.take(np.asarray(region_map.values)[None])[0]
    steps.update()

    # Perfect-model validation.
    truth_metrics = None
    if run.truth_dir is not None:
        steps.set_postfix_str("truth")
        truth_metrics, truth_calibration = _truth_scores(
            run.wd, prepared, fits, grid, run.truth_dir, products, keys_test, notes, progress,
            client, test_coarse=coarse_test, test_spread=run.dl_sd_test,
        )
        calibration.extend(truth_calibration)
    calibration_table = pd.DataFrame(calibration, columns=list(calibration[0]))
    steps.update()

    audit = audit_normalisation(static, data, fits, grid, keys_test, ref_test, coarse_test)
    for name, v in audit.items():
        if not v["consistent_with_train_only"]:
            notes.append(
                f"prepared statistic {name} is closer to an all-period value "
                "than to a train-only one"
            )

    # Write everything at once: the folder is swapped in only when complete.
    steps.set_postfix_str("writing")
    attrs = provenance_attrs(
        "smcore evaluation of CMIP6_DL against the reference",
        config_json=cfg.to_json(),
        test_period=f"{keys_test[0] // 12}-{keys_test[-1] // 12}",
        n_pixels=int(grid.pixels.size),
        n_months=int(keys_test.size),
        models_used=",".join(channels),
    )
    station_result = None
    if run.stations is not None:
        station_result = _station_scores(run, cfg, metrics, fits, attrs, client)
        notes.extend(station_result.notes)
    region_ds = region_map.to_dataset()
    region_ds.attrs = dict(attrs, title="smcore climate regions of the evaluation")
    series = {"reference": ref_test, DL: run.dl_test, ENSEMBLE_MEAN: products[ENSEMBLE_MEAN]}
    with atomic_dir(run.wd.evaluation) as tmp:
        write_csv(metrics, tmp / artifact("metrics").name, float_format="%.6g")
        write_csv(taylor, tmp / artifact("taylor").name, float_format="%.6g")
        write_netcdf(
            maps_dataset(maps, grid, dict(attrs, title="smcore per-pixel test-period scores")),
            tmp / artifact("maps").name,
        )
        write_netcdf(region_ds, tmp / artifact("regions").name)
        write_netcdf(
            regional_dataset(
                series,
                region_of_pixel,
                grid,
                keys_test,
                dict(attrs, title="smcore regional mean surface soil moisture, test period"),
            ),
            tmp / artifact("regional_series").name,
        )
        if truth_metrics is not None:
            write_csv(truth_metrics, tmp / artifact("truth_metrics").name, float_format="%.6g")
        write_csv(calibration_table, tmp / artifact("calibration").name, float_format="%.6g")
        if station_result is not None:
            station_result.write(tmp)
        write_json(
            {"statistics": audit, "notes": notes, "ridge_lambda_counts": _lambda_counts(fits)},
            tmp / artifact("audit").name,
        )
    steps.update()
    return EvaluationResult(
        metrics=metrics,
        taylor=taylor,
        truth_metrics=truth_metrics,
        calibration=calibration_table,
        n_pixels=int(grid.pixels.size),
        n_months=int(keys_test.size),
        models=list(channels),
        notes=notes,
    )


def _station_scores(
    run: _Run,
    cfg: Config,
    metrics: pd.DataFrame,
    fits: BaselineFits,
    attrs: dict[str, str],
    client: Any,
) -> Any:
    """Every product of ``metrics.csv`` at the ISMN stations (see evaluation.stations)."""
    from smcore.evaluation.stations import score_stations

    grid = run.grid
    lat, lon = grid.lat, grid.lon
    return score_stations(
        run.stations,
        grid=grid,
        reference=run.prepared.static["reference"],
        product=_open_product(run.wd, "historical", (lat, lon)),
        inputs=run.prepared.inputs("historical"),
        channels=run.prepared.channels,
        product_names=list(metrics["product"]),
        baselines=lambda coarse, keys: predict_baselines(fits, coarse, keys, grid, client=client),
        attrs=dict(
            attrs,
            station_flags=",".join(run.stations.flags),
            ismn_source=str(run.stations.root),
        ),
    )


def _lambda_counts(fits: BaselineFits) -> dict[str, int]:
    values, counts = np.unique(fits.ridge.lam, return_counts=True)
    return {f"{v:g}": int(c) for v, c in zip(values, counts, strict=True)}


def _truth_scores(
    wd: WorkDir,
    prepared: PreparedData,
    fits: BaselineFits,
    grid: EvalGrid,
    truth_dir: Path,
    test_products: dict[str, np.ndarray],
    keys_test: np.ndarray,
    notes: list[str],
    progress: bool,
    client: Any = None,
    *,
    test_coarse: np.ndarray,
    test_spread: np.ndarray | None = None,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Scores against the truth: historical over the test months, each SSP over its months.

    Also the calibration rows of the probabilistic products against the truth, per experiment.
    ``test_coarse`` (time, model, clat, clon) and ``test_spread`` (time, pixel) or None are the
    historical test months' model inputs and network spread, already read by the caller.
    """
    lat, lon = grid.lat, grid.lon
    stop = threading.Event()

    def one(exp: str) -> _TruthScores | str:
        """The scores of ``exp``, or the note saying why it has none."""
        tpath = truth_dir / f"truth_{exp}.nc"
        if not tpath.exists():
            return f"{tpath}: not found, {exp} not scored against the truth"
        truth_da = open_product(tpath, what="truth", grid=(lat, lon), chunks={})
        if exp == "historical":
            keys, products, coarse, spread = keys_test, test_products, test_coarse, test_spread
        else:
            ppath = wd.product(exp)
            if not ppath.exists():
                return f"{ppath}: not found, {exp} not scored against the truth"
            inputs = prepared.inputs(exp)
            keys = month_keys(inputs["time"])
            dl_da = _open_product(wd, exp, (lat, lon))
            dl_pos = select_months(dl_da, keys, ppath, "network product")
            products = {DL: read_fields(dl_da, dl_pos, grid)}
            spread = _read_spread(ppath, dl_pos, grid)
            coarse = np.asarray(inputs.values, dtype=np.float32)
            _check(stop)
            products.update(predict_baselines(fits, coarse, keys, grid, client=client))
        truth = read_fields(truth_da, select_months(truth_da, keys, tpath, "truth"), grid)
        months = months_of(keys)
        period = f"{keys[0] // 12}-{keys[-1] // 12}"
        out = _TruthScores()
        for name, values in products.items():
            _check(stop)
            s = score_product(values, truth, months)
            out.rows.append({"experiment": exp, "product": name, **s.row(), "period": period})
        if spread is not None:
            cal = Calibration()
            cal.add_gaussian(products[DL], spread, truth)
            out.calibration.append(_calibration_row("truth", exp, period, cal, DL))
        _check(stop)
        out.calibration.append(_calibration_row(
            "truth", exp, period, _members_calibration(fits, coarse, keys, truth, grid, stop)
        ))
        return out

    experiments = wd.experiments()
    rows: list[dict[str, Any]] = []
    calibration: list[dict[str, Any]] = []
    found = 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = max(1, min(TRUTH_WORKERS, cores or 1))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="truth")
    try:
        results = pool.map(one, experiments)
        for result in StepBar(results, total=len(experiments), desc="truth",
                              disable=not progress, leave=False):
            if isinstance(result, str):
                notes.append(result)
                continue
            found += 1
            rows.extend(result.rows)
            calibration.extend(result.calibration)
    finally:
        stop.set()  # on an error or a signal the other experiment gives up at its next step
        pool.shutdown(wait=True, cancel_futures=True)
    if found == 0:
        raise InputError(truth_dir, "no truth_<experiment>.nc file for any prepared experiment")
    table = pd.DataFrame(rows, columns=["experiment", "product", *SCORE_COLUMNS, "period"])
    return table, calibration


TRUTH_WORKERS = 2
"""Experiments scored against the truth at a time (:func:`_truth_scores`), at most one per
core this process may use.

NumPy leaves the interpreter's lock while it computes, so two threads use two cores. Each
holds one experiment's fields at 0.25°: on the default demo (2 cores), ``smcore evaluate
--truth`` takes 146 s and 5.1 GB at its peak; one at a time (and before QDM's binary search)
it took 275 s and 3.1 GB.
"""


@dataclass
class _TruthScores:
    """The ``truth_metrics.csv`` rows and calibration rows of one experiment."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    calibration: list[dict[str, Any]] = field(default_factory=list)


class _Stopped(Exception):
    """Another experiment's scoring failed or the process was interrupted: give up."""


def _check(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise _Stopped


def _members_calibration(
    fits: BaselineFits, coarse: np.ndarray, keys: np.ndarray, obs: np.ndarray, grid: EvalGrid,
    stop: threading.Event | None = None,
) -> Calibration:
    """Calibration of the bias-corrected models as an ensemble forecast of ``obs`` (time, pixel),
    a year of months at a time (every model at 0.25° for the whole record would not fit);
    ``stop`` set: given up before the next year (:class:`_Stopped`)."""
    cal = Calibration()
    for sl in chunks(coarse.shape[0], CHUNK_MONTHS):
        _check(stop)
        cal.add_ensemble(bias_corrected_members(fits, coarse[sl], keys[sl], grid), obs[sl])
    return cal


def _calibration_row(against: str, experiment: str, period: str, cal: Calibration,
                     product: str = BC_MEMBERS) -> dict[str, Any]:
    """One row of ``calibration.csv``."""
    return {"product": product, "against": against, "experiment": experiment, "period": period,
            "level": cal.level, **cal.row()}


def _read_spread(path: Path, positions: np.ndarray, grid: EvalGrid) -> np.ndarray | None:
    """``ssm_sd`` (time, pixel) m3 m-3 of a network product at time ``positions``, or None
    when the product has no spread (a network trained with ``train.loss = "mse"``)."""
    with open_netcdf(path) as ds:
        if "ssm_sd" not in ds:
            return None
        try:
            return read_fields(ds["ssm_sd"], positions, grid)
        except (OSError, RuntimeError, ValueError) as exc:
            raise InputError(path, f"cannot read ssm_sd: {exc}") from exc


def _open_product(wd: WorkDir, experiment: str, grid: tuple[np.ndarray, np.ndarray]) -> xr.DataArray:
    """The network product of ``experiment``, checked to lie on the prepared target grid."""
    rel = artifact("product").relative(experiment)
    return open_product(
        wd.root / rel, what="network product", grid=grid, chunks={},
        hint=f"run `{hint_for(rel, wd.root)}` first",
    )
