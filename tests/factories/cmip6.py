"""Tiny synthetic CMIP6 (ESGF) and ERA5-Land (CDS) files for the data-preparation tests.

Every field is the same analytic soil moisture :func:`truth` — linear in latitude and
longitude, with a seasonal cycle and a trend — written in the conventions of real
archives (calendars, longitude conventions, latitude order, file splits, units, CDS
layouts). A prepare that matches months and grids correctly must therefore give back
:func:`truth` exactly wherever bilinear interpolation sees valid neighbours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import cftime
import numpy as np
import xarray as xr

from smcore.config import Config, GridSpec, ModelSpec, activity_for
from tests.factories.config import study_config
from tests.factories.fields import flip_stored_bytes

# 0.25° target grid of 24 x 32 cells over Sichuan/Gansu, coarse grid 3 x 4 cells of 2°
TEST_GRID = GridSpec(lat0=30.0, lon0=100.0, res=0.25, nlat=24, nlon=32)

TEST_MODELS = (
    ModelSpec("ModelA", "InstA", "r1i1p1f1", 2.5, 2.0, "noleap"),
    ModelSpec("ModelB", "InstB", "r1i1p1f1", 1.875, 1.25, "360_day"),
    ModelSpec("ModelC", "InstC", "r1i1p1f2", 2.8125, 2.8125, "proleptic_gregorian"),
    ModelSpec("ModelD", "InstD", "r1i1p1f1", 1.25, 1.0, "standard"),
)


def small_config(**changes: object) -> Config:
    cfg = study_config(
        TEST_GRID,
        years=dict(train=(2000, 2002), val=(2003, 2003), test=(2004, 2004), future=(2015, 2016),
                   baseline=(2000, 2004), change=((2015, 2016),)),
        models=TEST_MODELS,
        experiments=("historical", "ssp126", "ssp585"),
    )
    return replace(cfg, **changes) if changes else cfg


def truth(lat: np.ndarray, lon: np.ndarray, year: int, month: int) -> np.ndarray:
    """Volumetric soil moisture (m3 m-3) at (lat, lon) for one month; lon in degrees east."""
    lon = np.where(np.asarray(lon) < 0, np.asarray(lon) + 360.0, lon)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    season = 0.03 * np.sin(2 * np.pi * (month - 1) / 12.0)
    return 0.2 + 0.004 * (la - 30.0) + 0.002 * (lo - 100.0) + season + 0.002 * (year - 2000)


def _ocean(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """A 'sea' in the south-east of the domain: lat < 31 and lon in 106..125 (degrees east)."""
    lon = np.where(lon < 0, lon + 360.0, lon)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    return (la < 31.0) & (lo > 106.0) & (lo < 125.0)


def _month_bounds(year: int, month: int, units: str, calendar: str) -> tuple[float, float]:
    y2, m2 = (year + 1, 1) if month == 12 else (year, month + 1)
    a = cftime.date2num(
        cftime.datetime(year, month, 1, calendar=calendar), units, calendar=calendar
    )
    b = cftime.date2num(cftime.datetime(y2, m2, 1, calendar=calendar), units, calendar=calendar)
    return float(a), float(b)


def write_cmip6(
    root: Path,
    source_id: str,
    experiment: str,
    *,
    member: str = "r1i1p1f1",
    institution: str = "Inst",
    calendar: str = "noleap",
    years: tuple[int, int] = (1999, 2005),
    years_per_file: int | None = None,
    dlat: float = 2.0,
    dlon: float = 2.5,
    lon_convention: str = "0-360",
    descending_lat: bool = False,
    lat_range: tuple[float, float] = (20.0, 46.0),
    lon_range: tuple[float, float] | None = None,
    units: str = "kg m-2",
    layer_depth_mm: float = 100.0,
    drs: bool = True,
    variable: str = "mrsos",
    table: str = "Lmon",
    grid_label: str = "gn",
    version: str = "v20190101",
    skip_months: Sequence[tuple[int, int]] = (),
    stamp: str = "mid",
    value_factor: float | None = None,
    frequency: str = "mon",
    checksum: bool = False,
) -> list[Path]:
    """Write one CMIP6 dataset (one or several files) and return the file paths.

    Longitudes are global (``0-360`` or ``-180-180``), latitudes cover ``lat_range``;
    ocean cells are stored as the 1e20 fill value. ``skip_months`` leaves months out
    (to make gaps); ``stamp`` puts time stamps in mid-month or at the month start.
    Values are the volumetric truth times ``value_factor`` (default: the layer depth for
    ``kg`` units, else 1), so ``units`` may lie about them; ``frequency`` is the global
    attribute; ``checksum`` stores the data in chunks of one month with HDF5's Fletcher-32
    checksum (see :func:`corrupt_chunk`).
    """
    lat = np.arange(lat_range[0], lat_range[1] + 1e-9, dlat)
    lon = (
        np.arange(0.0, 360.0, dlon) if lon_convention == "0-360" else np.arange(-180.0, 180.0, dlon)
    )
    if lon_range is not None:  # a file already cut to a region
        lon = lon[(lon >= lon_range[0]) & (lon <= lon_range[1])]
    if descending_lat:
        lat = lat[::-1]
    ocean = _ocean(lat, lon)
    factor = layer_depth_mm if units.startswith("kg") else 1.0
    if value_factor is not None:
        factor = value_factor
    folder = root
    if drs:
        folder = (
            root
            / "CMIP6"
            / activity_for(experiment)
            / institution
            / source_id
            / experiment
            / member
            / table
            / variable
            / grid_label
            / version
        )
    folder.mkdir(parents=True, exist_ok=True)
    y0, y1 = years
    step = years_per_file or (y1 - y0 + 1)
    tunits = "days since 1850-01-01 00:00:00"
    paths = []
    for fy0 in range(y0, y1 + 1, step):
        fy1 = min(fy0 + step - 1, y1)
        months = [
            (y, m)
            for y in range(fy0, fy1 + 1)
            for m in range(1, 13)
            if (y, m) not in set(skip_months)
        ]
        if not months:
            continue
        bnds = np.array([_month_bounds(y, m, tunits, calendar) for y, m in months])
        tvals = bnds.mean(axis=1) if stamp == "mid" else bnds[:, 0]
        data = np.stack(
            [np.where(ocean, np.nan, truth(lat, lon, y, m) * factor) for y, m in months]
        ).astype("float32")
        ds = xr.Dataset(
            {
                variable: (
                    ("time", "lat", "lon"),
                    data,
                    {"units": units, "standard_name": "mass_content_of_water_in_soil_layer"},
                ),
                "time_bnds": (("time", "bnds"), bnds),
            },
            coords={
                "time": (
                    "time",
                    tvals,
                    {
                        "units": tunits,
                        "calendar": calendar,
                        "bounds": "time_bnds",
                        "axis": "T",
                        "standard_name": "time",
                    },
                ),
                "lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
                "lon": ("lon", lon, {"units": "degrees_east", "standard_name": "longitude"}),
            },
            attrs={
                "source_id": source_id,
                "experiment_id": experiment,
                "variant_label": member,
                "table_id": table,
                "variable_id": variable,
                "grid_label": grid_label,
                "institution_id": institution,
                "frequency": frequency,
                "Conventions": "CF-1.7 CMIP-6.2",
            },
        )
        name = (
            f"{variable}_{table}_{source_id}_{experiment}_{member}_{grid_label}_"
            f"{months[0][0]:04d}{months[0][1]:02d}-{months[-1][0]:04d}{months[-1][1]:02d}.nc"
        )
        path = folder / name
        deflate = (
            dict(fletcher32=True, chunksizes=(1, lat.size, lon.size)) if checksum else {}
        )
        ds.to_netcdf(
            path,
            encoding={
                variable: {"_FillValue": np.float32(1e20), **deflate},
                "time": {"_FillValue": None},
                "lat": {"_FillValue": None},
                "lon": {"_FillValue": None},
                "time_bnds": {"_FillValue": None},
            },
        )
        paths.append(path)
    return paths


def write_model_set(
    root: Path,
    models: Sequence[ModelSpec] = TEST_MODELS,
    experiments: Sequence[str] = ("historical", "ssp126", "ssp585"),
    hist_years: tuple[int, int] = (1999, 2005),
    future_years: tuple[int, int] = (2015, 2016),
    missing: Sequence[tuple[str, str]] = (),
) -> None:
    """A varied archive: each model gets its own calendar, resolution and quirks.

    ModelA: DRS, noleap, 0..360, one file per dataset.
    ModelB: DRS, 360_day, −180..180, descending latitude, yearly files.
    ModelC: flat folder, proleptic_gregorian, month-start stamps, m3 m-3 units.
    ModelD: DRS, standard calendar, two files per dataset, ``kg/m2`` spelling.
    ``missing`` lists (source_id, experiment) pairs not to write.
    """
    quirks = {
        "ModelA": dict(),
        "ModelB": dict(lon_convention="-180-180", descending_lat=True, years_per_file=1),
        "ModelC": dict(drs=False, stamp="start", units="m3 m-3"),
        "ModelD": dict(years_per_file=4, units="kg/m2"),
    }
    for m in models:
        for exp in experiments:
            if (m.source_id, exp) in missing:
                continue
            years = hist_years if exp == "historical" else future_years
            kw = dict(quirks.get(m.source_id, {}))
            if exp != "historical" and "years_per_file" in kw:
                kw["years_per_file"] = 1
            write_cmip6(
                root / "cmip6" if kw.get("drs", True) else root / "cmip6" / "flat",
                m.source_id,
                exp,
                member=m.member_id,
                institution=m.institution_id,
                calendar=m.calendar,
                years=years,
                dlat=m.dlat,
                dlon=m.dlon,
                **kw,
            )


def write_era5(
    folder: Path,
    years: tuple[int, int] = (2000, 2004),
    *,
    layout: str = "new",
    res: float = 0.25,
    per_year: bool = True,
    lat_range: tuple[float, float] = (25.0, 41.0),
    lon_range: tuple[float, float] = (94.0, 113.0),
    sea: bool = True,
    all_nan_year: int | None = None,
    steps: str = "month",
    checksum: bool = False,
) -> list[Path]:
    """Write ERA5-Land monthly ``swvl1`` files; return their paths.

    ``layout``: ``new`` (valid_time, number, expver coordinate), ``old`` (time in hours
    since 1900, packed int16) or ``old-expver`` (old with an expver dimension, the last
    three months valid only in expver 5). Latitude is descending as the CDS delivers it.
    A small sea (NaN) lies in the south-east corner. ``steps``: ``month`` (monthly means),
    or the wrong downloads ``day`` (every day of each month) and ``hour`` (the first 48
    hours of each month). ``checksum`` stores the data (new layout) in chunks of one step with
    HDF5's Fletcher-32 checksum (see :func:`corrupt_chunk`).
    """
    folder.mkdir(parents=True, exist_ok=True)
    lat = np.round(np.arange(lat_range[1], lat_range[0] - 1e-9, -res), 4)
    lon = np.round(np.arange(lon_range[0], lon_range[1] + 1e-9, res), 4)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    seamask = (la < 30.6) & (lo > 107.0) if sea else np.zeros_like(la, bool)
    groups = (
        [[y] for y in range(years[0], years[1] + 1)]
        if per_year
        else [list(range(years[0], years[1] + 1))]
    )
    paths = []
    for ys in groups:
        months = [(y, m) for y in ys for m in range(1, 13)]
        stamps = np.array(
            [np.datetime64(f"{y:04d}-{m:02d}-01") for y, m in months], dtype="datetime64[s]"
        )
        if steps != "month":
            starts = stamps
            if steps == "day":
                ends = [s0.astype("datetime64[M]") + 1 for s0 in starts]
                stamps = np.concatenate(
                    [np.arange(s0, e.astype("datetime64[s]"), np.timedelta64(1, "D"))
                     for s0, e in zip(starts, ends, strict=True)]
                )
            else:
                stamps = np.concatenate(
                    [s0 + np.arange(48) * np.timedelta64(1, "h") for s0 in starts]
                ).astype("datetime64[s]")
            months = [(int(str(t)[:4]), int(str(t)[5:7])) for t in stamps]
        data = np.stack(
            [np.where(seamask, np.nan, truth(lat, lon, y, m)) for y, m in months]
        ).astype("float32")
        if all_nan_year is not None:
            for i, (y, _m) in enumerate(months):
                if y == all_nan_year:
                    data[i] = np.nan
        name = (
            f"swvl1_era5land_monthly_{ys[0]:04d}.nc"
            if per_year
            else f"swvl1_era5land_monthly_{ys[0]}-{ys[-1]}.nc"
        )
        path = folder / name
        latattrs = {"units": "degrees_north", "standard_name": "latitude", "long_name": "latitude"}
        lonattrs = {"units": "degrees_east", "standard_name": "longitude", "long_name": "longitude"}
        vattrs = {"units": "m**3 m**-3", "long_name": "Volumetric soil water layer 1"}
        if layout == "new":
            secs = stamps.astype(np.int64)
            ds = xr.Dataset(
                {"swvl1": (("valid_time", "latitude", "longitude"), data, vattrs)},
                coords={
                    "valid_time": (
                        "valid_time",
                        secs,
                        {
                            "units": "seconds since 1970-01-01",
                            "calendar": "proleptic_gregorian",
                            "standard_name": "time",
                        },
                    ),
                    "latitude": ("latitude", lat, dict(latattrs, stored_direction="decreasing")),
                    "longitude": ("longitude", lon, lonattrs),
                    "number": ((), 0),
                    "expver": ("valid_time", np.array(["0001"] * len(months))),
                },
                attrs={"GRIB_centre": "ecmf", "Conventions": "CF-1.7"},
            )
            enc = {"swvl1": {"_FillValue": np.float32(np.nan)}, "valid_time": {"_FillValue": None}}
            if checksum:
                enc["swvl1"].update(fletcher32=True, chunksizes=(1, lat.size, lon.size))
        else:
            hours = (
                (stamps - np.datetime64("1900-01-01T00:00:00")) // np.timedelta64(1, "h")
            ).astype(np.int32)
            tcoord = (
                "time",
                hours,
                {
                    "units": "hours since 1900-01-01 00:00:00.0",
                    "calendar": "gregorian",
                    "long_name": "time",
                },
            )
            if layout == "old-expver":
                both = np.stack([data, data], axis=1)
                both[-3:, 0] = np.nan
                both[:-3, 1] = np.nan
                ds = xr.Dataset(
                    {"swvl1": (("time", "expver", "latitude", "longitude"), both, vattrs)},
                    coords={
                        "time": tcoord,
                        "expver": ("expver", np.array([1, 5], dtype=np.int32)),
                        "latitude": ("latitude", lat, latattrs),
                        "longitude": ("longitude", lon, lonattrs),
                    },
                )
            else:
                ds = xr.Dataset(
                    {"swvl1": (("time", "latitude", "longitude"), data, vattrs)},
                    coords={
                        "time": tcoord,
                        "latitude": ("latitude", lat, latattrs),
                        "longitude": ("longitude", lon, lonattrs),
                    },
                )
            enc = {
                "swvl1": {
                    "dtype": "int16",
                    "scale_factor": 1e-5,
                    "add_offset": 0.4,
                    "_FillValue": np.int16(-32767),
                },
                "time": {"_FillValue": None},
            }
        ds.to_netcdf(path, encoding=enc)
        paths.append(path)
    return paths


def write_inputs(
    root: Path,
    *,
    era5_layout: str = "new",
    era5_res: float = 0.25,
    missing: Sequence[tuple[str, str]] = (),
    models: Sequence[ModelSpec] = TEST_MODELS,
) -> tuple[Path, Path]:
    """A complete small input set; returns (cmip6 folder, era5 folder)."""
    write_model_set(root, models=models, missing=missing)
    write_era5(root / "era5", layout=era5_layout, res=era5_res)
    return root / "cmip6", root / "era5"


def write_config_toml(path: Path, cfg: Config | None = None, experiments: bool = False) -> Path:
    """Write grid, periods and models of ``cfg`` (default :func:`small_config`) as TOML."""
    cfg = cfg or small_config()
    g, p = cfg.target, cfg.periods
    lines = []
    if experiments:
        lines.append("experiments = [" + ", ".join(f'"{e}"' for e in cfg.experiments) + "]")
    lines += [
        "[target]",
        f"lat0 = {g.lat0}",
        f"lon0 = {g.lon0}",
        f"res = {g.res}",
        f"nlat = {g.nlat}",
        f"nlon = {g.nlon}",
        "[periods]",
    ]
    for name in ("train", "val", "test", "future", "baseline"):
        y0, y1 = getattr(p, name)
        lines.append(f"{name} = [{y0}, {y1}]")
    lines.append("change = [" + ", ".join(f"[{a}, {b}]" for a, b in p.change) + "]")
    for m in cfg.models:
        lines += [
            "[[models]]",
            f'source_id = "{m.source_id}"',
            f'institution_id = "{m.institution_id}"',
            f'member_id = "{m.member_id}"',
            f"dlon = {m.dlon}",
            f"dlat = {m.dlat}",
            f'calendar = "{m.calendar}"',
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def corrupt_chunk(path: Path, variable: str, index: int = 3) -> None:
    """Damage the stored bytes of chunk ``index`` (one time step) of ``variable``.

    The variable must have been written with ``checksum=True`` (one step per chunk, HDF5's
    Fletcher-32 checksum), and the step's values must occur once in the file (:func:`truth`
    repeats some months: April, index 3, is unique). The header, the coordinates and every
    other chunk stay intact, so the file opens and its time axis reads as before; reading that
    chunk fails, as with a disk or transfer error in the data.
    """
    import netCDF4

    with netCDF4.Dataset(path) as nc:
        var = nc[variable]
        if not (var.filters() or {}).get("fletcher32"):
            raise ValueError(f"{path}: {variable} has no checksum; write it with checksum=True")
        var.set_auto_maskandscale(False)
        raw = np.ascontiguousarray(var[index : index + 1]).astype(var.dtype.newbyteorder("<"))
    flip_stored_bytes(path, raw.tobytes(), f"chunk {index} of {variable}")
