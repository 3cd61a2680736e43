"""Tiny synthetic product and truth files for the analysis tests (no network, < 1 MB each)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from smcore.config import Config, GridSpec
from smcore.io.atomic import write_json
from smcore.io.netcdf import provenance_attrs, write_netcdf
from smcore.workdir import WorkDir
from tests.factories.config import study_config

# 8 x 12 one-degree grid straddling 35N and 100E, so both regions and the west exist.
TINY_GRID = GridSpec(lat0=30.5, lon0=94.5, res=1.0, nlat=8, nlon=12)


def tiny_config(**overrides) -> Config:
    cfg = study_config(TINY_GRID, scale=4, experiments=("historical", "ssp126", "ssp585"))
    return cfg.override(**overrides)


def tiny_config_toml(path: Path) -> Path:
    g = TINY_GRID
    path.write_text(
        "scale = 4\n"
        'experiments = ["historical", "ssp126", "ssp585"]\n'
        "[target]\n"
        f"lat0 = {g.lat0}\nlon0 = {g.lon0}\nres = {g.res}\nnlat = {g.nlat}\nnlon = {g.nlon}\n"
    )
    return path


def monthly_time(first_year: int, last_year: int) -> tuple[np.ndarray, np.ndarray]:
    """Mid-month datetime64 times and their (time, 2) bounds for whole years."""
    starts = pd.date_range(f"{first_year}-01-01", f"{last_year + 1}-01-01", freq="MS")
    lo, hi = starts[:-1].values, starts[1:].values
    mid = lo + (hi - lo) / 2
    return mid, np.stack([lo, hi], axis=-1)


def land_mask(grid: GridSpec = TINY_GRID) -> np.ndarray:
    """Bool (lat, lon): everything is land except one 'sea' corner."""
    land = np.ones(grid.shape, dtype=bool)
    land[:2, -3:] = False
    return land


def planted_trend(grid: GridSpec = TINY_GRID) -> np.ndarray:
    """Trend field (m3 m-3 per year, lat x lon): wetting north of 35N, drying south of it."""
    lat = grid.lat[:, None] * np.ones(grid.nlon)
    return np.where(lat >= 35.0, 4e-4, -4e-4)


def synthetic_ssm(
    first_year: int,
    last_year: int,
    *,
    grid: GridSpec = TINY_GRID,
    trend_per_year: np.ndarray | float = 0.0,
    trend_origin: int = 2015,
    base: float = 0.25,
    noise: float = 0.01,
    seed: int = 0,
) -> np.ndarray:
    """Monthly soil moisture (time, lat, lon) float32, m3 m-3: seasonal cycle + trend + noise."""
    rng = np.random.default_rng(seed)
    years = np.repeat(np.arange(first_year, last_year + 1), 12)
    months = np.tile(np.arange(1, 13), last_year - first_year + 1)
    lat = grid.lat[None, :, None]
    lon = grid.lon[None, None, :]
    season = 0.04 * np.sin(2 * np.pi * (months[:, None, None] - 4) / 12) * (1 + (lat - 30) / 20)
    spatial = base + 0.05 * np.cos(np.deg2rad(8 * (lon - 90))) + 0.002 * (lat - 30)
    t = (years - trend_origin + (months - 0.5) / 12)[:, None, None]
    x = spatial + season + np.asarray(trend_per_year)[None] * t
    x = x + noise * rng.standard_normal(x.shape)
    x = np.clip(x, 0.01, 0.7)
    x[:, ~land_mask(grid)] = np.nan
    return x.astype(np.float32)


def product_dataset(ssm: np.ndarray, first_year: int, grid: GridSpec = TINY_GRID, title: str = "") -> xr.Dataset:
    """Wrap (time, lat, lon) values in a product-like Dataset following docs/workdir.md."""
    nyears = ssm.shape[0] // 12
    time, bnds = monthly_time(first_year, first_year + nyears - 1)
    ds = xr.Dataset(
        {
            "ssm": (("time", "lat", "lon"), ssm, {
                "units": "m3 m-3",
                "standard_name": "volume_fraction_of_condensed_water_in_soil",
                "long_name": "surface soil moisture",
            }),
            "time_bnds": (("time", "bnds"), bnds),
            "lat_bnds": (("lat", "bnds"), grid.lat_bounds),
            "lon_bnds": (("lon", "bnds"), grid.lon_bounds),
        },
        coords={"time": time, "lat": grid.lat, "lon": grid.lon},
        attrs=provenance_attrs(title or "synthetic smcore product"),
    )
    ds["time"].attrs["bounds"] = "time_bnds"
    for name in ("time", "time_bnds"):
        ds[name].encoding.update(units="hours since 1850-01-01", dtype="float64")
    ds["lat"].attrs["bounds"] = "lat_bnds"
    ds["lon"].attrs["bounds"] = "lon_bnds"
    return ds


def write_ssm(path: Path, ssm: np.ndarray, first_year: int, grid: GridSpec = TINY_GRID) -> Path:
    return write_netcdf(product_dataset(ssm, first_year, grid), path, time_chunk=12)


def make_workdir(
    root: Path,
    cfg: Config | None = None,
    *,
    hist_years: tuple[int, int] = (1994, 2014),
    truth_dir: Path | None = None,
    truth_noise: float = 0.004,
) -> WorkDir:
    """A work directory with ``product/CMIP6_DL_<exp>.nc`` for every experiment of ``cfg``.

    Historical: no trend. Scenarios: :func:`planted_trend` scaled by the scenario index.
    With ``truth_dir``, also writes ``truth_<exp>.nc``: the same signal with other noise.
    """
    cfg = cfg or tiny_config()
    wd = WorkDir(root)
    grid = cfg.target
    # the manifest of `smcore prepare`: which experiments the later steps work on
    write_json({"experiments": list(cfg.experiments), "config": cfg.to_dict()}, wd.manifest)
    hist = synthetic_ssm(*hist_years, grid=grid, seed=1)
    write_ssm(wd.product("historical"), hist, hist_years[0], grid)
    y0, y1 = cfg.periods.future
    for k, exp in enumerate(cfg.future_experiments):
        trend = planted_trend(grid) * (1 + k)
        ssm = synthetic_ssm(y0, y1, grid=grid, trend_per_year=trend, seed=10 + k)
        write_ssm(wd.product(exp), ssm, y0, grid)
        if truth_dir is not None:
            t = synthetic_ssm(y0, y1, grid=grid, trend_per_year=trend, seed=100 + k, noise=truth_noise)
            write_ssm(truth_dir / f"truth_{exp}.nc", t, y0, grid)
    return wd
