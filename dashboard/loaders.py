"""Read the artifacts of a work directory once per server process.

Every loader is a module-level ``@pn.cache`` function keyed by the file's absolute path and
its modification stamp, so all sessions share one copy and a rewritten file is read again.
Paths are resolved and refused when they lead outside the work directory (a symlink to
``/etc`` is not an artifact). A missing artifact raises :class:`ArtifactMissing`, whose
message says which ``smcore`` command writes it.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dask.array  # noqa: F401 - imported before any loader thread starts: concurrent first
import netCDF4  # noqa: F401   imports of these (xarray imports them lazily) can fail in threads
import numpy as np
import pandas as pd
import panel as pn
import xarray as xr
import zarr  # noqa: F401

from dashboard.config import DEFAULT_PIXEL
from smcore.errors import InputError
from smcore.prep.store import PreparedData, open_prepared
from smcore.workdir import WorkDir

__all__ = [
    "ArtifactMissing",
    "resolve_artifact",
    "stamp",
    "read_csv",
    "read_json",
    "read_netcdf",
    "open_product",
    "open_store",
    "coarse_field",
    "static_field",
    "product_point",
    "reference_point",
    "clear_caches",
    "warm_up",
    "start_warm_up",
    "background",
    "HINTS",
]

log = logging.getLogger(__name__)

HINTS: dict[str, str] = {
    "prepared": "smcore prepare",
    "training": "smcore train",
    "product": "smcore predict",
    "evaluation": "smcore evaluate",
    "analysis": "smcore analyse",
}


class ArtifactMissing(InputError):
    """An artifact a view needs is not in the work directory (yet)."""

    def __init__(self, path: str | Path, command: str) -> None:
        self.command = command
        super().__init__(path, f"not found: run `{command}` to create it")


def resolve_artifact(root: str | Path, relative: str | Path) -> Path:
    """Absolute path of ``relative`` inside the work directory ``root``.

    Raises :class:`ArtifactMissing` when the file does not exist and :class:`InputError`
    when the resolved path (symlinks followed) lies outside ``root``.
    """
    base = Path(root).resolve()
    path = (base / relative).resolve()
    if not path.is_relative_to(base):
        raise InputError(
            base / relative, f"resolves to {path}, outside the work directory; refusing to read it"
        )
    if not path.exists():
        top = Path(relative).parts[0]
        raise ArtifactMissing(base / relative, f"{HINTS.get(top, 'smcore run')} --workdir {base}")
    return path


def stamp(path: Path) -> int:
    """Modification time (ns) of a file, or of the newest entry of a folder's top level."""
    st = path.stat().st_mtime_ns
    if path.is_dir():
        st = max([st, *(p.stat().st_mtime_ns for p in path.iterdir())])
    return st


@pn.cache(max_items=32)
def _csv(path: str, mtime: int) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read CSV: {exc}") from exc


@pn.cache(max_items=16)
def _json(path: str, mtime: int) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read JSON: {exc}") from exc


@pn.cache(max_items=16)
def _netcdf(path: str, mtime: int) -> xr.Dataset:
    try:
        with xr.open_dataset(path) as ds:
            return ds.load()
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read NetCDF: {exc}") from exc


@pn.cache(max_items=8)
def _product(path: str, mtime: int) -> xr.Dataset:
    try:
        return xr.open_dataset(path, chunks=None, cache=False)
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read NetCDF: {exc}") from exc


@pn.cache(max_items=2)
def _store(root: str, mtime: int) -> PreparedData:
    return open_prepared(root)


