"""Batched, streaming YNet inference → ``WD/product/CMIP6_DL_<experiment>.nc``.

Months are read from the prepared store a block at a time, run through the network in
mini-batches and appended to a NetCDF-4 file being written beside the target
(temp file, then rename), so memory stays bounded whatever the number of months.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import netCDF4
import numpy as np
import torch
from tqdm.auto import tqdm

from smcore.config import Config
from smcore.errors import InputError
from smcore.io.atomic import atomic_path
from smcore.io.netcdf import CF_COORD_ATTRS, provenance_attrs
from smcore.models.ynet import YNet
from smcore.prep.store import PreparedData, open_prepared
from smcore.train.checkpoint import file_sha256, load_checkpoint, model_from_checkpoint
from smcore.train.data import (
    INPUT_DIMS,
    AnomalySource,
    Normalization,
    StaticFields,
    ensemble_on_fine,
    load_static,
    month_index,
    slow_series,
)
from smcore.train.runtime import Runtime, select_runtime
from smcore.workdir import WorkDir

__all__ = ["PRODUCT_ATTRS", "TIME_UNITS", "AnomalySource", "predict_months", "month_bounds", "predict"]

TIME_UNITS = "days since 1850-01-01 00:00:00"
PRODUCT_ATTRS = {
    "standard_name": "volume_fraction_of_condensed_water_in_soil",
    "long_name": "surface soil moisture merged from CMIP6 models and downscaled by YNet (CMIP6_DL)",
    "units": "m3 m-3",
    "cell_methods": "time: mean",
}


@torch.no_grad()
def predict_months(
    model: YNet,
    norm: Normalization,
    static: StaticFields,
    x: np.ndarray,
    months: np.ndarray,
    rt: Runtime,
    batch_size: int = 16,
    slow: np.ndarray | None = None,
) -> np.ndarray:
    """Soil moisture (T, H, W) m3 m-3 for coarse inputs ``x`` (T, C, h, w) m3 m-3.

    ``months`` are calendar month indices 0–11 of the T months; ``slow`` (T, C, h, w) the
    slow anomalies of the inputs when the scaling splits them off (:mod:`smcore.train.forced`).
    Values are NaN outside land and clipped at 0 (a volume fraction cannot be negative).
    """
    xn = torch.from_numpy(norm.normalize_x(x, months, slow))
    aux_all = torch.from_numpy(norm.aux_fields(static))
    out = np.empty((len(months),) + static.land.shape, dtype=np.float32)
    model.eval()
    for start in range(0, len(months), batch_size):
        sl = slice(start, start + batch_size)
        xb = rt.memory_format(xn[sl].to(rt.device))
        ab = rt.memory_format(aux_all[torch.from_numpy(months[sl])].to(rt.device))
        with rt.autocast():
            pred = model(xb, ab)
        out[sl] = pred.float()[:, 0].cpu().numpy()
    forced = None if slow is None else ensemble_on_fine(slow, static.land.shape)
    sm = norm.denormalize_y(out, static.climatology, months, forced)
    sm = np.maximum(sm, 0.0)
    return np.where(static.land[None], sm, np.nan).astype(np.float32)


def month_bounds(time: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mid-month times (T,) and bounds (T, 2) in :data:`TIME_UNITS`, standard calendar."""
    start = np.asarray(time).astype("datetime64[M]")
    edges = np.stack([start, start + np.timedelta64(1, "M")], axis=-1).astype("datetime64[s]")
    days = (edges - np.datetime64("1850-01-01T00:00:00", "s")) / np.timedelta64(1, "D")
    return days.mean(axis=-1), days


def _bounds(centres: np.ndarray) -> np.ndarray:
    """Cell edges (n, 2) of a regular axis of cell centres."""
    step = float(centres[1] - centres[0]) if len(centres) > 1 else 1.0
    return np.stack([centres - step / 2, centres + step / 2], axis=-1)


def _create_product(
    nc: netCDF4.Dataset, time: np.ndarray, static: StaticFields, attrs: dict[str, str], time_chunk: int
) -> netCDF4.Variable:
    nlat, nlon = static.land.shape
    nc.createDimension("time", len(time))
    nc.createDimension("lat", nlat)
    nc.createDimension("lon", nlon)
    nc.createDimension("bnds", 2)
    mid, bnds = month_bounds(time)
    tv = nc.createVariable("time", "f8", ("time",))
    tv.setncatts({**CF_COORD_ATTRS["time"], "units": TIME_UNITS, "calendar": "standard", "bounds": "time_bnds"})
    tv[:] = mid
    nc.createVariable("time_bnds", "f8", ("time", "bnds"))[:] = bnds
    for name, values in (("lat", static.lat), ("lon", static.lon)):
        v = nc.createVariable(name, "f8", (name,))
        v.setncatts({**CF_COORD_ATTRS[name], "bounds": f"{name}_bnds"})
        v[:] = values
        nc.createVariable(f"{name}_bnds", "f8", (name, "bnds"))[:] = _bounds(np.asarray(values, dtype=float))
    var = nc.createVariable(
        "ssm", "f4", ("time", "lat", "lon"), zlib=True, complevel=4, shuffle=True,
        chunksizes=(max(1, min(time_chunk, len(time))), nlat, nlon), fill_value=np.float32(np.nan),
    )
    var.setncatts(PRODUCT_ATTRS)
    nc.setncatts(attrs)
    return var


