"""CMIP6 files as ESGF delivers them: identity, time axis, and lazy opening of a dataset.

Identity comes from the DRS file name
``<variable_id>_<table_id>_<source_id>_<experiment_id>_<member_id>_<grid_label>[_<range>].nc``
and, where the name does not follow it, from the global attributes. Time steps are
keyed by calendar-independent integers (for monthly data ``year * 12 + month - 1``),
taken from the middle of ``time_bnds`` when present, so that files in any CF calendar
(standard, proleptic_gregorian, noleap/365_day, all_leap/366_day, 360_day, julian)
and with any time stamp convention match by (year, month).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cftime
import numpy as np
import pandas as pd
import xarray as xr

from smcore.regrid import GridError, standard_lat_lon

__all__ = [
    "FileName",
    "Problem",
    "CMIP6File",
    "parse_filename",
    "inspect_file",
    "frequency_of",
    "table_frequency",
    "key_label",
    "month_key",
    "month_range",
    "key_to_month_start",
    "open_files",
    "engine_of",
]

_NAME = re.compile(
    r"^(?P<variable_id>[^_]+)_(?P<table_id>[^_]+)_(?P<source_id>[^_]+)_(?P<experiment_id>[^_]+)"
    r"_(?P<member_id>[^_]+)_(?P<grid_label>[^_]+?)(?:_(?P<time_range>\d{4,14}-\d{4,14}(?:-clim)?))?"
    r"\.nc4?$"
)
_VERSION = re.compile(r"^v\d{4,}$")
IDENTITY = ("source_id", "experiment_id", "member_id", "table_id", "variable_id", "grid_label")


@dataclass(frozen=True)
class FileName:
    """The DRS fields of a CMIP6 file name."""

    variable_id: str
    table_id: str
    source_id: str
    experiment_id: str
    member_id: str
    grid_label: str
    time_range: str | None = None


@dataclass(frozen=True)
class Problem:
    """Something wrong with a file or a dataset.

    ``kind`` is one of ``unreadable``, ``variable``, ``identity``, ``time``, ``gap``,
    ``overlap``, ``duplicate``, ``units``, ``calendar``, ``grid``, ``version``, ``metadata``
    (attributes that contradict each other; what smcore trusted instead is said) and
    ``period`` (why a dataset has no time period).
    """

    kind: str
    message: str
    path: str | None = None

    def __str__(self) -> str:
        return self.message


def parse_filename(name: str | Path) -> FileName | None:
    """Parse a DRS file name (``None`` if it does not follow the convention)."""
    m = _NAME.match(Path(name).name)
    if not m:
        return None
    return FileName(**m.groupdict())


def frequency_of(table_id: str | None, frequency_attr: str | None = None) -> str:
    """The sampling frequency: ``mon``, ``day``, ``yr``, ``subhr`` (any sub-daily), or ``fx``.

    Uses the ``frequency`` global attribute when present, otherwise the table_id.
    """
    f = (frequency_attr or "").strip()
    if f:
        if f.startswith("mon"):
            return "mon" if f == "mon" else "fx"  # monC (climatology) has no time series
        if f.startswith("day"):
            return "day"
        if f in ("yr", "yrPt", "dec"):
            return "yr"
        if f.startswith("fx"):
            return "fx"
        if "hr" in f:
            return "subhr"
    return table_frequency(table_id) or "mon"


def table_frequency(table_id: str | None) -> str | None:
    """The frequency a CMIP6 table_id implies (``None`` for a table that implies none)."""
    t = table_id or ""
    if t.endswith("mon") or t.endswith("monZ"):
        return "mon"
    if t.endswith("day") or t == "day":
        return "day"
    if t.endswith("yr") or t.endswith("dec"):
        return "yr"
    if t.endswith("fx"):
        return "fx"
    if "hr" in t:
        return "subhr"
    return None


def month_key(year: int, month: int) -> int:
    """Monthly time key ``year * 12 + month - 1``."""
    return int(year) * 12 + int(month) - 1


def month_range(y0: int, y1: int) -> np.ndarray:
    """Monthly keys of January ``y0`` to December ``y1`` (inclusive)."""
    return np.arange(month_key(y0, 1), month_key(y1, 12) + 1, dtype=np.int64)


def key_to_month_start(keys: Sequence[int] | np.ndarray) -> pd.DatetimeIndex:
    """Monthly keys → first-of-month ``datetime64`` timestamps."""
    k = np.asarray(keys, dtype=np.int64) - 1970 * 12
    return pd.DatetimeIndex(k.astype("datetime64[M]").astype("datetime64[ns]"))


def key_label(freq: str, key: int, calendar: str = "standard") -> str:
    """Human-readable label of a time key (``YYYY-MM`` for monthly data)."""
    if freq == "mon":
        return f"{key // 12:04d}-{key % 12 + 1:02d}"
    if freq == "yr":
        return f"{key:04d}"
    if freq == "day":
        d = cftime.num2date(key, "days since 0001-01-01", calendar=calendar)
        return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"
    if freq == "subhr":
        d = cftime.num2date(key, "minutes since 0001-01-01", calendar=calendar)
        return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}"
    return str(key)


def _keys_for(dates: np.ndarray, freq: str, calendar: str) -> list[int]:
    if freq == "mon":
        return [month_key(d.year, d.month) for d in dates]
    if freq == "yr":
        return [int(d.year) for d in dates]
    if freq == "day":
        num = cftime.date2num(list(dates), "days since 0001-01-01", calendar=calendar)
        return [int(np.floor(x)) for x in np.atleast_1d(num)]
    num = cftime.date2num(list(dates), "minutes since 0001-01-01", calendar=calendar)
    return [int(round(float(x))) for x in np.atleast_1d(num)]


@dataclass(frozen=True)
class CMIP6File:
    """What :func:`inspect_file` learns about one file without reading its data.

    ``keys`` are the time keys of its time steps in file order (see :func:`month_key`);
    ``units`` is the data variable's ``units`` attribute (``None`` if absent).
    """

    path: Path
    source_id: str | None
    experiment_id: str | None
    member_id: str | None
    table_id: str | None
    variable_id: str | None
    grid_label: str | None
    version: str | None = None
    frequency: str = "mon"
    calendar: str | None = None
    units: str | None = None
    keys: tuple[int, ...] = ()
    institution_id: str | None = None
    problems: tuple[Problem, ...] = field(default_factory=tuple)
    lat: np.ndarray | None = field(default=None, compare=False, repr=False)
    lon: np.ndarray | None = field(default=None, compare=False, repr=False)
    grid_note: str | None = None
    """Why ``lat``/``lon`` are missing (no 1-D latitude/longitude coordinates), if they are."""
    format: str = "netcdf"
    """``netcdf`` (a file) or ``zarr`` (a Zarr store: a folder, e.g. an intake-esm asset)."""

    @property
    def identity(self) -> tuple[str | None, ...]:
        """(source_id, experiment_id, member_id, table_id, variable_id, grid_label)."""
        return tuple(getattr(self, k) for k in IDENTITY)

    @property
    def readable(self) -> bool:
        """False when the file could not be opened or read."""
        return not any(p.kind == "unreadable" for p in self.problems)

    @property
    def first_key(self) -> int | None:
        """Smallest time key (``None`` without time steps)."""
        return min(self.keys) if self.keys else None

    @property
    def last_key(self) -> int | None:
        """Largest time key (``None`` without time steps)."""
        return max(self.keys) if self.keys else None


def _version_of(path: Path) -> str | None:
    for part in reversed(path.parent.parts[-3:]):
        if _VERSION.match(part):
            return part
    return None


def _attr(nc: object, name: str) -> str | None:
    try:
        value = getattr(nc, name)
    except AttributeError:
        return None
    text = str(value).strip()
    return text or None


def _find_time_var(nc: object) -> object | None:
    variables = nc.variables  # type: ignore[attr-defined]
    if "time" in variables:
        return variables["time"]
    for v in variables.values():
        if getattr(v, "axis", None) == "T" or getattr(v, "standard_name", None) == "time":
            return v
    return None


def inspect_file(
    path: str | Path,
    variable: str | None = None,
    *,
    identity: dict[str, str | None] | None = None,
    version: str | None = None,
    format: str = "netcdf",
    said_by: str = "file name",
) -> CMIP6File:
    """Read identity, calendar, units and time keys of one file or Zarr store (never raises).

    Only the header and the time axis are read. ``variable`` overrides the
    variable_id to look for. ``identity`` (the columns of a catalog row, see
    :mod:`smcore.io.esm`) replaces what the file name says, ``version`` the DRS folder's
    version; ``said_by`` names where the identity came from in messages. ``format`` is
    ``netcdf`` or ``zarr`` (a Zarr store, read with xarray). Anything unreadable is
    recorded as a :class:`Problem`.
    """
    path = Path(path)
    if identity is None:
        fname = parse_filename(path)
        ident: dict[str, str | None] = {k: getattr(fname, k) if fname else None for k in IDENTITY}
    else:
        ident = {k: identity.get(k) for k in IDENTITY}
    if version is None:
        version = _version_of(path)
    problems: list[Problem] = []
    p = str(path)

    def result(**extra: object) -> CMIP6File:
        return CMIP6File(
            path=path, version=version, problems=tuple(problems), format=format, **ident, **extra
        )  # type: ignore[arg-type]

    if format == "zarr":
        nc: Any = None
        if not path.is_dir():
            why = "no such Zarr store" if not path.exists() else "not a Zarr store (not a folder)"
            problems.append(Problem("unreadable", f"{p}: unreadable: {why}", p))
            return result(frequency=frequency_of(ident["table_id"]))
        try:
            nc = _ZarrHeader(path)
        except Exception as exc:  # noqa: BLE001 - any failure means the store cannot be used
            problems.append(Problem("unreadable", f"{p}: unreadable: {_short(exc)}", p))
            return result(frequency=frequency_of(ident["table_id"]))
    else:
        import netCDF4

        try:
            empty = path.stat().st_size == 0
        except OSError:
            empty = False
        if empty:
            problems.append(Problem("unreadable", f"{p}: unreadable: empty file (0 bytes)", p))
            return result(frequency=frequency_of(ident["table_id"]))
        try:
            nc = netCDF4.Dataset(path, "r")
        except Exception as exc:  # noqa: BLE001 - any failure means the file cannot be used
            problems.append(Problem("unreadable", f"{p}: unreadable: {_short(exc)}", p))
            return result(frequency=frequency_of(ident["table_id"]))
    try:
        attrs = {
            "source_id": _attr(nc, "source_id"),
            "experiment_id": _attr(nc, "experiment_id"),
            "member_id": _attr(nc, "member_id") or _attr(nc, "variant_label"),
            "table_id": _attr(nc, "table_id"),
            "variable_id": _attr(nc, "variable_id"),
            "grid_label": _attr(nc, "grid_label"),
        }
        for key, value in attrs.items():
            if ident[key] is None:
                ident[key] = value
            elif value is not None and value != ident[key]:
                problems.append(
                    Problem(
                        "identity",
                        f"{p}: {said_by} says {key}={ident[key]} "
                        f"but the global attribute says {value}",
                        p,
                    )
                )
        freq_attr = _attr(nc, "frequency")
        freq = frequency_of(ident["table_id"], freq_attr)
        by_table = table_frequency(ident["table_id"])
        contradiction = freq_attr is not None and by_table is not None and freq != by_table
        if contradiction:
            freq = by_table  # trust the table and the time axis (checked below)
        var_name = variable or ident["variable_id"]
        units = None
        if var_name is None or var_name not in nc.variables:
            problems.append(
                Problem("variable", f"{p}: missing variable {var_name or '(unknown)'}", p)
            )
        else:
            units = _attr(nc.variables[var_name], "units")
        lat, lon, grid_note = _read_lat_lon(nc)
        calendar = None
        keys: list[int] = []
        if freq != "fx":
            tvar = _find_time_var(nc)
            if tvar is None:
                problems.append(Problem("time", f"{p}: no time coordinate", p))
            else:
                calendar, keys = _read_time_keys(nc, tvar, freq, p, problems)
        if contradiction:
            problems.append(
                _contradiction(p, freq_attr, ident["table_id"], freq, keys, calendar)  # type: ignore[arg-type]
            )
        return result(
            frequency=freq,
            calendar=calendar,
            units=units,
            keys=tuple(keys),
            institution_id=_attr(nc, "institution_id"),
            lat=lat,
            lon=lon,
            grid_note=grid_note,
        )
    except Exception as exc:  # noqa: BLE001
        problems.append(Problem("unreadable", f"{p}: unreadable: {_short(exc)}", p))
        return result(frequency=frequency_of(ident["table_id"]))
    finally:
        nc.close()


class _ZarrVariable:
    """A Zarr store's variable seen like a ``netCDF4.Variable``: attributes, ``ndim``, ``[:]``."""

    def __init__(self, var: xr.Variable) -> None:
        self._var = var
        self.ndim = var.ndim

    def __getattr__(self, name: str) -> Any:
        attrs = self.__dict__["_var"].attrs
        if name in attrs:
            return attrs[name]
        raise AttributeError(name)

    def __getitem__(self, key: Any) -> np.ndarray:
        return np.asarray(self._var.values)[key]


