"""ERA5-Land monthly means from the Copernicus Climate Data Store, in both layouts.

New CDS (since 2024): time coordinate ``valid_time`` (seconds since 1970), descending
``latitude`` (``stored_direction: decreasing``), ``longitude``, extra coordinates
``number`` and ``expver``. Old CDS: ``time`` (hours since 1900), sometimes packed
integers, and in recent-months downloads an ``expver`` *dimension* (1 = ERA5,
5 = ERA5T) where each month is valid in only one of the two. Both become
``swvl1(time, lat, lon)`` in m3 m-3 with first-of-month ``datetime64`` times and
ascending latitude. Files may hold one year each or all years.
"""

from __future__ import annotations

import glob
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from smcore.errors import InputError
from smcore.io.cmip6 import key_label, key_to_month_start
from smcore.io.units import soil_moisture_kind, to_volumetric
from smcore.regrid import GridError, ascending_latitude, standard_lat_lon

__all__ = ["ReferenceData", "find_era5_files", "open_era5_file", "open_era5"]

_TIME_NAMES = ("valid_time", "time", "date")


@dataclass
class ReferenceData:
    """ERA5-Land soil moisture opened lazily.

    ``data`` is ``(time, lat, lon)`` in m3 m-3 (dask-backed); ``files[i]`` is the file
    that holds month ``data.time[i]``.
    """

    data: xr.DataArray
    files: list[Path]

    @property
    def keys(self) -> np.ndarray:
        """Monthly keys (``year * 12 + month - 1``) of ``data.time``."""
        t = self.data["time"].values.astype("datetime64[M]").astype(np.int64)
        return t + 1970 * 12

    def file_of(self, key: int) -> Path:
        """The file holding monthly key ``key``."""
        i = int(np.flatnonzero(self.keys == key)[0])
        return self.files[i]


def find_era5_files(spec: str | Path) -> list[Path]:
    """Resolve a file, a folder (its ``*.nc`` files, recursively) or a glob to sorted paths."""
    text = str(spec)
    if any(ch in text for ch in "*?["):
        paths = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        if not paths:
            raise InputError(spec, "no file matches this pattern")
        return paths
    path = Path(spec)
    if not path.exists():
        raise InputError(path, "no such file or folder")
    if path.is_file():
        return [path]
    paths = sorted(p for p in path.rglob("*.nc") if p.is_file() and not p.name.startswith("."))
    if not paths:
        raise InputError(path, "no NetCDF (*.nc) files here")
    return paths


def _combine_expver(da: xr.DataArray) -> xr.DataArray:
    """Merge an ``expver`` dimension: for each element take the first expver that is valid."""
    parts = [da.isel(expver=i, drop=True) for i in range(da.sizes["expver"])]
    out = parts[0]
    for part in parts[1:]:
        out = out.combine_first(part)
    return out


def open_era5_file(
    path: str | Path,
    variable: str = "swvl1",
    time_chunk: int = 12,
    transform: Callable[[xr.DataArray], xr.DataArray] | None = None,
) -> xr.DataArray:
    """Open one ERA5-Land file lazily as ``variable(time, lat, lon)`` in its own units.

    ``time`` holds first-of-month ``datetime64`` stamps; latitude is ascending.
    ``transform`` (e.g. a domain cut) is applied before the data become a dask array,
    so only what it keeps is ever read. Raises :class:`InputError` naming the file on
    any problem.
    """
    path = Path(path)
    try:
        empty = path.stat().st_size == 0
    except OSError:
        empty = False
    if empty:
        raise InputError(path, "empty file (0 bytes): an interrupted download? fetch it again")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = xr.open_dataset(path, decode_timedelta=False, cache=False)
    except Exception as exc:  # noqa: BLE001
        msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise InputError(path, f"unreadable (not a NetCDF file, or truncated): {msg}") from exc
    if variable not in ds.data_vars:
        have = ", ".join(map(str, ds.data_vars)) or "none"
        raise InputError(path, f"missing variable {variable} (variables: {have})")
    try:
        ds = standard_lat_lon(ds)
    except GridError as exc:
        raise InputError(path, str(exc)) from exc
    da = ds[variable]
    tname = next((t for t in _TIME_NAMES if t in da.dims), None)
    if tname is None:
        tname = next((str(d) for d in da.dims if d not in ("lat", "lon", "expver")), None)
    if tname is None:
        raise InputError(path, f"{variable} has no time dimension (dims {da.dims})")
    if tname != "time":
        if "time" in da.coords and tname != "time":
            da = da.drop_vars("time")
        da = da.rename({tname: "time"})
    for d in [d for d in da.dims if d not in ("time", "lat", "lon", "expver")]:
        if da.sizes[d] != 1:
            raise InputError(
                path, f"{variable} has an unexpected dimension {d} of size {da.sizes[d]}"
            )
        da = da.isel({d: 0}, drop=True)
    da = ascending_latitude(da)
    if transform is not None:
        try:
            da = transform(da)
        except GridError as exc:
            raise InputError(path, str(exc)) from exc
    da = da.chunk({"time": time_chunk, "lat": -1, "lon": -1})
    if "expver" in da.dims:
        da = _combine_expver(da)
    times = da["time"]
    try:
        years = np.asarray(times.dt.year.values, dtype=np.int64)
        months = np.asarray(times.dt.month.values, dtype=np.int64)
    except (AttributeError, TypeError) as exc:
        raise InputError(path, f"cannot decode the time coordinate {tname}") from exc
    keys = years * 12 + months - 1
    uniq, counts = np.unique(keys, return_counts=True)
    if np.any(counts > 1):
        _refuse_several_steps_a_month(path, variable, times.values, keys, uniq, counts)
    da = da.drop_vars([c for c in da.coords if c not in ("lat", "lon")])
    da = da.assign_coords(time=key_to_month_start(keys)).sortby("time")
    return da.transpose("time", "lat", "lon")


