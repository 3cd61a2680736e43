"""Tiny synthetic prepared stores for the YNet training and prediction tests.

The synthetic "reference" is a smooth seasonal climatology plus a smooth anomaly
field; each "model" sees the coarse block mean of the truth with its own bias, gain
and noise, so there is something learnable but nothing trivially exact.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from smcore.config import Config, GridSpec
from smcore.prep.store import write_prepared
from smcore.workdir import WorkDir
from tests.factories.config import study_config


def tiny_config(
    *,
    nclat: int = 4,
    nclon: int = 6,
    scale: int = 2,
    channels: int = 3,
    train: tuple[int, int] = (2000, 2003),
    val: tuple[int, int] = (2004, 2004),
    test: tuple[int, int] = (2005, 2005),
    future: tuple[int, int] = (2006, 2007),
    experiments: tuple[str, ...] = ("historical", "ssp245"),
    **train_kwargs: object,
) -> Config:
    """A Config for a tiny grid (fine grid ``nclat*scale × nclon*scale``) and a small YNet."""
    tk: dict[str, object] = dict(
        epochs=2, batch_size=4, lr=1e-3, device="cpu", seed=7, features=8, depth=3, dropout=0.0,
        plateau_patience=2, early_stopping=5, amp="off",
    )
    tk.update(train_kwargs)
    return study_config(
        GridSpec(lat0=30.0, lon0=100.0, res=0.5, nlat=nclat * scale, nlon=nclon * scale),
        scale=scale,
        years=dict(train=train, val=val, test=test, future=future, baseline=train,
                   change=((future[0], future[1]),)),
        models=channels,
        experiments=experiments,
        train=tk,
    )


def _months(y0: int, y1: int) -> pd.DatetimeIndex:
    return pd.date_range(f"{y0}-01-01", f"{y1}-12-01", freq="MS")


def _truth(time: pd.DatetimeIndex, lat: np.ndarray, lon: np.ndarray, rng: np.random.Generator,
           trend: float = 0.0) -> np.ndarray:
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    base = 0.25 + 0.08 * np.sin(np.radians(la * 6)) * np.cos(np.radians(lo * 4))
    m = np.asarray(time.month)[:, None, None]
    season = 0.05 * np.sin(2 * np.pi * (m - 3) / 12) * (1 + 0.5 * np.cos(np.radians(lo * 3)))
    years = np.asarray(time.year - time.year[0], dtype=float)[:, None, None]
    amp = rng.normal(0.0, 0.03, size=(len(time), 1, 1))
    pattern = np.sin(np.radians(la * 9 + years * 17)) * np.cos(np.radians(lo * 7))
    return (base + season + amp * pattern + trend * years).astype(np.float32)


def _coarse(fine: np.ndarray, scale: int) -> np.ndarray:
    t, h, w = fine.shape
    return fine.reshape(t, h // scale, scale, w // scale, scale).mean(axis=(2, 4))


def make_prepared(root: str | Path, cfg: Config | None = None, *, seed: int = 0) -> tuple[WorkDir, Config]:
    """Write a prepared store for ``cfg`` (default :func:`tiny_config`) under ``root``."""
    cfg = cfg or tiny_config()
    rng = np.random.default_rng(seed)
    wd = WorkDir(root)
    fine, coarse = cfg.target, cfg.coarse
    hist = _months(cfg.periods.historical[0], cfg.periods.historical[1])
    truth = _truth(hist, fine.lat, fine.lon, rng)
    land = np.ones(fine.shape, dtype=np.int8)
    land[:, : max(1, fine.nlon // 4)] = 0  # a strip of "ocean" on the west
    land[0, -1] = 0
    reference = np.where(land[None] == 1, truth, np.nan).astype(np.float32)
    tr = (hist.year >= cfg.periods.train[0]) & (hist.year <= cfg.periods.train[1])
    clim = np.stack([reference[tr & (hist.month == m)].mean(axis=0) for m in range(1, 13)]).astype(np.float32)
    n = len(cfg.models)
    bias = rng.normal(0, 0.03, n)
    gain = rng.uniform(0.7, 1.3, n)

    def models(values: np.ndarray) -> np.ndarray:
        c = _coarse(values, cfg.scale)
        out = np.stack(
            [gain[i] * c + bias[i] + rng.normal(0, 0.01, c.shape) for i in range(n)], axis=1
        )
        return out.astype(np.float32)

    x_hist = models(truth)
    inputs = {}
    coords_c = {"model": [m.source_id for m in cfg.models], "clat": coarse.lat, "clon": coarse.lon}
    for exp in cfg.experiments:
        if exp == "historical":
            t, x = hist, x_hist
        else:
            t = _months(*cfg.periods.future)
            x = models(_truth(t, fine.lat, fine.lon, rng, trend=-0.002))
        inputs[exp] = xr.DataArray(x, dims=("time", "model", "clat", "clon"), coords={"time": t, **coords_c},
                                   attrs={"units": "m3 m-3"})
    la, lo = np.meshgrid(fine.lat, fine.lon, indexing="ij")
    elevation = np.where(land == 1, 500 + 40 * (lo - lo.min()) + 10 * la, 0).astype(np.float32)
    ref_tr = reference[tr][:, land == 1]
    static = xr.Dataset(
        {
            "reference": (("time", "lat", "lon"), reference, {"units": "m3 m-3"}),
            "land_mask": (("lat", "lon"), land),
            "elevation": (("lat", "lon"), elevation, {"units": "m"}),
            "climatology": (("month", "lat", "lon"), clim, {"units": "m3 m-3"}),
            "x_mean": (("model",), x_hist[tr].mean(axis=(0, 2, 3)).astype(np.float32)),
            "x_std": (("model",), x_hist[tr].std(axis=(0, 2, 3)).astype(np.float32)),
            "y_mean": ((), np.float32(ref_tr.mean())),
            "y_std": ((), np.float32(ref_tr.std())),
        },
        coords={
            "time": hist, "lat": fine.lat, "lon": fine.lon, "month": np.arange(1, 13), **coords_c,
        },
        attrs={
            "train": "%d-%d" % cfg.periods.train,
            "val": "%d-%d" % cfg.periods.val,
            "test": "%d-%d" % cfg.periods.test,
            "channels": ",".join(m.source_id for m in cfg.models),
        },
    )
    manifest = {
        "smcore_version": "test",
        "config": cfg.to_dict(),
        "channels": [m.source_id for m in cfg.models],
        "members": {m.source_id: m.member_id for m in cfg.models},
        "excluded": {},
        "fingerprint": f"synthetic-{seed}",
    }
    write_prepared(wd, static, inputs, manifest)
    return wd, cfg