@pn.cache(max_items=24)
def _coarse(root: str, mtime: int, experiment: str, product: str) -> xr.DataArray:
    inputs = _store(root, mtime).inputs(experiment)
    if product == "ensemble_mean":
        da = inputs.mean("model")
    else:
        if product not in inputs["model"].values:
            raise InputError(root, f"model {product!r} is not among the prepared channels")
        da = inputs.sel(model=product, drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return da.astype(np.float32).load()


def read_csv(root: str | Path, relative: str) -> pd.DataFrame:
    """A CSV artifact as a DataFrame (cached; do not modify it in place)."""
    path = resolve_artifact(root, relative)
    return _csv(str(path), stamp(path))


def read_json(root: str | Path, relative: str) -> dict[str, Any]:
    """A JSON artifact (cached)."""
    path = resolve_artifact(root, relative)
    return _json(str(path), stamp(path))


def read_netcdf(root: str | Path, relative: str) -> xr.Dataset:
    """A small NetCDF artifact, loaded into memory (cached)."""
    path = resolve_artifact(root, relative)
    return _netcdf(str(path), stamp(path))


def open_product(root: str | Path, experiment: str) -> xr.Dataset:
    """``product/CMIP6_DL_<experiment>.nc`` opened lazily (one handle per server)."""
    path = resolve_artifact(root, f"product/CMIP6_DL_{experiment}.nc")
    return _product(str(path), stamp(path))


def open_store(root: str | Path) -> PreparedData:
    """The prepared store (lazy), shared by all sessions."""
    wd = WorkDir(root)
    resolve_artifact(wd.root, "prepared/data.zarr")
    manifest = resolve_artifact(wd.root, "prepared/manifest.json")
    return _store(str(wd.root), stamp(manifest))


def coarse_field(root: str | Path, experiment: str, product: str) -> xr.DataArray:
    """One model's (or the ensemble mean's) coarse inputs in memory, m3 m-3, (time, clat, clon)."""
    wd = WorkDir(root)
    manifest = resolve_artifact(wd.root, "prepared/manifest.json")
    open_store(wd.root)
    return _coarse(str(wd.root), stamp(manifest), experiment, product)


def clear_caches() -> None:
    """Forget everything loaded (tests; a server never needs this)."""
    for fn in (
        _csv,
        _json,
        _netcdf,
        _product,
        _store,
        _coarse,
        _static_var,
        _product_point,
        _reference_point,
    ):
        fn.clear()


@pn.cache(max_items=16)
def _static_var(root: str, mtime: int, name: str) -> xr.DataArray:
    return _store(root, mtime).static[name].load()


def static_field(root: str | Path, name: str) -> xr.DataArray:
    """One variable of the prepared root group (``land_mask``, ``climatology``, …), in memory."""
    wd = WorkDir(root)
    manifest = resolve_artifact(wd.root, "prepared/manifest.json")
    open_store(wd.root)
    return _static_var(str(wd.root), stamp(manifest), name)


@pn.cache(max_items=512)
def _product_point(path: str, mtime: int, i: int, j: int) -> pd.Series:
    ds = _product(path, mtime)
    values = ds["ssm"].isel(lat=i, lon=j).values.astype(np.float32)
    return pd.Series(values, index=_month_start(ds["time"].values), name="CMIP6_DL")


@pn.cache(max_items=512)
def _reference_point(root: str, mtime: int, i: int, j: int) -> pd.Series:
    ref = _store(root, mtime).static["reference"]
    values = ref.isel(lat=i, lon=j).values.astype(np.float32)
    return pd.Series(values, index=_month_start(ref["time"].values), name="reference")


def product_point(root: str | Path, experiment: str, i: int, j: int) -> pd.Series:
    """The CMIP6_DL series of the target cell (row ``i``, column ``j``), m3 m-3, by month start."""
    path = resolve_artifact(root, f"product/CMIP6_DL_{experiment}.nc")
    return _product_point(str(path), stamp(path), int(i), int(j))


def reference_point(root: str | Path, i: int, j: int) -> pd.Series:
    """The prepared reference series of one target cell, m3 m-3, index month start."""
    wd = WorkDir(root)
    manifest = resolve_artifact(wd.root, "prepared/manifest.json")
    open_store(wd.root)
    return _reference_point(str(wd.root), stamp(manifest), int(i), int(j))


def _month_start(time: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(time).to_period("M").to_timestamp()


def warm_up(root: str | Path, pixel: tuple[float, float] = DEFAULT_PIXEL) -> dict[str, float]:
    """Read what the first sessions will need, so that they find it in the cache.

    Run once per server in a background thread (``smcore serve`` does): the prepared store and
    its climatology, every product, the ensemble mean of every experiment's inputs, the series of
    the default explorer cell, and the small evaluation and analysis files. Missing artifacts are
    skipped. Returns seconds spent per step.
    """
    import time

    wd = WorkDir(root)
    spent: dict[str, float] = {}

    def step(name: str, fn: Any) -> None:
        t0 = time.perf_counter()
        try:
            fn()
        except (InputError, OSError, KeyError, ValueError) as exc:
            log.info("warm-up %s skipped: %s", name, exc)
        spent[name] = round(time.perf_counter() - t0, 3)

    step("store", lambda: static_field(wd.root, "climatology"))
    for rel in (
        "evaluation/maps.nc",
        "evaluation/regions.nc",
        "evaluation/regional_series.nc",
        "analysis/ssmi_trends.nc",
    ):
        step(rel, lambda rel=rel: read_netcdf(wd.root, rel))
    for rel in (
        "evaluation/metrics.csv",
        "evaluation/taylor.csv",
        "analysis/change_rates.csv",
        "analysis/area_fractions.csv",
        "training/history.csv",
    ):
        step(rel, lambda rel=rel: read_csv(wd.root, rel))
    try:
        experiments = list(open_store(wd.root).experiments)
    except InputError:
        experiments = []
    for exp in experiments:
        step(f"ensemble mean {exp}", lambda exp=exp: coarse_field(wd.root, exp, "ensemble_mean"))

        def series(exp: str = exp) -> None:
            ds = open_product(wd.root, exp)
            i = int(np.abs(ds["lat"].values - pixel[1]).argmin())
            j = int(np.abs(ds["lon"].values - pixel[0]).argmin())
            product_point(wd.root, exp, i, j)
            if exp == "historical":
                reference_point(wd.root, i, j)

        step(f"default series {exp}", series)
    return spent


@functools.lru_cache(maxsize=1)
def background() -> ThreadPoolExecutor:
    """The server's single loader thread (reads that would block an interaction run here)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="smcore-loader")


@functools.lru_cache(maxsize=8)
def start_warm_up(root: str) -> threading.Thread:
    """Run :func:`warm_up` for ``root`` once per process, on a daemon thread."""
    thread = threading.Thread(target=warm_up, args=(root,), name="smcore-warm-up", daemon=True)
    thread.start()
    return thread