def _step_seconds(values: np.ndarray) -> float | None:
    """The most common step between sorted time values, in seconds (``None`` if unknown)."""
    try:
        if np.issubdtype(values.dtype, np.datetime64):
            secs = np.diff(np.sort(values)) / np.timedelta64(1, "s")
        else:  # cftime dates
            ordered = sorted(values)
            pairs = zip(ordered[:-1], ordered[1:], strict=True)
            secs = np.array([(b - a).total_seconds() for a, b in pairs])
    except (TypeError, AttributeError, ValueError):
        return None
    secs = secs[secs > 0]
    return float(np.median(secs)) if secs.size else None


def _refuse_several_steps_a_month(
    path: Path,
    variable: str,
    values: np.ndarray,
    keys: np.ndarray,
    uniq: np.ndarray,
    counts: np.ndarray,
) -> None:
    """Raise for months holding more than one time step: duplicates, or data that is not monthly."""
    k = int(uniq[counts > 1][0])
    label = key_label("mon", k)
    in_month = values[keys == k]
    if len(set(in_month.tolist())) == 1:
        raise InputError(path, f"duplicate month {label}")
    step = _step_seconds(values)
    if step is not None and step <= 1.5 * 3600:
        kind = "hourly"
    elif step is not None and step <= 1.5 * 86400:
        kind = "daily"
    else:
        kind = "sub-monthly"
    raise InputError(
        path,
        f"{variable} is not monthly: {values.size} time steps in {uniq.size} month(s), "
        f"{kind} steps ({int(counts[uniq == k][0])} in {label}); the reference must be "
        "monthly means (ERA5-Land 'monthly averaged reanalysis')",
    )


def open_era5(
    paths: Sequence[str | Path] | str | Path,
    variable: str = "swvl1",
    time_chunk: int = 12,
    transform: Callable[[xr.DataArray], xr.DataArray] | None = None,
) -> ReferenceData:
    """Open ERA5-Land file(s) lazily and join them in time, converted to m3 m-3.

    ``paths`` is a list of files, or a file/folder/glob (see :func:`find_era5_files`);
    ``transform`` is applied to each file before it is read (see :func:`open_era5_file`).
    Raises :class:`InputError` naming the file for unreadable files, a missing variable,
    unknown units, grids that differ between files, and months found in two files.
    """
    if isinstance(paths, (str, Path)):
        paths = find_era5_files(paths)
    files = [Path(p) for p in paths]
    parts: list[xr.DataArray] = []
    owner: dict[int, Path] = {}
    month_files: list[Path] = []
    units: str | None = None
    for path in files:
        da = open_era5_file(path, variable, time_chunk, transform)
        if parts:
            ref = parts[0]
            if (
                da.sizes["lat"] != ref.sizes["lat"]
                or da.sizes["lon"] != ref.sizes["lon"]
                or not (
                    np.allclose(da["lat"].values, ref["lat"].values)
                    and np.allclose(da["lon"].values, ref["lon"].values)
                )
            ):
                raise InputError(path, f"grid differs from that of {files[0]}")
            da = da.assign_coords(lat=ref["lat"], lon=ref["lon"])
            if da.attrs.get("units") != units:
                raise InputError(
                    path, f"units {da.attrs.get('units')!r} differ from {units!r} in {files[0]}"
                )
        else:
            units = da.attrs.get("units")
        keys = da["time"].values.astype("datetime64[M]").astype(np.int64) + 1970 * 12
        for k in keys:
            if int(k) in owner:
                raise InputError(
                    path, f"month {key_label('mon', int(k))} is also in {owner[int(k)]}"
                )
            owner[int(k)] = path
        parts.append(da)
    data = parts[0] if len(parts) == 1 else xr.concat(parts, dim="time")
    data = data.sortby("time")
    order = data["time"].values.astype("datetime64[M]").astype(np.int64) + 1970 * 12
    month_files = [owner[int(k)] for k in order]
    if soil_moisture_kind(units) == "areal":
        raise InputError(
            files[0], f"{variable} has units {units!r}: the reference must be volumetric (m3 m-3)"
        )
    data = to_volumetric(data.rename(variable), units, layer_depth_mm=1.0, source=files[0])
    data = data.transpose("time", "lat", "lon")
    return ReferenceData(data=data, files=month_files)
