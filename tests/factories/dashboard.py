"""A synthetic work directory holding every artifact of docs/workdir.md, for dashboard tests.

:func:`make_workdir` writes the prepared store, training history and summary, the products,
the evaluation and the analysis files with the layouts of the contract, filled with smooth,
seeded, soil-moisture-like values (m3 m-3) over a rough outline of China. ``small=True``
uses a coarse 1.125° target grid and a few years (seconds to write, a few MB); ``small=False``
uses the study's 0.25° grid (144 × 264) and full periods (for benchmarks).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.path import Path as MplPath

from smcore.analysis.significance import benjamini_hochberg
from smcore.config import SEASONS, TABLE1_MODELS, Config, GridSpec
from smcore.io.atomic import write_csv, write_json
from smcore.io.netcdf import provenance_attrs, write_netcdf
from smcore.prep.store import write_prepared
from smcore.workdir import WorkDir
from tests.factories.config import study_config
from tests.factories.fields import flip_stored_bytes, training_climatology

__all__ = [
    "make_workdir",
    "small_config",
    "study_grid_field",
    "REGIONS",
    "BASELINES",
    "CHINA_OUTLINE",
]

REGIONS = ("arid", "semi_arid_sub_humid", "humid", "tibetan_plateau")
BASELINES = (
    "bias_corrected_ensemble_mean",
    "era5_train_climatology",
    "ridge_stacking",
    "qdm_ensemble_mean",
)
FDR_ALPHA = 0.1
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# A coarse (lon, lat) outline of China, enough for realistic-looking synthetic land masks.
CHINA_OUTLINE = np.array(
    [
        (73.5, 39.5),
        (75.0, 37.0),
        (78.5, 35.5),
        (79.5, 32.5),
        (78.8, 30.5),
        (81.0, 30.0),
        (85.0, 28.3),
        (88.0, 27.9),
        (92.0, 27.8),
        (97.0, 28.2),
        (98.5, 24.5),
        (97.7, 23.8),
        (100.0, 21.5),
        (102.0, 22.4),
        (106.5, 22.0),
        (108.0, 21.6),
        (110.0, 20.2),
        (111.0, 21.5),
        (113.5, 22.2),
        (117.0, 23.5),
        (119.5, 25.5),
        (121.5, 28.5),
        (122.0, 31.0),
        (120.5, 33.5),
        (119.3, 35.0),
        (122.5, 37.2),
        (121.0, 38.0),
        (118.5, 38.8),
        (121.5, 40.0),
        (124.3, 40.0),
        (128.0, 42.0),
        (131.0, 42.8),
        (131.3, 45.0),
        (134.7, 48.2),
        (130.5, 48.0),
        (127.5, 49.8),
        (125.5, 53.0),
        (121.0, 53.3),
        (119.0, 50.0),
        (116.0, 49.8),
        (115.5, 47.5),
        (119.5, 47.0),
        (111.5, 43.5),
        (105.0, 41.6),
        (97.0, 42.8),
        (96.0, 44.0),
        (91.0, 45.5),
        (90.5, 47.8),
        (87.5, 49.0),
        (85.5, 47.0),
        (83.0, 47.2),
        (82.5, 45.5),
        (80.0, 45.0),
        (80.5, 43.0),
        (76.0, 40.5),
        (73.5, 39.5),
    ]
)


def small_config() -> Config:
    """A tiny study: 32 × 56 target cells of 1.125°, 4 × 7 coarse cells, 4 models, few years."""
    return study_config(
        GridSpec(lat0=18.0, lon0=71.0, res=1.125, nlat=32, nlon=56),
        years=dict(
            train=(2000, 2005),
            val=(2006, 2007),
            test=(2008, 2009),
            future=(2015, 2024),
            baseline=(2000, 2009),
            change=((2015, 2018), (2019, 2021), (2022, 2024)),
        ),
        models=TABLE1_MODELS[:4],
    )


def _years(span: tuple[int, int]) -> str:
    return f"{span[0]}-{span[1]}"


def _months(y0: int, y1: int) -> pd.DatetimeIndex:
    return pd.date_range(f"{y0}-01-01", f"{y1}-12-01", freq="MS")


def _land_mask(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    lon2, lat2 = np.meshgrid(lon, lat)
    inside = MplPath(CHINA_OUTLINE).contains_points(np.column_stack([lon2.ravel(), lat2.ravel()]))
    return inside.reshape(lat2.shape).astype(np.int8)


def _field(
    lat: np.ndarray,
    lon: np.ndarray,
    time: pd.DatetimeIndex,
    rng: np.random.Generator,
    bias: float = 0.0,
    trend: float = 0.0,
) -> np.ndarray:
    """Soil-moisture-like values (m3 m-3), dims (time, lat, lon): wet south-east, seasonal cycle."""
    lon2, lat2 = np.meshgrid(lon, lat)
    base = 0.08 + 0.30 * np.clip((lon2 - 75) / 50, 0, 1) * np.clip((50 - lat2) / 25, 0.2, 1)
    month = np.asarray(time.month)
    years = np.asarray(time.year + (time.month - 1) / 12.0)
    season = 0.04 * np.sin(2 * np.pi * (month - 4) / 12.0)[:, None, None]
    drift = (trend * (years - years[0]) / 10.0)[:, None, None] * np.sign(lat2 - 32)[None]
    noise = 0.01 * rng.standard_normal((len(time), *lat2.shape))
    return np.clip(base[None] + season + drift + noise + bias, 0.01, 0.6).astype(np.float32)


def _time_attrs(ds: xr.Dataset, months: pd.DatetimeIndex) -> xr.Dataset:
    """Mid-month ``time`` with ``time_bnds`` (standard calendar), as the product carries."""
    start = months
    end = months + pd.offsets.MonthBegin(1)
    mid = start + (end - start) / 2
    ds = ds.assign_coords(time=("time", mid))
    ds["time_bnds"] = (("time", "bnds"), np.stack([start.values, end.values], axis=1))
    ds["time"].attrs.update(bounds="time_bnds", standard_name="time", axis="T")
    ds["time"].encoding.update(units="days since 1850-01-01", calendar="standard", dtype="float64")
    ds["time_bnds"].encoding.update(
        units="days since 1850-01-01", calendar="standard", dtype="float64"
    )
    return ds


def _grid_bounds(ds: xr.Dataset, grid: GridSpec) -> xr.Dataset:
    ds["lat_bnds"] = (("lat", "bnds"), grid.lat_bounds)
    ds["lon_bnds"] = (("lon", "bnds"), grid.lon_bounds)
    ds["lat"].attrs["bounds"] = "lat_bnds"
    ds["lon"].attrs["bounds"] = "lon_bnds"
    return ds


def study_grid_field(value: float, name: str = "trend") -> xr.DataArray:
    """A (lat, lon) field of one ``value`` on the study's 0.25° grid (144 × 264), float32."""
    grid = Config().target
    return xr.DataArray(
        np.full((grid.lat.size, grid.lon.size), value, np.float32),
        dims=("lat", "lon"),
        coords={"lat": grid.lat, "lon": grid.lon},
        name=name,
    )


