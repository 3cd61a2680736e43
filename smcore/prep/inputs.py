"""CMIP6 model inputs on the coarse grid: check a dataset, then open, convert and regrid it.

For each (model, experiment) the files holding the requested months are opened lazily
and concatenated, converted to m3 m-3 from their ``units`` attribute, put in the
target's longitude convention with ascending latitude, cut to the domain plus a margin,
their ocean (NaN) cells filled with the nearest land value (so that the sea does not
pull coastal cells towards NaN) and interpolated bilinearly to the coarse grid. The
converted domain data are checked on the way (:func:`check_values`): a month without any
valid value, negative values, values above 1 m3 m-3 or an implausible median are refused
with a one-line error naming the file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import dask
import numpy as np
import xarray as xr

from smcore.config import Config
from smcore.distributed import map_tasks
from smcore.errors import InputError
from smcore.io.catalog import CMIP6Dataset
from smcore.io.cmip6 import CMIP6File, Problem, engine_of, key_label, open_files
from smcore.io.units import check_plausible, check_soil_moisture_units, to_volumetric
from smcore.regrid import GridError, bilinear_to_grid, domain_coverage, fill_nearest, select_domain

__all__ = [
    "check_dataset",
    "check_values",
    "plan_dataset",
    "model_input",
    "compute_inputs",
    "regrid_dataset",
    "to_target_convention",
    "TIME_CHUNK",
]

TIME_CHUNK = 360
"""Months per dask chunk of a model's (domain-cut) data: 30 years, a few tens of MB."""


def _label(ds: CMIP6Dataset) -> str:
    return f"{ds.source_id} {ds.experiment_id} {ds.member_id}"


def _raise_problem(ds: CMIP6Dataset, p: Problem) -> None:
    if p.path and p.message.startswith(p.path):
        raise InputError(None, p.message)
    raise InputError(p.path, f"{_label(ds)}: {p.message}")


def check_dataset(ds: CMIP6Dataset, keys: Sequence[int] | np.ndarray) -> list[CMIP6File]:
    """Files of ``ds`` that hold the monthly ``keys``; raises :class:`InputError` if unusable.

    Unusable means: an unreadable file, a missing variable, undecodable time, duplicate
    or overlapping months, a gap, or months of ``keys`` that no file holds.
    """
    for p in ds.blocking():
        _raise_problem(ds, p)
    if ds.frequency != "mon":
        raise InputError(
            ds.files[0].path if ds.files else None,
            f"{_label(ds)}: not monthly data ({ds.frequency})",
        )
    keys = np.asarray(keys, dtype=np.int64)
    have = ds.keys
    missing = np.setdiff1d(keys, have)
    if missing.size:
        after = missing > (have.max() if have.size else -1)
        path = (
            ds.files[-1].path
            if (after.all() and ds.files)
            else (ds.files[0].path if ds.files else None)
        )
        span = f"{ds.start}..{ds.end}" if have.size else "no months"
        raise InputError(
            path,
            f"{_label(ds)} covers {span}, which does not cover the requested periods "
            f"{key_label('mon', int(keys[0]))}..{key_label('mon', int(keys[-1]))} "
            f"({missing.size} months missing, first {key_label('mon', int(missing[0]))})",
        )
    return [f for f in ds.files if np.isin(np.asarray(f.keys), keys).any()]


def plan_dataset(
    ds: CMIP6Dataset, cfg: Config, keys: Sequence[int] | np.ndarray
) -> tuple[list[CMIP6File], float]:
    """Check a dataset from its catalog entry alone (no data read, no file opened).

    Returns the files holding ``keys`` and the fraction of the coarse grid that the
    model grid spans. Raises :class:`InputError` naming the file for unusable datasets
    (see :func:`check_dataset`), unknown units, grids without 1-D lat/lon, and grids
    that do not overlap the domain.
    """
    files = check_dataset(ds, keys)
    for f in files:
        check_soil_moisture_units(f.units, cfg.variable, f.path)
        if f.grid_note is not None or f.lat is None or f.lon is None:
            raise InputError(f.path, f.grid_note or "no latitude/longitude coordinates")
    f0 = files[0]
    grid = xr.DataArray(
        np.zeros((f0.lat.size, f0.lon.size), dtype="int8"),
        dims=("lat", "lon"),  # type: ignore[union-attr]
        coords={"lat": f0.lat, "lon": f0.lon},
    )
    try:
        cut = to_target_convention(grid, cfg)
    except GridError as exc:
        raise InputError(f0.path, str(exc)) from exc
    return files, domain_coverage(cut, cfg.coarse)


