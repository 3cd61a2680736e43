"""In-situ validation: score every product at ISMN stations (``smcore evaluate --stations``).

From an ISMN download (:mod:`smcore.io.ismn`) to ``evaluation/stations.csv``,
``evaluation/stations_qc.csv`` and ``evaluation/stations.nc`` (docs/evaluation.md,
section "In-situ stations"):

1. **Sensors**: a station's soil-moisture sensors whose depth lies within the top 0.1 m
   (``depth_to <= 0.1`` m) are kept; deeper ones are left out.
2. **Quality flags**: a value is kept when every ISMN flag it carries (``C03,D06`` carries
   two) is in the policy (``--station-flags``, default ``G``) and the value is finite; for
   each station and flag the values kept and dropped are counted and written.
3. **Monthly means**: kept values are averaged per UTC day and sensor, the sensors of a
   station averaged per day, and a month's mean is the mean of its daily values where at
   least 80 % of the month's days have one (25 of 31, 23 of 28 …); other months are missing.
4. **Matching**: a station belongs to the 0.25° cell that contains it (on a cell edge, the
   northern or eastern one); a station off the grid, or whose cell is not a scored land
   pixel of the evaluation, is outside the study domain. Stations outside the domain or
   without a complete month in the products' period are listed with the reason in
   ``stations_qc.csv`` and skipped.
5. **Scores**: every product of ``metrics.csv`` (and the reference itself, ``reference``) at
   the station's cell against the station's monthly means, over the months both have in the
   historical period: bias (product − station), MAE, ubRMSD, r and anomaly r (anomalies from
   each series' own calendar-month means over those months), per station and pooled over
   every (station, month) pair, with the definitions of :mod:`smcore.evaluation.metrics`.
"""

from __future__ import annotations

import calendar
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from smcore.errors import ConfigError
from smcore.evaluation.data import EvalGrid, month_keys, months_of
from smcore.evaluation.metrics import anomaly_r, pooled_stats
from smcore.io.ismn import IsmnData, SensorSeries, read_ismn

__all__ = [
    "DEFAULT_FLAGS",
    "TOP_DEPTH_M",
    "COMPLETE_FRACTION",
    "SCORES",
    "REFERENCE",
    "POOLED",
    "Station",
    "StationSet",
    "StationResult",
    "parse_flags",
    "kept_values",
    "daily_means",
    "monthly_means",
    "aggregate",
    "read_stations",
    "cell_of",
    "score_pairs",
    "score_table",
    "score_stations",
    "series_dataset",
    "qc_table",
]

DEFAULT_FLAGS: tuple[str, ...] = ("G",)
"""ISMN flags kept unless ``--station-flags`` says otherwise: good values only."""

TOP_DEPTH_M = 0.10
"""Sensors whose depth lies within the top 0.1 m are used (``depth_to <= 0.1`` m)."""

COMPLETE_FRACTION = 0.8
"""A month counts when at least this share of its days has a kept value."""

SCORES: tuple[str, ...] = ("bias", "MAE", "ubRMSD", "r", "anomaly_r")
"""Score columns of ``stations.csv`` (m3 m-3, except r and anomaly r)."""

REFERENCE = "reference"
"""Name of the prepared reference (ERA5-Land on the 0.25° grid) among the scored products."""

POOLED = "pooled"
"""``station`` of the rows of ``stations.csv`` pooled over every station."""

_FLAG = re.compile(r"^[A-Z][0-9]{0,2}$")
_EPS = 1e-9


