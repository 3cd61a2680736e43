"""Read the artifacts of a work directory once per server process.

Every loader is a module-level cached function (:func:`shared_cache`) keyed by the file's
absolute path and its modification stamp, so all sessions share one copy and a rewritten
file is read again. Paths come from the one table of artifacts
(:data:`smcore.workdir.ARTIFACTS`); they are resolved and refused when they lead outside the
work directory (a symlink to ``/etc`` is not an artifact). A missing artifact raises
:class:`ArtifactMissing`, whose message says which ``smcore`` command writes it
(:func:`smcore.workdir.hint_for`). Products are opened through
:func:`smcore.io.product.open_product`, so a bad one is refused with the same message as in
``smcore evaluate`` and ``smcore analyse``.

The caches are shared by every session and compute each key once (:class:`SharedCache`): two
sessions asking for the same cell wait for one read, not two. Any failure of a read (a
corrupted chunk, a truncated CSV, a file that is not JSON) is raised as an
:class:`~smcore.errors.InputError` naming the file, which the views show in the tab.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dask.array  # noqa: F401 - imported before any loader thread starts: concurrent first
import netCDF4  # noqa: F401   imports of these (xarray imports them lazily) can fail in threads
import numpy as np
import pandas as pd
import xarray as xr
import zarr  # noqa: F401

from dashboard.config import DEFAULT_PIXEL
from dashboard.contain import describe
from smcore.errors import InputError
from smcore.io.product import open_product as open_checked_product
from smcore.prep.store import PreparedData, open_prepared
from smcore.workdir import WorkDir, artifact, hint_for
from smcore.io.nclock import open_netcdf

__all__ = [
    "ArtifactMissing",
    "SharedCache",
    "shared_cache",
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
    "product_month",
    "reference_point",
    "clear_caches",
    "warm_up",
    "start_warm_up",
    "background",
]

log = logging.getLogger(__name__)


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
    # on strings: every session's timer resolves each artifact (pathlib's objects cost more
    # than the system calls)
    base = os.path.realpath(root)
    asked = os.path.join(base, relative)
    path = os.path.realpath(asked)
    if path != base and not path.startswith(base.rstrip(os.sep) + os.sep):
        raise InputError(
            asked, f"resolves to {path}, outside the work directory; refusing to read it"
        )
    if not os.path.exists(path):
        raise ArtifactMissing(asked, hint_for(relative, base))
    return Path(path)


def stamp(path: Path) -> int:
    """Modification time (ns) of a file, or of the newest entry of a folder's top level."""
    st = path.stat().st_mtime_ns
    if path.is_dir():
        st = max([st, *(p.stat().st_mtime_ns for p in path.iterdir())])
    return st


class SharedCache:
    """A function's results by arguments, for every session of the server: each key read once.

    Least recently used entries beyond ``max_items`` are forgotten. A key being computed has
    a lock of its own: a second caller of the same key waits for the first one's result
    instead of reading the file again, while other keys are computed meanwhile. A failure is
    not remembered (the next caller tries again) and reaches every caller waiting for it.
    ``calls`` counts the computations (tests, benchmarks).
    """

    def __init__(self, fn: Callable[..., Any], max_items: int) -> None:
        self._fn = fn
        self.max_items = max_items
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._pending: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()
        self.calls = 0
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Hashable) -> Any:
        """The result for ``args``: remembered, being computed (wait), or computed now."""
        with self._guard:
            if args in self._items:
                self._items.move_to_end(args)
                return self._items[args]
            lock = self._pending.setdefault(args, threading.Lock())
        with lock:
            with self._guard:
                if args in self._items:  # computed by the caller we waited for
                    self._items.move_to_end(args)
                    return self._items[args]
                self.calls += 1
            try:
                value = self._fn(*args)
            finally:
                with self._guard:
                    if self._pending.get(args) is lock:
                        del self._pending[args]
            with self._guard:
                self._items[args] = value
                while len(self._items) > self.max_items:
                    self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        """Forget every result (keys being computed finish and are kept)."""
        with self._guard:
            self._items.clear()
            self.calls = 0


def shared_cache(max_items: int) -> Callable[[Callable[..., Any]], SharedCache]:
    """Decorator: :class:`SharedCache` of at most ``max_items`` results."""

    def wrap(fn: Callable[..., Any]) -> SharedCache:
        return SharedCache(fn, max_items)

    return wrap