def to_target_convention(da: xr.DataArray, cfg: Config) -> xr.DataArray:
    """Longitudes wrapped around the target grid, latitude ascending, domain + margin cut.

    Raises :class:`~smcore.regrid.GridError` when the grid does not overlap the domain.
    """
    return select_domain(da, cfg.target, cfg.domain_margin_deg)


def _volumetric(
    ds: CMIP6Dataset, cfg: Config, keys: Sequence[int] | np.ndarray
) -> tuple[list[CMIP6File], float, xr.DataArray]:
    """The checked files, the coverage and the domain-cut data in m3 m-3 (lazy, native grid)."""
    files, coverage = plan_dataset(ds, cfg, keys)
    try:
        raw = open_files(
            files,
            cfg.variable,
            keys=keys,
            time_chunk=TIME_CHUNK,
            transform=lambda da: to_target_convention(da, cfg),
        )
    except ValueError as exc:
        raise InputError(None, str(exc)) from exc
    vol = to_volumetric(raw, raw.attrs.get("units"), cfg.layer_depth_mm, source=files[0].path)
    return files, coverage, vol


def _on_coarse_grid(
    vol: xr.DataArray, cfg: Config, files: Sequence[CMIP6File], coverage: float
) -> xr.DataArray:
    out = bilinear_to_grid(fill_nearest(vol), cfg.coarse, names=("clat", "clon"), skipna=False)
    out.attrs.update(vol.attrs)
    out.attrs["coverage"] = coverage
    out.attrs["source_files"] = [str(f.path) for f in files]
    return out


def model_input(ds: CMIP6Dataset, cfg: Config, keys: Sequence[int] | np.ndarray) -> xr.DataArray:
    """One model's experiment on the coarse grid, lazily: ``(time, clat, clon)`` float32 m3 m-3.

    ``keys`` are the monthly keys wanted (see :func:`smcore.io.cmip6.month_range`).
    All checks happen here, before any data is read.
    """
    files, coverage, vol = _volumetric(ds, cfg, keys)
    return _on_coarse_grid(vol, cfg, files, coverage)


def _file_of_month(files: Sequence[CMIP6File], keys: np.ndarray) -> Callable[[int], Path | None]:
    """``f(i)``: the file holding month ``keys[i]``."""
    owner = {int(k): f.path for f in files for k in f.keys}

    def locate(i: int) -> Path | None:
        return owner.get(int(keys[i]))

    return locate


def check_values(
    ds: CMIP6Dataset,
    vol: np.ndarray,
    keys: Sequence[int] | np.ndarray,
    files: Sequence[CMIP6File],
    units: str | None,
    layer_depth_mm: float,
) -> None:
    """Refuse a dataset whose converted domain data ``vol(time, lat, lon)`` cannot be right.

    A month with no valid value over the domain (a file holding only fill values would
    otherwise be filled with the training mean), negative values (e.g. an undeclared fill
    value), values above 1 m3 m-3 and an implausible median (:func:`smcore.io.units.check_plausible`). One-line
    :class:`InputError` naming the file.
    """
    keys = np.asarray(sorted(int(k) for k in keys), dtype=np.int64)
    locate = _file_of_month(files, keys)
    empty = ~np.isfinite(vol.reshape(vol.shape[0], -1)).any(axis=1)
    if empty.any():
        first = int(np.flatnonzero(empty)[0])
        path = locate(first)
        in_file = [i for i in np.flatnonzero(empty) if locate(int(i)) == path]
        total = sum(1 for i in range(len(keys)) if locate(i) == path)
        span = (
            f"all its {total} months" if len(in_file) == total
            else f"{len(in_file)} of its {total} months, first {key_label('mon', int(keys[first]))}"
        )
        raise InputError(
            path or (files[0].path if files else None),
            f"{_label(ds)}: {ds.variable_id or 'data'} is all NaN over the domain in {span} "
            "(missing data or an undeclared fill value)",
        )
    check_plausible(
        vol,
        source=files[0].path if files else None,
        units=units,
        what=f"{_label(ds)} {ds.variable_id or 'soil moisture'}",
        locate=locate,
        layer_depth_mm=layer_depth_mm,
    )