def make_workdir(
    path: str | Path, small: bool = True, seed: int = 7, uncertainty: bool = True
) -> WorkDir:
    """Write a complete synthetic work directory at ``path`` and return it.

    Every artifact follows docs/workdir.md: ``prepared/`` (via ``write_prepared``),
    ``training/history.csv`` and ``summary.json``, ``product/CMIP6_DL_<exp>.nc``,
    ``evaluation/*`` and ``analysis/*``. The checkpoints are empty placeholders (the dashboard
    never loads them, it only reports that they exist); the optional figures are not written.
    With ``uncertainty`` the products carry ``ssm_sd`` (0.01 + 0.05 · ssm, int16-packed as
    ``smcore predict`` writes it for a Gaussian head).
    """
    # imports torch: only when writing
    from smcore.train.predict import SD_ATTRS, SD_SCALE, product_chunks

    cfg = small_config() if small else Config()
    wd = WorkDir(path)
    rng = np.random.default_rng(seed)
    lat, lon = cfg.target.lat, cfg.target.lon
    clat, clon = cfg.coarse.lat, cfg.coarse.lon
    channels = [m.source_id for m in cfg.models]
    land = _land_mask(lat, lon)
    landf = np.where(land == 1, 1.0, np.nan).astype(np.float32)
    hist = _months(*cfg.periods.historical)
    fut = _months(*cfg.periods.future)
    config_json = cfg.to_json()

    # -- prepared ---------------------------------------------------------
    reference = _field(lat, lon, hist, rng) * landf
    clim = training_climatology(reference, hist, cfg.periods.train)
    static = xr.Dataset(
        {
            "reference": (("time", "lat", "lon"), reference, {"units": "m3 m-3"}),
            "land_mask": (("lat", "lon"), land, {"units": "1", "flag_values": [0, 1]}),
            "elevation": (
                ("lat", "lon"),
                (
                    4500 * np.exp(-((lat[:, None] - 33) ** 2 + (lon[None] - 88) ** 2) / 60) * land
                ).astype(np.float32),
                {"units": "m"},
            ),
            "climatology": (("month", "lat", "lon"), clim.astype(np.float32), {"units": "m3 m-3"}),
            "x_mean": (("model",), np.full(len(channels), 0.2, np.float32), {"units": "m3 m-3"}),
            "x_std": (("model",), np.full(len(channels), 0.08, np.float32), {"units": "m3 m-3"}),
            "y_mean": ((), np.float32(np.nanmean(reference)), {"units": "m3 m-3"}),
            "y_std": ((), np.float32(np.nanstd(reference)), {"units": "m3 m-3"}),
        },
        coords={
            "lat": lat,
            "lon": lon,
            "clat": clat,
            "clon": clon,
            "model": channels,
            "month": np.arange(1, 13),
            "time": hist,
        },
        attrs={
            "train": _years(cfg.periods.train),
            "val": _years(cfg.periods.val),
            "test": _years(cfg.periods.test),
            "channels": ",".join(channels),
            **provenance_attrs("smcore prepared data (synthetic)", config_json=config_json),
        },
    )
    inputs: dict[str, xr.DataArray] = {}
    for exp in cfg.experiments:
        months = hist if exp == "historical" else fut
        per_model = [
            _field(clat, clon, months, rng, bias=0.03 * (k - 1.5), trend=0.01)
            for k in range(len(channels))
        ]
        inputs[exp] = xr.DataArray(
            np.stack(per_model, axis=1),
            dims=("time", "model", "clat", "clon"),
            coords={"time": months, "model": channels, "clat": clat, "clon": clon},
            attrs={"units": "m3 m-3"},
            name="mrsos",
        )
    manifest = {
        "smcore_version": "synthetic",
        "config": cfg.to_dict(),
        "channels": channels,
        "members": {m.source_id: m.member_id for m in cfg.models},
        "excluded": {},
        "inputs": [],
        "fingerprint": "synthetic",
        "created": "2024-01-01T00:00:00Z",
    }
    write_prepared(wd, static, inputs, manifest)

    # -- training ---------------------------------------------------------
    epochs = np.arange(1, 13)
    history = pd.DataFrame(
        {
            "epoch": epochs,
            "train_loss": 0.05 + 0.9 * np.exp(-epochs / 3.0),
            "val_loss": 0.07 + 0.8 * np.exp(-epochs / 3.5) + 0.01 * rng.random(len(epochs)),
            "lr": np.where(epochs < 9, 1e-4, 5e-5),
            "seconds": np.full(len(epochs), 1.5),
        }
    )
    write_csv(history, wd.history)
    write_json(
        {
            "n_parameters": 1234567,
            "device": "cpu",
            "amp": False,
            "stopped_early": False,
            "batch_size": 8,
            "best_epoch": int(history["val_loss"].idxmin()) + 1,
            "best_val_loss": float(history["val_loss"].min()),
            "epochs_run": int(len(epochs)),
            "seconds": 18.0,
        },
        wd.path("summary"),
    )
    for key in ("checkpoint_best", "checkpoint_last"):
        wd.path(key).write_bytes(b"")

    # -- product ----------------------------------------------------------
    for exp in cfg.experiments:
        months = hist if exp == "historical" else fut
        trend = 0.0 if exp == "historical" else 0.004 * (cfg.experiments.index(exp))
        ssm = _field(lat, lon, months, rng, trend=trend) * landf
        ds = xr.Dataset(
            {
                "ssm": (
                    ("time", "lat", "lon"),
                    ssm,
                    {
                        "units": "m3 m-3",
                        "standard_name": "volume_fraction_of_condensed_water_in_soil",
                        "long_name": "surface soil moisture merged by YNet",
                    },
                )
            },
            coords={"lat": lat, "lon": lon},
            attrs=provenance_attrs(
                f"CMIP6_DL {exp}",
                config_json=config_json,
                experiment_id=exp,
                models_used=",".join(channels),
                checkpoint_sha256="0" * 64,
                checkpoint_epoch=12,
            ),
        )
        # chunked as `smcore predict` writes products
        chunks = {"ssm": {"chunksizes": product_chunks(*ssm.shape)}}
        if uncertainty:
            ds["ssm_sd"] = (("time", "lat", "lon"), (0.01 + 0.05 * ssm).astype(np.float32),
                            {**SD_ATTRS})
            ds["ssm"].attrs["ancillary_variables"] = "ssm_sd"
            chunks["ssm_sd"] = {"chunksizes": product_chunks(*ssm.shape), "dtype": "int16",
                                "scale_factor": SD_SCALE, "_FillValue": np.int16(-32768)}
        ds = _grid_bounds(_time_attrs(ds, months), cfg.target)
        write_netcdf(ds, wd.product(exp), encoding=chunks)

    # -- evaluation -------------------------------------------------------
    products = ["CMIP6_DL", "ensemble_mean", *BASELINES, *channels]
    rows = []
    for k, p in enumerate(products):
        scale = 0.3 if p == "CMIP6_DL" else 1.0 + 0.1 * k
        rows.append(
            {
                "product": p,
                "MAE": 0.02 * scale,
                "RMSD": 0.03 * scale,
                "ubRMSD": 0.025 * scale,
                "r": max(0.2, 0.95 - 0.05 * k),
                "spatial_r": max(0.3, 0.97 - 0.04 * k),
                "anomaly_r": max(0.1, 0.8 - 0.05 * k),
                "std_ratio": 0.8 + 0.05 * k,
            }
        )
    metrics = pd.DataFrame(rows)
    write_csv(metrics, wd.evaluation / "metrics.csv")
    taylor = pd.DataFrame(
        {
            "product": ["reference", *products],  # reference row first
            "std_norm": [1.0, *metrics["std_ratio"]],
            "corr": [1.0, *metrics["r"]],
        }
    )
    taylor["crmsd_norm"] = np.sqrt(
        1 + taylor["std_norm"] ** 2 - 2 * taylor["std_norm"] * taylor["corr"]
    )
    write_csv(taylor, wd.evaluation / "taylor.csv")
    pit = {f"pit_{i + 1}": v for i, v in enumerate(np.full(10, 0.1))}
    write_csv(
        pd.DataFrame([{"product": "bias_corrected_members", "against": "reference",
                       "experiment": "historical", "period": "2008-2014", "level": 0.9,
                       "n": 1000, "coverage": 0.86, "width": 0.05, "CRPS": 0.011, **pit}]),
        wd.evaluation / "calibration.csv",
    )
    map_products = ["CMIP6_DL", "ensemble_mean", *BASELINES]
    mae = np.stack(
        [
            (0.01 + 0.05 * i + 0.01 * rng.random(land.shape)) * landf
            for i in range(len(map_products))
        ]
    ).astype(np.float32)
    rmap = np.stack(
        [(0.9 - 0.3 * i - 0.1 * rng.random(land.shape)) * landf for i in range(len(map_products))]
    ).astype(np.float32)
    maps = xr.Dataset(
        {
            "mae": (
                ("product", "lat", "lon"),
                mae,
                {"units": "m3 m-3", "long_name": "mean absolute error"},
            ),
            "r": (
                ("product", "lat", "lon"),
                rmap,
                {"units": "1", "long_name": "Pearson correlation"},
            ),
        },
        coords={"product": map_products, "lat": lat, "lon": lon},
        attrs=provenance_attrs(
            "smcore evaluation maps (synthetic)",
            test_period=_years(cfg.periods.test),
            n_pixels=int(land.sum()),
            n_months=24,
        ),
    )
    write_netcdf(maps, wd.evaluation / "maps.nc")
    lon2, lat2 = np.meshgrid(lon, lat)
    region = np.where(lon2 < 100, np.where(lat2 > 36, 1, 4), np.where(lat2 > 38, 2, 3))
    region = np.where(land == 1, region, 0).astype(np.int8)
    regions = xr.Dataset(
        {
            "region": (
                ("lat", "lon"),
                region,
                {
                    "flag_values": np.arange(0, 5, dtype=np.int8),
                    "flag_meanings": " ".join(("outside_study_land", *REGIONS)),
                    "long_name": "climate region",
                    "units": "1",
                },
            )
        },
        coords={"lat": lat, "lon": lon},
        attrs=provenance_attrs("smcore climate regions (synthetic)"),
    )
    write_netcdf(regions, wd.evaluation / "regions.nc")
    test_months = hist[(hist.year >= cfg.periods.test[0]) & (hist.year <= cfg.periods.test[1])]
    series = np.stack(
        [
            np.stack(
                [
                    0.12
                    + 0.06 * r
                    + 0.03 * np.sin(2 * np.pi * np.arange(len(test_months)) / 12 + p)
                    + 0.005 * rng.standard_normal(len(test_months))
                    for p in range(3)
                ]
            )
            for r in range(len(REGIONS))
        ]
    ).astype(np.float32)
    regional = xr.Dataset(
        {
            "ssm": (("region", "product", "time"), series, {"units": "m3 m-3"}),
            "n_pixels": (
                ("region",),
                np.array([(region == k + 1).sum() for k in range(len(REGIONS))]),
                {"units": "1"},
            ),
        },
        coords={"region": list(REGIONS), "product": ["reference", "CMIP6_DL", "ensemble_mean"]},
        attrs=provenance_attrs("smcore regional mean series (synthetic)"),
    )
    regional = _time_attrs(regional, test_months)
    write_netcdf(regional, wd.evaluation / "regional_series.nc")
    write_json(
        {"statistics": {"train_only": True}, "ridge_lambda_counts": {}, "notes": []},
        wd.path("audit"),
    )

    # -- analysis ---------------------------------------------------------
    futures = list(cfg.future_experiments)
    trend = np.stack(
        [
            np.stack(
                [
                    (
                        0.02 * (1 + k) * np.sign(lat2 - 32)
                        + 0.01 * s * np.cos(lon2 / 8)
                        + 0.01 * rng.standard_normal(land.shape)
                    )
                    * landf
                    for s in range(len(SEASONS))
                ]
            )
            for k in range(len(futures))
        ]
    ).astype(np.float32)
    p_value = (np.abs(rng.standard_normal(trend.shape)) * 0.03 / (np.abs(trend) + 0.005)).clip(0, 1)
    # strong trends away from 32°N are significant over large areas, weak ones are not
    p_value = (p_value**3 * landf).astype(np.float32)
    significant = np.stack(
        [
            np.stack([benjamini_hochberg(p_value[k, s], FDR_ALPHA) for s in range(len(SEASONS))])
            for k in range(len(futures))
        ]
    )
    significant = np.where(np.isfinite(p_value), significant, np.nan).astype(np.float32)
    # the models' AR6 classes: no robust change west of 95°E, conflicting signals in a band at
    # 30°N east of it, robust elsewhere; -1 outside land
    robustness = np.where(lon2 < 95, 0, np.where(np.abs(lat2 - 30) < 2, 2, 1))
    robustness = np.broadcast_to(robustness, trend.shape)
    robustness = np.where(np.isfinite(trend), robustness, -1).astype(np.int8)
    share = np.where(np.isfinite(trend), np.where(robustness == 0, 0.4, 0.9), np.nan)
    trends = xr.Dataset(
        {
            "trend": (
                ("experiment", "season", "lat", "lon"),
                trend,
                {"units": "0.1 year-1", "long_name": "Theil-Sen trend of SSMI"},
            ),
            "p_value": (
                ("experiment", "season", "lat", "lon"),
                p_value,
                {"units": "1", "long_name": "Mann-Kendall p-value"},
            ),
            "significant": (
                ("experiment", "season", "lat", "lon"),
                significant,
                {
                    "long_name": "field significance of the SSMI trend",
                    "flag_values": np.array([0, 1], dtype=np.int8),
                    "flag_meanings": "not_significant significant",
                    "mann_kendall_variant": "hamed_rao",
                    "fdr_alpha": FDR_ALPHA,
                },
            ),
            "share_significant": (("experiment", "season", "lat", "lon"), share.astype(np.float32),
                                  {"units": "1", "long_name": "share of models significant"}),
            "share_agree": (("experiment", "season", "lat", "lon"), share.astype(np.float32),
                            {"units": "1", "long_name": "share of models agreeing"}),
            "robustness": (
                ("experiment", "season", "lat", "lon"),
                robustness,
                {
                    "long_name": "robustness of the SSMI trend across models",
                    "flag_values": np.array([0, 1, 2], dtype=np.int8),
                    "flag_meanings": "no_robust_change robust conflicting",
                },
            ),
        },
        coords={"experiment": futures, "season": list(SEASONS), "lat": lat, "lon": lon},
        attrs=provenance_attrs("smcore SSMI trends (synthetic)"),
    )
    write_netcdf(
        trends,
        wd.analysis / "ssmi_trends.nc",
        encoding={"significant": {"dtype": "int8", "_FillValue": np.int8(-1)},
                  "robustness": {"dtype": "int8", "_FillValue": np.int8(-1)}},
    )
    rates = []
    for k, exp in enumerate(futures):
        for region_name in ("north", "south"):
            for j, (y0, y1) in enumerate(cfg.periods.change):
                for ts in (*MONTHS, *SEASONS[1:], "annual"):
                    value = (
                        (k + 1)
                        * (j + 1)
                        * (1.5 if region_name == "north" else 0.7)
                        * np.sin(len(ts) + j)
                    )
                    rates.append(
                        {
                            "experiment": exp,
                            "region": region_name,
                            "period": f"{y0}-{y1}",
                            "timescale": ts,
                            "value": round(float(value), 3),
                            "model_p05": round(float(value) - 1.5, 3),
                            "model_p95": round(float(value) + 2.0, 3),
                            "n_models": 7,
                        }
                    )
    write_csv(pd.DataFrame(rates), wd.analysis / "change_rates.csv")
    # the Hawkins-Sutton shares: internal variability fading, the model and scenario parts growing
    years = np.arange(cfg.periods.future[0], cfg.periods.future[1] + 1)
    grow = (years - years[0] + 1) / years.size
    partition = []
    for k, region_name in enumerate(("north", "south", "arid", "humid")):
        internal, model, scenario = 1.0, (1 + k) * grow, grow**2
        total = internal + model + scenario
        partition.append(pd.DataFrame({
            "region": region_name, "year": years, "internal": internal * 1e-5,
            "model": model * 1e-5, "scenario": scenario * 1e-5, "total": total * 1e-5,
            "internal_fraction": internal / total, "model_fraction": model / total,
            "scenario_fraction": scenario / total, "n_models": 7, "n_scenarios": len(futures),
        }))
    write_csv(pd.concat(partition, ignore_index=True), wd.path("uncertainty_partition"))
    signif = significant == 1
    fractions = []
    for k, exp in enumerate(futures):
        for s, season in enumerate(SEASONS):
            n = int(np.isfinite(trend[k, s]).sum())
            fractions.append(
                {
                    "experiment": exp,
                    "season": season,
                    "drying": float((signif[k, s] & (trend[k, s] < 0)).sum() / n),
                    "wetting": float((signif[k, s] & (trend[k, s] > 0)).sum() / n),
                }
            )
    write_csv(pd.DataFrame(fractions), wd.analysis / "area_fractions.csv")
    return wd