def _experiments(cfg: Config, prepared: PreparedData, wanted: Sequence[str] | None) -> list[str]:
    if wanted is None:
        exps = [e for e in cfg.experiments if e in prepared.experiments]
    else:
        exps = list(wanted)
    if not exps:
        raise InputError(prepared.path, "none of the configured experiments was prepared")
    return exps


def predict(
    cfg: Config,
    workdir: str | Path | WorkDir,
    *,
    checkpoint: str | Path | None = None,
    experiments: Sequence[str] | None = None,
    batch_size: int | None = None,
    block_months: int = 120,
    progress: bool = True,
) -> list[Path]:
    """Write ``product/CMIP6_DL_<experiment>.nc`` for each experiment; returns the paths.

    ``checkpoint`` defaults to ``training/best.pt``. The device and precision follow
    ``cfg.train.device``/``cfg.train.amp``; ``block_months`` months are held in memory at a time.
    """
    wd = workdir if isinstance(workdir, WorkDir) else WorkDir(workdir)
    prepared = open_prepared(wd)
    ckpt_path = Path(checkpoint) if checkpoint is not None else wd.checkpoint_best
    state = load_checkpoint(ckpt_path)
    model = model_from_checkpoint(state, ckpt_path)
    norm = Normalization.from_state(state["normalization"])
    channels = [str(c) for c in state["channels"]]
    if channels != prepared.channels:
        raise InputError(
            ckpt_path,
            f"checkpoint was trained on models {channels} but the prepared store holds {prepared.channels}",
        )
    fp_ckpt, fp_store = state.get("prepared_fingerprint") or "", prepared.manifest.get("fingerprint") or ""
    if fp_ckpt and fp_store and fp_ckpt != fp_store:
        raise InputError(ckpt_path, "checkpoint was trained on other prepared data: rerun `smcore train`")
    static = load_static(prepared)
    if static.scale != model.config.scale:
        raise InputError(ckpt_path, f"checkpoint downscales x{model.config.scale}, the store needs x{static.scale}")
    rt = select_runtime(cfg.train.device, cfg.train.amp, micro_batch=cfg.train.micro_batch)
    model = rt.place(model)
    bs = batch_size or rt.pass_size(max(cfg.train.batch_size, 8))
    block = max(1, int(block_months))
    sha = file_sha256(ckpt_path)
    paths = []
    for exp in _experiments(cfg, prepared, experiments):
        da = prepared.inputs(exp).transpose(*INPUT_DIMS)
        if [str(m) for m in da["model"].values] != channels:
            raise InputError(prepared.path, f"inputs of {exp} are not in the checkpoint's model order")
        time = np.asarray(da["time"].values)
        source = None
        if norm.splits_forced:
            source = AnomalySource(slow_series(prepared, exp, norm, own=da), norm)
        attrs: dict[str, Any] = provenance_attrs(
            f"CMIP6_DL merged and downscaled surface soil moisture, {exp}",
            config_json=cfg.to_json(),
            models_used=",".join(channels),
            checkpoint_sha256=sha,
            checkpoint_epoch=int(state["epoch"]),
            experiment_id=exp,
            product="CMIP6_DL",
            comment=(
                "YNet (Liu et al. 2020) fusion of the listed CMIP6 models, downscaled "
                f"x{model.config.scale} to the reference grid; NaN outside the study land"
                + (
                    f"; slow anomalies (per calendar month, {norm.forced_window:g}-year local-linear fit, "
                    "ensemble mean) "
                    "added to the training climatology, the network supplying the monthly variability"
                    if norm.splits_forced else ""
                )
            ),
        )
        path = wd.product(exp)
        with atomic_path(path) as tmp:
            with netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
                var = _create_product(nc, time, static, attrs, time_chunk=12)
                bar = tqdm(total=len(time), desc=f"predict {exp}", unit="month", disable=not progress,
                           dynamic_ncols=True)
                with bar:
                    for start in range(0, len(time), block):
                        stop = min(start + block, len(time))
                        x = np.asarray(da.isel(time=slice(start, stop)).values, dtype=np.float32)
                        months = month_index(time[start:stop])
                        slow = None if source is None else source.slow(time[start:stop])
                        var[start:stop] = predict_months(model, norm, static, x, months, rt, bs, slow)
                        bar.update(stop - start)
        paths.append(path)
    return paths