def _reading(path: str | Path, what: str, exc: BaseException) -> InputError:
    """The :class:`InputError` for a failed read of ``path``: the file and the problem."""
    if isinstance(exc, InputError):
        return exc
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    problem = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return InputError(path, f"cannot read {what}: {problem}")


@shared_cache(max_items=32)
def _csv(path: str, mtime: int) -> pd.DataFrame:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            if size:
                fh.seek(size - 1)
                last = fh.read(1)
        if not size:
            raise InputError(path, "empty file (0 bytes): was it written completely?")
        if last not in (b"\n", b"\r"):
            raise InputError(
                path, "truncated: the last line ends in the middle (no line break at the end)"
            )
        return pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure names the file
        raise _reading(path, "CSV", exc) from exc


@shared_cache(max_items=16)
def _json(path: str, mtime: int) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except Exception as exc:  # noqa: BLE001 - any reader failure names the file
        raise _reading(path, "JSON", exc) from exc


@shared_cache(max_items=16)
def _netcdf(path: str, mtime: int) -> xr.Dataset:
    try:
        with open_netcdf(path) as ds:
            return ds.load()
    except Exception as exc:  # noqa: BLE001 - a corrupted chunk fails only here
        raise _reading(path, "NetCDF", exc) from exc


@shared_cache(max_items=8)
def _product(path: str, mtime: int) -> xr.DataArray:
    return open_checked_product(path, what="network product", chunks=None)


UNCERTAINTY_VARIABLES = ("ssm_sd", "ssm_members_spread")
"""The product's ancillary variables of ``ssm`` the explorer draws (m3 m-3, like ``ssm``)."""


@shared_cache(max_items=8)
def _ancillary(path: str, mtime: int) -> dict[str, xr.DataArray]:
    """The :data:`UNCERTAINTY_VARIABLES` a product holds, lazily indexed, by name."""
    ssm = _product(path, mtime)
    try:
        ds = open_netcdf(path, chunks=None, cache=False)
    except Exception as exc:  # noqa: BLE001 - any reader failure names the file
        raise _reading(path, "NetCDF", exc) from exc
    found = {}
    for name in UNCERTAINTY_VARIABLES:
        if name in ds and ds[name].dims == ssm.dims:
            found[name] = ds[name]
    return found


def _variable(path: str, mtime: int, name: str) -> xr.DataArray:
    """``ssm`` or one of its :data:`UNCERTAINTY_VARIABLES` (an :class:`InputError` if absent)."""
    if name == "ssm":
        return _product(path, mtime)
    found = _ancillary(path, mtime)
    if name not in found:
        raise InputError(path, f"no variable {name!r} in this product")
    return found[name]


def product_uncertainty(root: str | Path, experiment: str) -> tuple[str, ...]:
    """Which :data:`UNCERTAINTY_VARIABLES` ``CMIP6_DL_<experiment>.nc`` holds, in that order."""
    path = _product_path(root, experiment)
    return tuple(_ancillary(str(path), stamp(path)))


@shared_cache(max_items=2)
def _store(root: str, mtime: int) -> PreparedData:
    try:
        return open_prepared(root)
    except Exception as exc:  # noqa: BLE001 - any reader failure names the store
        raise _reading(Path(root) / "prepared", "the prepared store", exc) from exc