def _find_bad_file(paths: Sequence[str], variable: str) -> tuple[str, str] | None:
    for p in paths:
        try:
            with xr.open_dataset(p, decode_times=False, engine=engine_of(p)) as ds:
                ds[variable].load()
        except Exception as exc:  # noqa: BLE001
            return p, str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(
                exc
            ).__name__
    return None


def regrid_dataset(
    ds: CMIP6Dataset, cfg: Config, keys: Sequence[int] | np.ndarray
) -> np.ndarray:
    """Read, convert and regrid one dataset: ``array(time, clat, clon)`` float32 m3 m-3.

    Runs in this process or as one task on a dask worker (the data of one dataset is
    all a task holds). Raises :class:`InputError` naming the file when data cannot be
    read or is all NaN.
    """
    checked, coverage, vol = _volumetric(ds, cfg, keys)
    da = _on_coarse_grid(vol, cfg, checked, coverage)
    files = list(da.attrs.get("source_files", []))
    try:
        # one pass over the files: the converted domain data (checked) and the coarse grid
        native, coarse = dask.compute(vol.data, da.data)
    except Exception as exc:  # noqa: BLE001 - find the culprit and name it
        bad = _find_bad_file(files, cfg.variable)
        if bad is not None:
            raise InputError(bad[0], f"unreadable data: {bad[1]}") from exc
        raise
    check_values(
        ds, np.asarray(native), keys, checked, vol.attrs.get("source_units"), cfg.layer_depth_mm
    )
    del native
    values = np.asarray(coarse, dtype="float32")
    if not np.isfinite(values).any():
        raise InputError(
            files[0] if files else None,
            f"{ds.source_id} {ds.experiment_id}: no valid value over the domain",
        )
    return values


def _regrid_job(job: tuple[CMIP6Dataset, Config, np.ndarray]) -> np.ndarray:
    return regrid_dataset(*job)


def compute_inputs(
    datasets: Mapping[tuple[str, str], CMIP6Dataset],
    cfg: Config,
    windows: Mapping[str, Sequence[int] | np.ndarray],
    progress: bool = False,
    client: Any = None,
) -> dict[str, np.ndarray]:
    """Open, regrid and compute each dataset (:func:`regrid_dataset`), keeping memory bounded.

    ``datasets`` maps ``(source_id, experiment_id)`` to a catalog entry, ``windows`` each
    experiment to its monthly keys. Without ``client`` the datasets are done one after
    another here; with a ``distributed.Client`` each dataset is one task on the cluster
    (a few in flight per worker, see :func:`smcore.distributed.map_tasks`). Returns
    ``{experiment: array(time, model, clat, clon)}`` float32 m3 m-3 with the models in the
    order they first appear in ``datasets``. Raises :class:`InputError` naming the file
    when data cannot be read or is all NaN.
    """
    sources = list(dict.fromkeys(src for src, _ in datasets))
    jobs = [(ds, cfg, np.asarray(windows[exp])) for (_src, exp), ds in datasets.items()]
    results = map_tasks(
        _regrid_job, jobs, client, desc="regridding models", progress=progress, unit="dataset"
    )
    out: dict[str, np.ndarray] = {}
    for (src, exp), values in zip(datasets, results, strict=True):
        if exp not in out:
            out[exp] = np.full(
                (values.shape[0], len(sources)) + values.shape[1:], np.nan, dtype="float32"
            )
        out[exp][:, sources.index(src)] = values
    return out