def corrupt_compressed_chunk(
    path: str | Path, variable: str, point: tuple[int, ...] | None = None
) -> tuple[slice, ...]:
    """Damage the stored bytes of the zlib-compressed chunk of ``variable`` holding ``point``.

    The chunk's compressed bytes are found by compressing its values as HDF5 does (shuffle,
    then deflate at the variable's level: Python's zlib writes the same stream), and eight bytes
    in their middle are flipped. The header, the coordinates and every other chunk stay intact,
    so the file opens and other months and cells read as before; reading that chunk fails, as
    with a disk or transfer error. ``point`` (element indices, default the first element) must
    lie in a whole chunk, not in a partial one at the edge. Returns the chunk's slices.
    """
    import zlib

    import netCDF4

    path = Path(path)
    with netCDF4.Dataset(path) as nc:
        var = nc[variable]
        chunks, filters = var.chunking(), var.filters() or {}
        if chunks == "contiguous" or not filters.get("zlib"):
            raise ValueError(f"{path}: {variable} is not stored in compressed chunks")
        var.set_auto_maskandscale(False)
        point = point or (0,) * var.ndim
        where = tuple(
            slice(p // c * c, p // c * c + c) for p, c in zip(point, chunks, strict=True)
        )
        data = np.ascontiguousarray(var[where])
    if list(data.shape) != list(chunks):
        raise ValueError(f"{path}: the chunk at {point} is a partial edge chunk")
    raw = data.astype(data.dtype.newbyteorder("<")).tobytes()
    if filters.get("shuffle"):
        raw = np.frombuffer(raw, np.uint8).reshape(-1, data.dtype.itemsize).T.tobytes()
    stored = zlib.compress(raw, int(filters.get("complevel") or 4))
    flip_stored_bytes(path, stored, f"the chunk at {point} of {variable}")
    return where