@shared_cache(max_items=24)
def _coarse(root: str, mtime: int, experiment: str, product: str) -> xr.DataArray:
    store = _store(root, mtime)
    try:
        inputs = store.inputs(experiment)
        if product == "ensemble_mean":
            da = inputs.mean("model")
        else:
            if product not in inputs["model"].values:
                raise InputError(root, f"model {product!r} is not among the prepared channels")
            da = inputs.sel(model=product, drop=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return da.astype(np.float32).load()
    except Exception as exc:  # noqa: BLE001 - a corrupted chunk of the store names it
        raise _reading(store.path, f"the {experiment} inputs", exc) from exc


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


def _product_path(root: str | Path, experiment: str) -> Path:
    return resolve_artifact(root, artifact("product").relative(experiment))


def open_product(root: str | Path, experiment: str) -> xr.DataArray:
    """``ssm(time, lat, lon)`` of ``CMIP6_DL_<experiment>.nc``, checked and lazily indexed.

    One handle per server; a month or a cell reads only that part of the file (m3 m-3).
    """
    path = _product_path(root, experiment)
    return _product(str(path), stamp(path))


def _prepared(root: str | Path) -> tuple[str, int]:
    """The cache key of the prepared store: the work directory and the manifest's stamp.

    Raises :class:`ArtifactMissing` (or refuses a path leading outside) for the store and
    the manifest.
    """
    wd = WorkDir(root)
    resolve_artifact(wd.root, artifact("prepared_store").relative())
    manifest = resolve_artifact(wd.root, artifact("manifest").relative())
    return str(wd.root), stamp(manifest)


def open_store(root: str | Path) -> PreparedData:
    """The prepared store (lazy), shared by all sessions."""
    return _store(*_prepared(root))


def coarse_field(root: str | Path, experiment: str, product: str) -> xr.DataArray:
    """One model's (or the ensemble mean's) coarse inputs in memory, m3 m-3, (time, clat, clon)."""
    return _coarse(*_prepared(root), experiment, product)


def clear_caches() -> None:
    """Forget everything loaded (tests; a server never needs this)."""
    for fn in (
        _csv,
        _json,
        _netcdf,
        _product,
        _ancillary,
        _store,
        _coarse,
        _static_var,
        _product_month,
        _product_point,
        _reference_point,
    ):
        fn.clear()


@shared_cache(max_items=16)
def _static_var(root: str, mtime: int, name: str) -> xr.DataArray:
    store = _store(root, mtime)
    try:
        return store.static[name].load()
    except Exception as exc:  # noqa: BLE001 - a corrupted chunk of the store names it
        raise _reading(store.path, f"variable {name!r}", exc) from exc


def static_field(root: str | Path, name: str) -> xr.DataArray:
    """One variable of the prepared root group (``land_mask``, ``climatology``, …), in memory."""
    return _static_var(*_prepared(root), name)


@shared_cache(max_items=256)
def _product_month(path: str, mtime: int, index: int, name: str) -> xr.DataArray:
    da = _variable(path, mtime, name)
    try:
        return da.isel(time=index).load().astype(np.float32).rename(name)
    except Exception as exc:  # noqa: BLE001 - a corrupted chunk fails only here
        what = "" if name == "ssm" else f"{name} of "
        raise _reading(path, f"{what}month {_label(da, index)}", exc) from exc


@shared_cache(max_items=512)
def _product_point(path: str, mtime: int, i: int, j: int, name: str) -> pd.Series:
    da = _variable(path, mtime, name)
    try:
        values = da.isel(lat=i, lon=j).values.astype(np.float32)
    except Exception as exc:  # noqa: BLE001 - a corrupted chunk fails only here
        what = "" if name == "ssm" else f"{name} "
        raise _reading(path, f"the {what}series of cell {_cell(da, i, j)}", exc) from exc
    return pd.Series(values, index=_month_start(da["time"].values),
                     name="CMIP6_DL" if name == "ssm" else name)


@shared_cache(max_items=512)
def _reference_point(root: str, mtime: int, i: int, j: int) -> pd.Series:
    store = _store(root, mtime)
    try:
        ref = store.static["reference"]
        values = ref.isel(lat=i, lon=j).values.astype(np.float32)
    except Exception as exc:  # noqa: BLE001 - a corrupted chunk of the store names it
        raise _reading(store.path, f"the reference series of cell ({i}, {j})", exc) from exc
    return pd.Series(values, index=_month_start(ref["time"].values), name="reference")


def _label(ssm: xr.DataArray, index: int) -> str:
    t = pd.Timestamp(ssm["time"].values[index])
    return f"{t.year:04d}-{t.month:02d}"


def _cell(ssm: xr.DataArray, i: int, j: int) -> str:
    return f"{float(ssm['lat'].values[i]):.3f}°N {float(ssm['lon'].values[j]):.3f}°E"


def product_month(
    root: str | Path, experiment: str, index: int, name: str = "ssm"
) -> xr.DataArray:
    """Time step ``index`` of ``CMIP6_DL_<experiment>.nc``, (lat, lon) in m3 m-3, in memory.

    ``name``: ``ssm`` or one of its :data:`UNCERTAINTY_VARIABLES`. Shared by all sessions
    (the last 256 months read are kept).
    """
    path = _product_path(root, experiment)
    return _product_month(str(path), stamp(path), int(index), name)


def product_point(
    root: str | Path, experiment: str, i: int, j: int, name: str = "ssm"
) -> pd.Series:
    """The CMIP6_DL series (or that of ``name``, one of :data:`UNCERTAINTY_VARIABLES`) of the
    target cell (row ``i``, column ``j``), m3 m-3, by month start."""
    path = _product_path(root, experiment)
    return _product_point(str(path), stamp(path), int(i), int(j), name)


def reference_point(root: str | Path, i: int, j: int) -> pd.Series:
    """The prepared reference series of one target cell, m3 m-3, index month start."""
    return _reference_point(*_prepared(root), int(i), int(j))


def _month_start(time: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(time).to_period("M").to_timestamp()


WARM_UP_FILES: tuple[tuple[str, Callable[[str | Path, str], object]], ...] = (
    ("maps", read_netcdf),
    ("regions", read_netcdf),
    ("regional_series", read_netcdf),
    ("trends", read_netcdf),
    ("metrics", read_csv),
    ("taylor", read_csv),
    ("change_rates", read_csv),
    ("area_fractions", read_csv),
    ("history", read_csv),
)
"""The small artifacts (keys of :data:`smcore.workdir.ARTIFACTS`) read at warm-up, and how."""


def warm_up(root: str | Path, pixel: tuple[float, float] = DEFAULT_PIXEL) -> dict[str, float]:
    """Read what the first sessions will need, so that they find it in the cache.

    Run once per server in a background thread (``smcore serve`` does): the prepared store and
    its climatology, every product, the ensemble mean of every experiment's inputs, the series of
    the default explorer cell and the map of the month it opens on, and the small evaluation and
    analysis files. Missing or unreadable artifacts are skipped (the tabs say why). Returns
    seconds spent per step.
    """
    import time

    wd = WorkDir(root)
    spent: dict[str, float] = {}

    def step(name: str, fn: Any) -> None:
        t0 = time.perf_counter()
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - the tabs report it; the warm-up goes on
            log.info("warm-up %s skipped: %s", name, describe(exc))
        spent[name] = round(time.perf_counter() - t0, 3)

    step("store", lambda: static_field(wd.root, "climatology"))
    for key, read in WARM_UP_FILES:
        rel = artifact(key).relative()
        step(rel, lambda rel=rel, read=read: read(wd.root, rel))
    try:
        _prepared(wd.root)  # the manifest lies inside the work directory
        experiments = wd.experiments()
    except Exception as exc:  # noqa: BLE001 - no experiments to warm up; the sidebar says why
        log.info("warm-up of the experiments skipped: %s", describe(exc))
        experiments = []
    for exp in experiments:
        step(f"ensemble mean {exp}", lambda exp=exp: coarse_field(wd.root, exp, "ensemble_mean"))

        def series(exp: str = exp) -> None:
            ssm = open_product(wd.root, exp)
            i = int(np.abs(ssm["lat"].values - pixel[1]).argmin())
            j = int(np.abs(ssm["lon"].values - pixel[0]).argmin())
            product_point(wd.root, exp, i, j)
            if exp == "historical":
                reference_point(wd.root, i, j)

        step(f"default series {exp}", series)

        def month(exp: str = exp) -> None:
            time_axis = pd.DatetimeIndex(open_product(wd.root, exp)["time"].values)
            julys = np.flatnonzero(time_axis.month == 7)  # the explorer opens on the last July
            product_month(wd.root, exp, int(julys[-1]) if julys.size else len(time_axis) - 1)

        step(f"default month {exp}", month)
    return spent


@functools.lru_cache(maxsize=1)
def background() -> ThreadPoolExecutor:
    """The server's single loader thread (reads that would block an interaction run here)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="smcore-loader")


@functools.lru_cache(maxsize=8)
def start_warm_up(root: str, then: Callable[[], object] | None = None) -> threading.Thread:
    """Run :func:`warm_up` for ``root`` on a daemon thread, then ``then()`` on that thread when
    given; once per process for the same ``root`` and ``then`` (``smcore serve`` passes a new
    ``then`` per server)."""

    def run() -> None:
        warm_up(root)
        if then is not None:
            then()

    thread = threading.Thread(target=run, name="smcore-warm-up", daemon=True)
    thread.start()
    return thread
