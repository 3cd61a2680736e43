"""Tiny synthetic prepared stores, products and truth files for the evaluation tests.

The world: a 16×24 target grid (0.25°) nested in a 2×3 coarse grid (2°), years 2000–2009
(train 2000–2005, val 2006–2007, test 2008–2009) and one SSP over 2010–2012. The "truth" is a
seasonal cycle plus a trend and noise; the reference is the truth on land; each model is
the coarse-cell mean of the truth with its own bias, gain and noise; the network product is
the truth plus a little noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from smcore.config import Config, GridSpec
from smcore.io.netcdf import provenance_attrs, write_netcdf
from smcore.prep.store import PreparedData, write_prepared
from tests.factories.config import study_config
from tests.factories.fields import training_climatology

MODELS = ("MODEL-A", "MODEL-B", "MODEL-C")


def tiny_config() -> Config:
    return study_config(
        GridSpec(lat0=18.0, lon0=71.0, res=0.25, nlat=16, nlon=24),
        years=dict(train=(2000, 2005), val=(2006, 2007), test=(2008, 2009), future=(2010, 2012)),
        experiments=("historical", "ssp245"),
    )


def _months(y0: int, y1: int) -> pd.DatetimeIndex:
    return pd.date_range(f"{y0}-01-01", f"{y1}-12-01", freq="MS")


def land_mask(cfg: Config) -> np.ndarray:
    """Land everywhere except a sea corner (south-east) and one sea cell."""
    m = np.ones(cfg.target.shape, dtype=np.int8)
    m[:4, -6:] = 0
    m[10, 3] = 0
    return m


def truth_fields(cfg: Config, times: pd.DatetimeIndex, seed: int, trend: float = 0.0) -> np.ndarray:
    """Truth ``(time, lat, lon)`` float64 m3 m-3: climate gradient + seasonal cycle + noise."""
    rng = np.random.default_rng(seed)
    nlat, nlon = cfg.target.shape
    base = 0.10 + 0.25 * np.linspace(0, 1, nlon)[None, :] + 0.05 * np.linspace(0, 1, nlat)[:, None]
    phase = 2 * np.pi * (times.month.values - 1) / 12
    amp = 0.04 + 0.02 * np.linspace(0, 1, nlat)[:, None] * np.ones((1, nlon))
    years = (times.year.values - 2000) + (times.month.values - 1) / 12
    x = (
        base[None]
        + amp[None] * np.sin(phase)[:, None, None]
        + trend * years[:, None, None]
        + 0.02 * rng.standard_normal((times.size, nlat, nlon))
    )
    return np.clip(x, 0.02, 0.5)


def coarse_models(cfg: Config, truth: np.ndarray, seed: int) -> np.ndarray:
    """Models ``(time, model, clat, clon)`` from the coarse-cell means of the truth."""
    rng = np.random.default_rng(seed)
    s = cfg.scale
    t, nlat, nlon = truth.shape
    coarse = truth.reshape(t, nlat // s, s, nlon // s, s).mean(axis=(2, 4))
    out = []
    for i, _ in enumerate(MODELS):
        bias = 0.03 * (i - 1) + 0.02
        gain = 1.0 + 0.2 * (i - 1)
        noise = 0.01 * rng.standard_normal(coarse.shape)
        out.append(bias + gain * (coarse - coarse.mean(axis=0)) + coarse.mean(axis=0) + noise)
    return np.stack(out, axis=1).astype(np.float32)


def make_store(
    root: Path, cfg: Config | None = None, *, seed: int = 0, perturb_test: bool = False
) -> PreparedData:
    """Write ``root/prepared`` and return it opened.

    With ``perturb_test``, the reference and the inputs of the test (and SSP) months are
    replaced by unrelated random values: nothing fitted may change.
    """
    cfg = cfg or tiny_config()
    p = cfg.periods
    times = _months(p.historical[0], p.historical[1])
    truth = truth_fields(cfg, times, seed)
    mask = land_mask(cfg)
    reference = np.where(mask[None] == 1, truth, np.nan).astype(np.float32)
    coarse = coarse_models(cfg, truth, seed + 1)
    fut_times = _months(*p.future)
    fut_truth = truth_fields(cfg, fut_times, seed + 2, trend=0.01)
    fut_coarse = coarse_models(cfg, fut_truth, seed + 3)
    if perturb_test:
        rng = np.random.default_rng(99)
        test = (times.year >= p.test[0]) & (times.year <= p.test[1])
        reference[test] = np.where(
            mask[None] == 1, rng.uniform(0, 0.6, reference[test].shape), np.nan
        )
        coarse[test] = rng.uniform(0, 0.6, coarse[test].shape)
        fut_coarse = rng.uniform(0, 0.6, fut_coarse.shape).astype(np.float32)
    train = (times.year >= p.train[0]) & (times.year <= p.train[1])
    lat, lon = cfg.target.lat, cfg.target.lon
    clat, clon = cfg.coarse.lat, cfg.coarse.lon
    clim = training_climatology(reference, times, p.train)
    static = xr.Dataset(
        {
            "reference": (("time", "lat", "lon"), reference, {"units": "m3 m-3"}),
            "land_mask": (("lat", "lon"), mask),
            "elevation": (("lat", "lon"), np.zeros(cfg.target.shape, np.float32), {"units": "m"}),
            "climatology": (("month", "lat", "lon"), clim.astype(np.float32), {"units": "m3 m-3"}),
            "x_mean": ("model", coarse[train].mean(axis=(0, 2, 3)).astype(np.float32)),
            "x_std": ("model", coarse[train].std(axis=(0, 2, 3)).astype(np.float32)),
            "y_mean": ((), np.float32(np.nanmean(reference[train]))),
            "y_std": ((), np.float32(np.nanstd(reference[train]))),
        },
        coords={
            "time": times.values,
            "lat": lat,
            "lon": lon,
            "clat": clat,
            "clon": clon,
            "model": list(MODELS),
            "month": np.arange(1, 13),
        },
        attrs={
            "train": f"{p.train[0]}-{p.train[1]}",
            "val": f"{p.val[0]}-{p.val[1]}",
            "test": f"{p.test[0]}-{p.test[1]}",
            "channels": ",".join(MODELS),
        },
    )
    dims = ("time", "model", "clat", "clon")
    inputs = {
        "historical": xr.DataArray(
            coarse,
            dims=dims,
            coords={"time": times.values, "model": list(MODELS), "clat": clat, "clon": clon},
        ),
        "ssp245": xr.DataArray(
            fut_coarse,
            dims=dims,
            coords={"time": fut_times.values, "model": list(MODELS), "clat": clat, "clon": clon},
        ),
    }
    manifest = {"channels": list(MODELS), "config": cfg.to_dict()}
    return write_prepared(root, static, inputs, manifest)


def _mid_month(times: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    start = times.values
    end = (times + pd.offsets.MonthBegin(1)).values
    return start + (end - start) / 2, np.stack([start, end], axis=1)


def write_ssm(
    path: Path, values: np.ndarray, times: pd.DatetimeIndex, cfg: Config, title: str
) -> Path:
    """Write ``ssm(time, lat, lon)`` as the product/truth contract says (mid-month, bounds)."""
    mid, bnds = _mid_month(times)
    ds = xr.Dataset(
        {
            "ssm": (
                ("time", "lat", "lon"),
                values.astype(np.float32),
                {
                    "units": "m3 m-3",
                    "standard_name": "volume_fraction_of_condensed_water_in_soil",
                },
            ),
            "time_bnds": (("time", "bnds"), bnds),
            "lat_bnds": (("lat", "bnds"), cfg.target.lat_bounds),
            "lon_bnds": (("lon", "bnds"), cfg.target.lon_bounds),
        },
        coords={
            "time": ("time", mid, {"bounds": "time_bnds"}),
            "lat": ("lat", cfg.target.lat, {"bounds": "lat_bnds"}),
            "lon": ("lon", cfg.target.lon, {"bounds": "lon_bnds"}),
        },
        attrs=provenance_attrs(title),
    )
    enc = {
        "units": "days since 1850-01-01",
        "calendar": "standard",
        "dtype": "float64",
        "_FillValue": None,
    }
    return write_netcdf(
        ds, path, time_chunk=12, encoding={"time": dict(enc), "time_bnds": dict(enc)}
    )


def make_workdir(
    root: Path,
    cfg: Config | None = None,
    *,
    seed: int = 0,
    product_noise: float = 0.005,
    with_truth: bool = True,
    drop_product_months: int = 0,
) -> tuple[PreparedData, Path | None]:
    """A work directory with a prepared store, the network products and (optionally) truth files.

    Returns the opened store and the truth folder (or None).
    """
    cfg = cfg or tiny_config()
    prepared = make_store(root, cfg, seed=seed)
    mask = land_mask(cfg)[None] == 1
    rng = np.random.default_rng(seed + 10)
    p = cfg.periods
    times = _months(*p.historical)
    truth = truth_fields(cfg, times, seed)
    product = np.where(mask, truth + product_noise * rng.standard_normal(truth.shape), np.nan)
    keep = slice(0, times.size - drop_product_months)
    write_ssm(
        root / "product" / "CMIP6_DL_historical.nc", product[keep], times[keep], cfg, "test product"
    )
    fut_times = _months(*p.future)
    fut_truth = truth_fields(cfg, fut_times, seed + 2, trend=0.01)
    fut_product = np.where(
        mask, fut_truth + product_noise * rng.standard_normal(fut_truth.shape), np.nan
    )
    write_ssm(root / "product" / "CMIP6_DL_ssp245.nc", fut_product, fut_times, cfg, "test product")
    truth_dir = None
    if with_truth:
        truth_dir = root / "truth"
        write_ssm(
            truth_dir / "truth_historical.nc", np.where(mask, truth, np.nan), times, cfg, "truth"
        )
        write_ssm(
            truth_dir / "truth_ssp245.nc",
            np.where(mask, fut_truth, np.nan),
            fut_times,
            cfg,
            "truth",
        )
    return prepared, truth_dir