class _ZarrHeader:
    """A Zarr store seen like a ``netCDF4.Dataset`` (global attributes, ``variables``).

    Opened with xarray without decoding times or masks, so the time axis is the raw numbers
    with their ``units`` and ``calendar``, as :func:`inspect_file` reads them from NetCDF.
    Only the variables that are read (time, bounds, lat, lon) load data.
    """

    def __init__(self, path: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._ds = xr.open_zarr(
                path, decode_times=False, decode_timedelta=False, mask_and_scale=False,
                consolidated=None, chunks=None,
            )
        self.variables = {str(k): _ZarrVariable(v) for k, v in self._ds.variables.items()}

    def __getattr__(self, name: str) -> Any:
        attrs = self.__dict__["_ds"].attrs
        if name in attrs:
            return attrs[name]
        raise AttributeError(name)

    def close(self) -> None:
        self._ds.close()


def engine_of(path: str | Path) -> str | None:
    """The xarray engine of a CMIP6 asset: ``zarr`` for a Zarr store (a folder), else default."""
    return "zarr" if Path(path).is_dir() else None


_FREQ_WORDS = {"mon": "monthly", "day": "daily", "yr": "yearly", "subhr": "sub-daily"}


def _contradiction(
    p: str, attr: str, table: str, freq: str, keys: Sequence[int], calendar: str | None
) -> Problem:
    """The note on a ``frequency`` attribute that contradicts the table (and the time axis)."""
    said = f"the frequency attribute says {attr!r}"
    if attr.endswith("C"):
        said += " (a climatology)"
    elif attr.startswith("fx"):
        said += " (a fixed field)"
    if freq == "fx":
        return Problem(
            "metadata", f"{p}: {said} but the table {table} is a fixed field; read as fx", p
        )
    if keys:
        first = key_label(freq, min(keys), calendar or "standard")
        last = key_label(freq, max(keys), calendar or "standard")
        word = _FREQ_WORDS.get(freq, freq)
        axis = f"its time axis holds {len(keys)} {word} steps ({first}..{last})"
    else:
        axis = "its time axis could not be read"
    return Problem(
        "metadata",
        f"{p}: {said} but the table {table} is {_FREQ_WORDS.get(freq, freq)} and {axis}; "
        f"read as {freq} (table and time axis trusted)",
        p,
    )


def _read_lat_lon(nc: object) -> tuple[np.ndarray | None, np.ndarray | None, str | None]:
    """1-D latitude and longitude of a file (degrees), or a note saying why there are none."""
    variables = nc.variables  # type: ignore[attr-defined]
    out: list[np.ndarray | None] = []
    for names, sname in (
        (("lat", "latitude", "nav_lat"), "latitude"),
        (("lon", "longitude", "nav_lon"), "longitude"),
    ):
        name = next((n for n in names if n in variables), None)
        if name is None:
            name = next(
                (n for n, v in variables.items() if getattr(v, "standard_name", None) == sname),
                None,
            )
        if name is None:
            return None, None, f"no {sname} coordinate"
        v = variables[name]
        if v.ndim != 1:
            return (
                None,
                None,
                (
                    f"{name} is {v.ndim}-D (curvilinear or unstructured grid): "
                    "regrid it to a regular lat/lon grid first (e.g. `cdo remapbil`)"
                ),
            )
        out.append(np.asarray(v[:], dtype="float64"))
    return out[0], out[1], None


def _read_time_keys(
    nc: object, tvar: object, freq: str, p: str, problems: list[Problem]
) -> tuple[str | None, list[int]]:
    calendar = str(getattr(tvar, "calendar", "standard")).lower()
    units = getattr(tvar, "units", None)
    if units is None:
        problems.append(Problem("time", f"{p}: time has no units", p))
        return calendar, []
    values = np.asarray(tvar[:], dtype="float64")  # type: ignore[index]
    bname = getattr(tvar, "bounds", None)
    variables = nc.variables  # type: ignore[attr-defined]
    if bname is None:
        bname = next((b for b in ("time_bnds", "time_bounds") if b in variables), None)
    if bname is not None and bname in variables:
        bounds = np.asarray(variables[bname][:], dtype="float64")
        if bounds.shape == (values.size, 2):
            mid = bounds.mean(axis=1)
            ok = np.isfinite(mid) & (bounds[:, 1] > bounds[:, 0])
            values = np.where(ok, mid, values)
    try:
        dates = cftime.num2date(values, units, calendar=calendar, only_use_cftime_datetimes=True)
    except Exception as exc:  # noqa: BLE001
        problems.append(
            Problem(
                "calendar",
                f"{p}: cannot decode time ({units!r}, calendar {calendar!r}): {_short(exc)}",
                p,
            )
        )
        return calendar, []
    return calendar, _keys_for(np.atleast_1d(dates), freq, calendar)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def open_files(
    files: Sequence[CMIP6File],
    variable: str,
    keys: Sequence[int] | None = None,
    time_chunk: int = 120,
    transform: Callable[[xr.DataArray], xr.DataArray] | None = None,
) -> xr.DataArray:
    """Open the files of one monthly dataset lazily and concatenate them in time.

    Times become first-of-month ``datetime64`` stamps derived from each file's keys,
    so the calendar of the source no longer matters. ``keys`` (monthly keys) selects
    the months to keep; files without any of them are not opened. ``transform`` is
    applied to each file's ``(time, lat, lon)`` array before it becomes a dask array,
    so a domain cut there means only the domain is ever read from disk. Returns the
    data variable with dims ``(time, lat, lon)`` in the file's units (``attrs['units']``),
    dask-backed, ocean fill values (|x| ≥ 1e19) as NaN. Raises ``ValueError`` with a
    message naming the file on any problem.
    """
    wanted = None if keys is None else np.asarray(sorted(set(int(k) for k in keys)), dtype=np.int64)
    parts: list[xr.DataArray] = []
    units: str | None = None
    first_path: Path | None = None
    for f in sorted(
        files, key=lambda f: (f.first_key if f.first_key is not None else 0, str(f.path))
    ):
        fkeys = np.asarray(f.keys, dtype=np.int64)
        sel = np.ones(fkeys.size, bool) if wanted is None else np.isin(fkeys, wanted)
        if not sel.any():
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if f.format == "zarr":
                    ds = xr.open_dataset(
                        f.path, engine="zarr", decode_times=False, decode_timedelta=False,
                        chunks=None, consolidated=None,
                    )
                else:
                    ds = xr.open_dataset(
                        f.path, decode_times=False, decode_timedelta=False, cache=False
                    )
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"{f.path}: unreadable: {_short(exc)}") from exc
        if variable not in ds.data_vars:
            raise ValueError(f"{f.path}: missing variable {variable}")
        try:
            ds = standard_lat_lon(ds)
        except GridError as exc:
            raise ValueError(f"{f.path}: {exc}") from exc
        da = ds[variable]
        tdim = next((d for d in da.dims if d not in ("lat", "lon")), None)
        extra = [d for d in da.dims if d not in ("lat", "lon", tdim)]
        if tdim is None or extra or da.sizes[tdim] != fkeys.size:
            raise ValueError(f"{f.path}: {variable} has dims {da.dims}, expected (time, lat, lon)")
        if tdim != "time":
            da = da.rename({tdim: "time"})
        da = da.drop_vars([c for c in da.coords if c not in ("lat", "lon")])
        idx = np.flatnonzero(sel)
        da = da.isel(
            time=slice(int(idx[0]), int(idx[-1]) + 1) if np.all(np.diff(idx) == 1) else idx
        )
        da = da.transpose("time", "lat", "lon")
        if transform is not None:
            try:
                da = transform(da)
            except GridError as exc:
                raise ValueError(f"{f.path}: {exc}") from exc
        da = da.chunk({"time": time_chunk, "lat": -1, "lon": -1})
        da = da.assign_coords(time=key_to_month_start(fkeys[sel]))
        file_units = da.attrs.get("units")
        if units is None:
            units, first_path = file_units, f.path
        elif file_units != units:
            raise ValueError(
                f"{f.path}: units {file_units!r} differ from {units!r} in {first_path}"
            )
        parts.append(da)
    if not parts:
        raise ValueError("no file holds any of the requested months")
    try:
        out = parts[0] if len(parts) == 1 else xr.concat(parts, dim="time", join="exact")
    except ValueError as exc:
        raise ValueError(f"{first_path}: the files of this dataset have different grids") from exc
    out = out.where(np.abs(out) < 1e19)
    out.attrs = {"units": units} if units is not None else {}
    out.name = variable
    return out