def parse_flags(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"G,U,C03"`` → ``("G", "U", "C03")``; ``None`` → :data:`DEFAULT_FLAGS`.

    Raises :class:`ConfigError` for a token that is not an ISMN flag code.
    """
    if text is None:
        return DEFAULT_FLAGS
    items = text.split(",") if isinstance(text, str) else list(text)
    flags = tuple(dict.fromkeys(t.strip().upper() for t in items if t.strip()))
    bad = [f for f in flags if not _FLAG.match(f)]
    if bad or not flags:
        raise ConfigError(
            f"--station-flags {text!r}: expected ISMN flag codes separated by commas, "
            "e.g. G or G,U,C03"
        )
    return flags


def _codes(flag: str) -> list[str]:
    return [c.strip() for c in str(flag).split(",") if c.strip()] or ["(none)"]


def kept_values(
    values: np.ndarray, flags: Sequence[str], allowed: Iterable[str]
) -> tuple[np.ndarray, dict[str, list[int]]]:
    """Which values the flag policy keeps, and ``{flag: [kept, dropped]}`` counts.

    A value is kept when it is finite and every flag code it carries is ``allowed``; a value
    with several codes counts once under each of them.
    """
    allowed = set(allowed)
    v = np.asarray(values, dtype=np.float64)
    keep = np.zeros(v.size, dtype=bool)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for i, (x, flag) in enumerate(zip(v, flags, strict=True)):
        codes = _codes(flag)
        ok = bool(np.isfinite(x)) and all(c in allowed for c in codes)
        keep[i] = ok
        for c in codes:
            counts[c][0 if ok else 1] += 1
    return keep, dict(sorted(counts.items()))


def daily_means(times: pd.DatetimeIndex, values: np.ndarray) -> pd.Series:
    """Mean per UTC day of ``values`` (NaN skipped), indexed by the day (midnight)."""
    s = pd.Series(np.asarray(values, dtype=np.float64), index=pd.DatetimeIndex(times))
    s = s[np.isfinite(s.to_numpy())]
    return s.groupby(s.index.normalize()).mean()


def monthly_means(daily: pd.Series, fraction: float = COMPLETE_FRACTION) -> pd.DataFrame:
    """Monthly means of a daily series where at least ``fraction`` of the days are present.

    Returns a frame indexed by month key (``year * 12 + month - 1``) with ``mean`` (NaN for
    incomplete months), ``days`` (days with a value) and ``days_in_month``.
    """
    d = daily[np.isfinite(daily.to_numpy())]
    if d.empty:
        return pd.DataFrame(
            {"mean": [], "days": [], "days_in_month": []}, index=pd.Index([], name="month")
        ).astype({"mean": "float64", "days": "int64", "days_in_month": "int64"})
    idx = pd.DatetimeIndex(d.index)
    keys = idx.year.to_numpy() * 12 + idx.month.to_numpy() - 1
    g = pd.Series(d.to_numpy(), index=keys).groupby(level=0)
    out = pd.DataFrame({"mean": g.mean(), "days": g.size()})
    out.index.name = "month"
    out["days_in_month"] = np.asarray(
        [calendar.monthrange(int(k) // 12, int(k) % 12 + 1)[1] for k in out.index], dtype=np.int64
    )
    complete = out["days"] >= fraction * out["days_in_month"] - _EPS
    out.loc[~complete, "mean"] = np.nan
    return out


@dataclass
class Station:
    """One ISMN station after the depth rule, the flag policy and the monthly aggregation."""

    network: str
    station: str
    lat: float
    lon: float
    elevation: float
    sensors: list[str]
    """``instrument depth_from-depth_to`` of the sensors used (within the top 0.1 m)."""
    files: list[str]
    depth_from: float
    depth_to: float
    values_read: int = 0
    values_kept: int = 0
    flags: dict[str, list[int]] = field(default_factory=dict)
    """``{flag: [kept, dropped]}`` over the sensors used."""
    monthly: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    status: str = "used"
    reason: str = ""
    cell: tuple[int, int] | None = None
    cell_lat: float = float("nan")
    cell_lon: float = float("nan")
    months_scored: int = 0

    @property
    def complete(self) -> pd.Series:
        """Monthly means of the complete months (index: month key)."""
        if self.monthly.empty:
            return pd.Series(dtype="float64")
        return self.monthly["mean"].dropna()

    def skip(self, reason: str) -> None:
        """Mark the station skipped, with the reason listed in ``stations_qc.csv``."""
        self.status, self.reason = "skipped", reason

    def flag_text(self) -> str:
        """``G kept 1200 dropped 0; C03 kept 0 dropped 56`` (the QC table's ``flags``)."""
        return "; ".join(f"{k} kept {v[0]} dropped {v[1]}" for k, v in self.flags.items())


def _sensor_label(s: SensorSeries) -> str:
    return f"{s.instrument} {s.depth_from:g}-{s.depth_to:g} m"


def aggregate(
    network: str,
    station: str,
    sensors: Sequence[SensorSeries],
    allowed: Sequence[str],
    *,
    top: float = TOP_DEPTH_M,
    fraction: float = COMPLETE_FRACTION,
) -> Station:
    """Depth rule, flag policy and monthly means of one station's sensors (module docstring)."""
    used = [s for s in sensors if s.depth_from >= -_EPS and s.depth_to <= top + _EPS]
    first = sensors[0]
    st = Station(
        network=network,
        station=station,
        lat=first.lat,
        lon=first.lon,
        elevation=first.elevation,
        sensors=[_sensor_label(s) for s in used],
        files=[s.file for s in used],
        depth_from=min((s.depth_from for s in used), default=float("nan")),
        depth_to=max((s.depth_to for s in used), default=float("nan")),
    )
    if not used:
        deeper = ", ".join(sorted({f"{s.depth_from:g}-{s.depth_to:g} m" for s in sensors}))
        st.skip(f"no soil-moisture sensor within the top {top:g} m (sensors at {deeper})")
        return st
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    days: list[pd.Series] = []
    for s in used:
        keep, c = kept_values(s.data["value"].to_numpy(), list(s.data["flag"]), allowed)
        for k, (a, b) in c.items():
            counts[k][0] += a
            counts[k][1] += b
        st.values_read += int(keep.size)
        st.values_kept += int(keep.sum())
        days.append(daily_means(pd.DatetimeIndex(s.data.index[keep]), s.data["value"][keep]))
    st.flags = dict(sorted(counts.items()))
    daily = pd.concat(days, axis=1).mean(axis=1) if days else pd.Series(dtype="float64")
    st.monthly = monthly_means(daily, fraction)
    if st.complete.empty:
        policy = ",".join(allowed)
        st.skip(
            f"no complete month (at least {fraction:.0%} of the days with a value kept by "
            f"the flag policy {policy}; {st.values_kept} of {st.values_read} values kept)"
        )
    return st


@dataclass
class StationSet:
    """The stations of an ISMN download, aggregated, before matching to the grid."""

    root: Path
    flags: tuple[str, ...]
    stations: list[Station]
    unreadable: list[str] = field(default_factory=list)


def read_stations(path: str | Path, flags: Sequence[str] | str | None = None) -> StationSet:
    """Read an ISMN download and aggregate each station (:func:`aggregate`).

    One-line :class:`~smcore.errors.InputError` when the folder is missing or holds no
    ISMN file (see :func:`smcore.io.ismn.read_ismn`).
    """
    allowed = parse_flags(flags)
    data: IsmnData = read_ismn(path)
    groups: dict[tuple[str, str], list[SensorSeries]] = defaultdict(list)
    for s in data.sensors:
        groups[(s.network, s.station)].append(s)
    stations = [aggregate(n, s, sensors, allowed) for (n, s), sensors in sorted(groups.items())]
    return StationSet(root=data.root, flags=allowed, stations=stations,
                      unreadable=list(data.unreadable))


def cell_of(
    lat: float, lon: float, grid_lat: np.ndarray, grid_lon: np.ndarray
) -> tuple[int, int] | None:
    """Indices of the grid cell containing (lat, lon), ``None`` off the grid.

    The grid is regular with ascending centres; a point on a cell edge belongs to the
    northern/eastern cell. Longitudes are wrapped to the grid's convention.
    """
    res_lat = float(grid_lat[1] - grid_lat[0]) if grid_lat.size > 1 else 0.25
    res_lon = float(grid_lon[1] - grid_lon[0]) if grid_lon.size > 1 else 0.25
    lat0, lon0 = float(grid_lat[0]) - res_lat / 2, float(grid_lon[0]) - res_lon / 2
    lon = (float(lon) - lon0) % 360.0 + lon0
    i = int(np.floor((float(lat) - lat0) / res_lat + _EPS))
    j = int(np.floor((lon - lon0) / res_lon + _EPS))
    if not (0 <= i < grid_lat.size and 0 <= j < grid_lon.size):
        return None
    return i, j


def score_pairs(f: np.ndarray, r: np.ndarray, months: np.ndarray) -> dict[str, Any]:
    """Bias (f − r), MAE, ubRMSD, r, anomaly r and the number of finite pairs.

    ``f`` and ``r`` are ``(time,)`` or ``(time, station)``; pooled over every finite pair,
    anomalies from each column's own calendar-month means (:func:`~smcore.evaluation.
    metrics.anomaly_r`).
    """
    s = pooled_stats(f, r)
    return {
        "months": int(s.n),
        "bias": s.bias,
        "MAE": s.mae,
        "ubRMSD": s.ubrmsd,
        "r": s.r,
        "anomaly_r": anomaly_r(f, r, months) if s.n else float("nan"),
    }


def score_table(
    stations: Sequence[Station],
    keys: np.ndarray,
    observed: np.ndarray,
    products: Mapping[str, np.ndarray],
) -> pd.DataFrame:
    """``stations.csv``: one row per station and product, then the pooled rows.

    ``observed`` and each product are ``(time, station)`` over the months ``keys`` (NaN where
    the station has no complete month).
    """
    months = months_of(keys)
    rows: list[dict[str, Any]] = []
    for name, values in products.items():
        for k, st in enumerate(stations):
            ok = np.isfinite(observed[:, k]) & np.isfinite(values[:, k])
            span = keys[ok]
            rows.append(
                {
                    "network": st.network,
                    "station": st.station,
                    "lat": st.lat,
                    "lon": st.lon,
                    "depth_from": st.depth_from,
                    "depth_to": st.depth_to,
                    "cell_lat": st.cell_lat,
                    "cell_lon": st.cell_lon,
                    "product": name,
                    "first_month": _label(span[0]) if span.size else "",
                    "last_month": _label(span[-1]) if span.size else "",
                    **score_pairs(values[:, k], observed[:, k], months),
                }
            )
    for name, values in products.items():
        ok = np.isfinite(observed) & np.isfinite(values)
        span = keys[ok.any(axis=1)]
        rows.append(
            {
                "network": "all",
                "station": POOLED,
                "product": name,
                "first_month": _label(span[0]) if span.size else "",
                "last_month": _label(span[-1]) if span.size else "",
                **score_pairs(values, observed, months),
            }
        )
    columns = ["network", "station", "lat", "lon", "depth_from", "depth_to", "cell_lat",
               "cell_lon", "product", "months", "first_month", "last_month", *SCORES]
    return pd.DataFrame(rows, columns=columns)


def _label(key: int | np.integer) -> str:
    return f"{int(key) // 12:04d}-{int(key) % 12 + 1:02d}"


@dataclass
class StationResult:
    """Everything ``evaluate`` writes about the stations (see :meth:`write`)."""

    scores: pd.DataFrame
    qc: pd.DataFrame
    series: xr.Dataset
    notes: list[str] = field(default_factory=list)

    @property
    def used(self) -> int:
        """Number of stations scored."""
        return int((self.qc["status"] == "used").sum())

    def write(self, folder: Path) -> None:
        """``stations.csv``, ``stations_qc.csv`` and ``stations.nc`` into ``folder``."""
        from smcore.io.atomic import write_csv
        from smcore.io.netcdf import write_netcdf
        from smcore.workdir import artifact

        write_csv(self.scores, folder / artifact("stations").name, float_format="%.6g")
        write_csv(self.qc, folder / artifact("stations_qc").name, float_format="%.6g")
        time = {"units": "days since 1850-01-01 00:00:00", "calendar": "standard",
                "dtype": "float64", "_FillValue": None}
        write_netcdf(self.series, folder / artifact("stations_series").name,
                     encoding={"time": time, "time_bnds": time})


def qc_table(stations: Sequence[Station], unreadable: Sequence[str]) -> pd.DataFrame:
    """``stations_qc.csv``: every station (used or skipped, with the reason) and bad files."""
    rows = [
        {
            "network": st.network,
            "station": st.station,
            "lat": st.lat,
            "lon": st.lon,
            "elevation": st.elevation,
            "depth_from": st.depth_from,
            "depth_to": st.depth_to,
            "sensors": "; ".join(st.sensors),
            "status": st.status,
            "reason": st.reason,
            "cell_lat": st.cell_lat,
            "cell_lon": st.cell_lon,
            "values_read": st.values_read,
            "values_kept": st.values_kept,
            "complete_months": int(st.complete.size),
            "months_scored": st.months_scored,
            "flags": st.flag_text(),
            "files": "; ".join(st.files),
        }
        for st in stations
    ]
    rows += [
        {"network": "", "station": "", "status": "skipped",
         "reason": "not a readable ISMN file (Header+values or CEOP)", "files": f}
        for f in unreadable
    ]
    return pd.DataFrame(rows, columns=[
        "network", "station", "lat", "lon", "elevation", "depth_from", "depth_to", "sensors",
        "status", "reason", "cell_lat", "cell_lon", "values_read", "values_kept",
        "complete_months", "months_scored", "flags", "files",
    ])


def match(
    stations: Sequence[Station], grid: EvalGrid, available: np.ndarray
) -> tuple[list[Station], np.ndarray]:
    """Put each station in its cell; skip those off the domain or without usable months.

    ``available`` are the month keys every product has. Returns the used stations and the
    months (sorted keys) at least one of them has.
    """
    lat, lon = grid.lat, grid.lon
    scored = np.zeros(grid.shape, dtype=bool).ravel()
    scored[grid.pixels] = True
    scored = scored.reshape(grid.shape)
    used: list[Station] = []
    months: set[int] = set()
    span = f"{_label(available[0])}..{_label(available[-1])}" if available.size else "none"
    for st in stations:
        if st.status != "used":
            continue
        cell = cell_of(st.lat, st.lon, lat, lon)
        if cell is None:
            st.skip(
                f"outside the study domain: off the {grid.shape[0]}x{grid.shape[1]} grid "
                f"(lat {lat[0]:g}..{lat[-1]:g}, lon {lon[0]:g}..{lon[-1]:g})"
            )
            continue
        st.cell = cell
        st.cell_lat, st.cell_lon = float(lat[cell[0]]), float(lon[cell[1]])
        if not scored[cell]:
            st.skip(
                f"outside the study domain: its 0.25° cell ({st.cell_lat:g}, {st.cell_lon:g}) "
                "is not a scored land pixel (sea, outside China, or no reference)"
            )
            continue
        overlap = np.intersect1d(st.complete.index.to_numpy(dtype=np.int64), available)
        if overlap.size == 0:
            first, last = _label(st.complete.index[0]), _label(st.complete.index[-1])
            st.skip(
                f"no complete month in the products' period {span} "
                f"(complete months {first}..{last})"
            )
            continue
        st.months_scored = int(overlap.size)
        months.update(int(k) for k in overlap)
        used.append(st)
    return used, np.asarray(sorted(months), dtype=np.int64)


def _at_cells(
    da: xr.DataArray, keys: np.ndarray, cells: Sequence[tuple[int, int]]
) -> np.ndarray:
    """``da(time, lat, lon)`` at the months ``keys`` and the cells: ``(time, station)``."""
    have = {int(k): i for i, k in enumerate(month_keys(da["time"]))}
    pos = np.asarray([have[int(k)] for k in keys], dtype=np.int64)
    ii = xr.DataArray([c[0] for c in cells], dims="station")
    jj = xr.DataArray([c[1] for c in cells], dims="station")
    return np.asarray(
        da.isel(time=pos, lat=ii, lon=jj).transpose("time", "station").values, dtype=np.float64
    )


def _available(*arrays: xr.DataArray) -> np.ndarray:
    common: np.ndarray | None = None
    for a in arrays:
        k = np.unique(month_keys(a["time"]))
        common = k if common is None else np.intersect1d(common, k)
    return common if common is not None else np.zeros(0, np.int64)


def score_stations(
    station_set: StationSet,
    *,
    grid: EvalGrid,
    reference: xr.DataArray,
    product: xr.DataArray,
    inputs: xr.DataArray,
    channels: Sequence[str],
    product_names: Sequence[str],
    baselines: Any,
    attrs: Mapping[str, str],
) -> StationResult:
    """Match the stations and score every product at them (module docstring).

    ``reference`` is the prepared reference and ``product`` the network's historical product
    (``(time, lat, lon)``), ``inputs`` the historical coarse inputs (``(time, model, clat,
    clon)``), ``channels`` their models; ``product_names`` the rows of ``metrics.csv`` in
    order; ``baselines(coarse, keys)`` returns the ensemble mean and the baselines
    ``{name: (time, pixel)}`` for coarse inputs of the months ``keys`` (the evaluation's
    fitted baselines). ``attrs`` are the provenance attributes of ``stations.nc``.
    """
    from smcore.evaluation.fitting import DL

    stations = station_set.stations
    available = _available(reference, product, inputs)
    used, keys = match(stations, grid, available)
    notes: list[str] = []
    skipped = [st for st in stations if st.status != "used"]
    notes.append(
        f"stations: {len(used)} used, {len(skipped)} skipped (flag policy "
        f"{','.join(station_set.flags)}; reasons in evaluation/stations_qc.csv)"
    )
    if station_set.unreadable:
        notes.append(f"stations: {len(station_set.unreadable)} unreadable ISMN file(s) skipped")
    qc = qc_table(stations, station_set.unreadable)
    if not used:
        empty = score_table([], np.zeros(0, np.int64), np.zeros((0, 0)), {})
        return StationResult(empty, qc, series_dataset([], keys, np.zeros((0, 0)), {}, attrs),
                             notes)
    cells = [st.cell for st in used if st.cell is not None]
    observed = np.full((keys.size, len(used)), np.nan)
    for k, st in enumerate(used):
        c = st.complete
        pos = np.searchsorted(keys, c.index.to_numpy(dtype=np.int64))
        inside = (pos < keys.size) & (keys[np.minimum(pos, keys.size - 1)] == c.index.to_numpy())
        observed[pos[inside], k] = c.to_numpy()[inside]

    values: dict[str, np.ndarray] = {}
    flat = np.asarray([i * grid.shape[1] + j for i, j in cells], dtype=np.int64)
    cols = np.searchsorted(grid.pixels, flat)
    have = {int(k): i for i, k in enumerate(month_keys(inputs["time"]))}
    coarse = np.asarray(
        inputs.isel(time=[have[int(k)] for k in keys]).values, dtype=np.float32
    )
    base = baselines(coarse, keys)
    for name in product_names:
        if name == DL:
            values[name] = _at_cells(product, keys, cells)
        elif name in base:
            values[name] = np.asarray(base[name], dtype=np.float64)[:, cols]
        elif name in channels:
            m = list(channels).index(name)
            fine = grid.resample(np.asarray(coarse[:, m], dtype=np.float64))
            values[name] = fine[:, cols]  # as scored in metrics.csv (not clipped)
    values[REFERENCE] = _at_cells(reference, keys, cells)
    scores = score_table(used, keys, observed, values)
    series = series_dataset(used, keys, observed, values, attrs)
    return StationResult(scores, qc, series, notes)


def series_dataset(
    used: Sequence[Station],
    keys: np.ndarray,
    observed: np.ndarray,
    values: Mapping[str, np.ndarray],
    attrs: Mapping[str, str],
) -> xr.Dataset:
    """``stations.nc``: CF discrete sampling geometry ``timeSeries`` (orthogonal array)."""
    years, months = keys // 12, keys % 12 + 1
    start = pd.to_datetime({"year": years, "month": months, "day": 1}) if keys.size else []
    nxt = (
        pd.to_datetime({"year": (keys + 1) // 12, "month": (keys + 1) % 12 + 1, "day": 1})
        if keys.size else []
    )
    start = pd.DatetimeIndex(start)
    nxt = pd.DatetimeIndex(nxt)
    mid = start + (nxt - start) / 2
    flags = sorted({f for st in used for f in st.flags})
    n = len(used)
    names = list(values)
    days = np.zeros((n, keys.size), dtype=np.int32)
    for k, st in enumerate(used):
        if not st.monthly.empty:
            d = st.monthly["days"].reindex(keys).fillna(0).to_numpy(dtype=np.int32)
            days[k] = d
    ds = xr.Dataset(
        {
            "station_name": (("station",), np.array([st.station for st in used], dtype=object),
                             {"long_name": "ISMN station", "cf_role": "timeseries_id"}),
            "network": (("station",), np.array([st.network for st in used], dtype=object),
                        {"long_name": "ISMN network"}),
            "depth_from": (("station",), np.array([st.depth_from for st in used]),
                           {"long_name": "top of the shallowest sensor used", "units": "m",
                            "positive": "down"}),
            "depth_to": (("station",), np.array([st.depth_to for st in used]),
                         {"long_name": "bottom of the deepest sensor used", "units": "m",
                          "positive": "down"}),
            "cell_lat": (("station",), np.array([st.cell_lat for st in used]),
                         {"long_name": "latitude of the matched 0.25 degree cell",
                          "units": "degrees_north"}),
            "cell_lon": (("station",), np.array([st.cell_lon for st in used]),
                         {"long_name": "longitude of the matched 0.25 degree cell",
                          "units": "degrees_east"}),
            "sm_insitu": (("station", "time"), observed.T.astype(np.float32), {
                "long_name": "in-situ surface soil moisture, monthly mean of daily means "
                             "(months with at least 80 % of the days)",
                "standard_name": "volume_fraction_of_condensed_water_in_soil",
                "units": "m3 m-3", "cell_methods": "time: mean",
            }),
            "days_with_values": (("station", "time"), days, {
                "long_name": "days of the month with a value kept by the flag policy",
                "units": "1",
            }),
            "ssm": (("product", "station", "time"),
                    np.stack([values[p].T for p in names]).astype(np.float32)
                    if names else np.zeros((0, n, keys.size), np.float32), {
                "long_name": "products at the station's 0.25 degree cell",
                "standard_name": "volume_fraction_of_condensed_water_in_soil",
                "units": "m3 m-3", "cell_methods": "time: mean",
            }),
            "values_kept": (("station", "flag"), np.array(
                [[st.flags.get(f, [0, 0])[0] for f in flags] for st in used], dtype=np.int64
            ).reshape(n, len(flags)).astype(np.int32),
                {"long_name": "values kept, by ISMN flag", "units": "1"}),
            "values_dropped": (("station", "flag"), np.array(
                [[st.flags.get(f, [0, 0])[1] for f in flags] for st in used], dtype=np.int64
            ).reshape(n, len(flags)).astype(np.int32),
                {"long_name": "values dropped, by ISMN flag", "units": "1"}),
            "time_bnds": (("time", "bnds"), np.stack([start.values, nxt.values], axis=1)
                          if keys.size else np.zeros((0, 2), "datetime64[ns]")),
        },
        coords={
            "time": ("time", mid.values if keys.size else np.zeros(0, "datetime64[ns]"),
                     {"standard_name": "time", "bounds": "time_bnds", "axis": "T"}),
            "lat": (("station",), np.array([st.lat for st in used]),
                    {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": (("station",), np.array([st.lon for st in used]),
                    {"standard_name": "longitude", "units": "degrees_east"}),
            "product": ("product", np.array(names, dtype=object), {"long_name": "product"}),
            "flag": ("flag", np.array(flags, dtype=object), {"long_name": "ISMN quality flag"}),
        },
        attrs={
            **dict(attrs),
            "featureType": "timeSeries",
            "title": "smcore products at ISMN stations: monthly series",
        },
    )
    return ds
