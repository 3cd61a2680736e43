"""Batched, streaming YNet inference → ``WD/product/CMIP6_DL_<experiment>.nc``.

Months are read from the prepared store a block at a time, run through the network in
mini-batches and appended to a NetCDF-4 file being written beside the target
(temp file, then rename), so memory stays bounded whatever the number of months.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
import torch

from smcore.config import Config
from smcore.errors import InputError
from smcore.io.atomic import atomic_path
from smcore.io.netcdf import CF_COORD_ATTRS, provenance_attrs
from smcore.models.ynet import YNet
from smcore.prep.store import open_prepared
from smcore.progress import StepBar
from smcore.train.checkpoint import (
    ensemble_checkpoints,
    file_sha256,
    load_checkpoint,
    model_from_checkpoint,
)
from smcore.train.data import INPUT_DIMS, StaticFields, load_static, month_index
from smcore.train.forced import anomaly_source
from smcore.train.losses import LOG_VAR_RANGE
from smcore.train.normalization import Normalization
from smcore.train.precision import ProbeShape
from smcore.train.runtime import Runtime, select_runtime
from smcore.workdir import WorkDir

__all__ = [
    "PRODUCT_ATTRS", "SD_ATTRS", "SPREAD_ATTRS", "SD_SCALE", "PRODUCT_CHUNKS", "product_chunks",
    "TIME_UNITS", "predict_fields", "predict_months", "combine_members", "ensemble_sha256",
    "month_bounds", "predict",
]

TIME_UNITS = "days since 1850-01-01 00:00:00"
PRODUCT_ATTRS = {
    "standard_name": "volume_fraction_of_condensed_water_in_soil",
    "long_name": "surface soil moisture merged from CMIP6 models and downscaled by YNet (CMIP6_DL)",
    "units": "m3 m-3",
    "cell_methods": "time: mean",
}
SD_SCALE = 1e-5
"""Packing of ``ssm_sd``: int16 counts of 1e-5 m3 m-3 (0 … 0.32767 m3 m-3), a sixth of the
smallest spread the network predicts on the demo, at half the bytes of float32."""
SD_ATTRS = {
    "standard_name": "volume_fraction_of_condensed_water_in_soil standard_error",
    "long_name": "standard deviation of CMIP6_DL's Gaussian predictive distribution, of the "
    "members' mixture for a deep ensemble (the 5-95 % interval is ssm -/+ 1.645 ssm_sd)",
    "units": "m3 m-3",
    "cell_methods": "time: mean",
}
SPREAD_ATTRS = {
    "long_name": "standard deviation of the deep ensemble members' values of ssm "
    "(the networks' disagreement, one part of ssm_sd)",
    "units": "m3 m-3",
    "cell_methods": "time: mean",
}
PACKED = ("ssm_sd", "ssm_members_spread")
"""Product variables stored as int16 counts of :data:`SD_SCALE`."""


@torch.inference_mode()
def predict_fields(
    model: YNet,
    norm: Normalization,
    static: StaticFields,
    x: np.ndarray,
    months: np.ndarray,
    rt: Runtime,
    batch_size: int = 16,
    slow: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The product's fields for coarse inputs ``x`` (T, C, h, w) m3 m-3, each (T, H, W) float32.

    ``ssm``: soil moisture (m3 m-3), clipped at 0 (a volume fraction cannot be negative);
    with a Gaussian head (``model.config.outputs == 2``) also ``ssm_sd``: the standard
    deviation of the predictive distribution around it (m3 m-3), the network's log-variance
    clamped to :data:`smcore.train.losses.LOG_VAR_RANGE` and scaled like the value.
    ``months`` are calendar month indices 0–11 of the T months; ``slow`` (T, C, h, w) the
    slow anomalies of the inputs when the scaling splits them off (:mod:`smcore.train.forced`).
    NaN outside land.
    """
    xn = torch.from_numpy(norm.normalize_x(x, months, slow))
    aux_all = torch.from_numpy(norm.aux_fields(static))
    k = model.config.outputs
    out = np.empty((len(months), k) + static.land.shape, dtype=np.float32)
    model.eval()
    for start in range(0, len(months), batch_size):
        sl = slice(start, start + batch_size)
        xb = rt.memory_format(xn[sl].to(rt.device))
        ab = rt.memory_format(aux_all[torch.from_numpy(months[sl])].to(rt.device))
        with rt.autocast():
            pred = model(xb, ab)
        out[sl] = pred.float().cpu().numpy()
    forced = None if slow is None else norm.forced_on_fine(slow, static.land.shape)
    sm = np.maximum(norm.denormalize_y(out[:, 0], static.climatology, months, forced), 0.0)
    land = static.land[None]
    fields = {"ssm": np.where(land, sm, np.nan).astype(np.float32)}
    if k == 2:
        log_var = np.clip(out[:, 1], *LOG_VAR_RANGE)
        sd = np.exp(0.5 * log_var) * norm.target_scale(months)
        fields["ssm_sd"] = np.where(land, sd, np.nan).astype(np.float32)
    return fields


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
    """Soil moisture (T, H, W) m3 m-3 for coarse inputs ``x`` (T, C, h, w) m3 m-3: the
    ``ssm`` field of :func:`predict_fields`."""
    return predict_fields(model, norm, static, x, months, rt, batch_size, slow)["ssm"]


def combine_members(members: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The product's fields of a deep ensemble from its members' :func:`predict_fields`.

    Each member's fields are (T, H, W) float32 m3 m-3. ``ssm`` is the members' mean. With
    Gaussian heads, ``ssm_sd`` is the standard deviation of the members' equally weighted
    mixture, ``sqrt(mean(sd_k²) + var_k(ssm_k))`` (Lakshminarayanan et al. 2017). With more than
    one member, ``ssm_members_spread`` is the members' standard deviation ``sqrt(var_k(ssm_k))``
    (population, ddof = 0). One member is returned as it is.
    """
    if not members:
        raise ValueError("no ensemble members")
    if len(members) == 1:
        return dict(members[0])
    names = {tuple(sorted(m)) for m in members}
    if len(names) != 1:
        raise ValueError(f"ensemble members predict different fields: {sorted(names)}")
    values = np.stack([m["ssm"] for m in members]).astype(np.float64)
    mean = values.mean(axis=0)
    var = values.var(axis=0)
    out = {"ssm": mean.astype(np.float32), "ssm_members_spread": np.sqrt(var).astype(np.float32)}
    if "ssm_sd" in members[0]:
        within = np.mean([np.square(m["ssm_sd"].astype(np.float64)) for m in members], axis=0)
        out["ssm_sd"] = np.sqrt(within + var).astype(np.float32)
    return out


def ensemble_sha256(shas: Sequence[str]) -> str:
    """The ``checkpoint_sha256`` of a product: the checkpoint's SHA-256 for one network, for a
    deep ensemble the SHA-256 of its members' hex digests joined by commas, in member order."""
    if len(shas) == 1:
        return shas[0]
    return hashlib.sha256(",".join(shas).encode()).hexdigest()


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


PRODUCT_CHUNKS = (24, 24, 44)
"""Chunk of ``ssm`` in a product: 24 months × 24 × 44 cells (6° × 11° at 0.25°), about 100 kB.

Balanced between the dashboard's two reads: a month map decompresses 24 maps' worth of
chunks, a cell's series 1 / (24 × 44) of the record; measured on the default demo's products
(docs/dashboard.md): about 10 ms each. Two years per chunk also match the blocks
:func:`predict` writes (120 months), so no chunk is written twice.
"""


def product_chunks(ntime: int, nlat: int, nlon: int) -> tuple[int, int, int]:
    """:data:`PRODUCT_CHUNKS` clipped to ``ntime`` months on an ``nlat`` × ``nlon`` grid."""
    t, y, x = PRODUCT_CHUNKS
    return max(1, min(t, ntime)), max(1, min(y, nlat)), max(1, min(x, nlon))


def _create_product(
    nc: netCDF4.Dataset, time: np.ndarray, static: StaticFields, attrs: dict[str, str], time_chunk: int,
    fields: Sequence[str] = ("ssm",),
) -> dict[str, netCDF4.Variable]:
    """The product's dimensions, coordinates and variables ``fields`` by name: ``ssm``, and
    ``ssm_sd``/``ssm_members_spread`` (:data:`PACKED` as int16 counts of :data:`SD_SCALE`)
    when listed."""
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
        chunksizes=product_chunks(min(time_chunk, len(time)), nlat, nlon),
        fill_value=np.float32(np.nan),
    )
    var.setncatts(PRODUCT_ATTRS)
    out = {"ssm": var}
    ancillary = [name for name in PACKED if name in fields]
    if ancillary:
        var.setncattr("ancillary_variables", " ".join(ancillary))
    for name in ancillary:
        packed = nc.createVariable(
            name, "i2", ("time", "lat", "lon"), zlib=True, complevel=4, shuffle=True,
            chunksizes=product_chunks(min(time_chunk, len(time)), nlat, nlon),
            fill_value=np.int16(-32768),
        )
        packed.setncatts({**(SD_ATTRS if name == "ssm_sd" else SPREAD_ATTRS),
                          "scale_factor": np.float32(SD_SCALE), "add_offset": np.float32(0.0),
                          "valid_min": np.int16(0), "valid_max": np.int16(32767)})
        out[name] = packed
    nc.setncatts(attrs)
    return out


def predict(
    cfg: Config,
    workdir: str | Path | WorkDir,
    *,
    checkpoint: str | Path | None = None,
    experiments: Sequence[str] | None = None,
    batch_size: int | None = None,
    block_months: int = 120,
    progress: bool = True,
    report: Callable[[str], None] = print,
) -> list[Path]:
    """Write ``product/CMIP6_DL_<experiment>.nc`` for each experiment; returns the paths.

    ``experiments`` selects some of the prepared experiments (default: all of them,
    :meth:`~smcore.workdir.WorkDir.experiments`).

    ``checkpoint`` defaults to the trained networks: ``training/best.pt`` and, after
    ``smcore train --members K``, every member's
    (:func:`~smcore.train.checkpoint.ensemble_checkpoints`), whose fields
    :func:`combine_members` merges. The device and precision follow
    ``cfg.train.device``/``cfg.train.amp``; ``block_months`` months are held in memory at a time.
    ``report`` takes one-line messages (the precision and micro-batch, where a CPU had to
    measure them: :func:`smcore.train.runtime.select_runtime`); progress goes to the bars.
    """
    wd = workdir if isinstance(workdir, WorkDir) else WorkDir(workdir)
    wd.sweep()  # temporaries of a killed earlier run
    prepared = open_prepared(wd)
    static = load_static(prepared)
    first_path = Path(checkpoint) if checkpoint is not None else wd.checkpoint_best
    nets = [_member(first_path, prepared, static)]
    ckpt_paths = [first_path] if checkpoint is not None else ensemble_checkpoints(wd, nets[0][0])
    nets += [_member(p, prepared, static) for p in ckpt_paths[1:]]
    state, model, norm = nets[0]
    channels = [str(c) for c in state["channels"]]
    if len({n[1].config.outputs for n in nets}) != 1:
        raise InputError(ckpt_paths[-1], "ensemble members have different output heads: retrain them")
    # the shape of training: a CPU finds the precision and micro-batch measured then in the cache
    shape = ProbeShape.of(model.config, (len(static.clat), len(static.clon)))
    rt = select_runtime(cfg.train.device, cfg.train.amp, micro_batch=cfg.train.micro_batch,
                        shape=shape).inference()
    if rt.choice is not None and rt.choice.source == "measured":
        report(rt.choice.describe())
    if len(nets) > 1:
        report(f"predicting with a deep ensemble of {len(nets)} networks")
    nets = [(st, rt.place(net), nm) for st, net, nm in nets]
    bs = batch_size or rt.pass_size(max(cfg.train.batch_size, 8))
    block = max(1, int(block_months))
    shas = [file_sha256(p) for p in ckpt_paths]
    fields_written = ["ssm"] + (["ssm_sd"] if model.config.outputs == 2 else []) + (
        ["ssm_members_spread"] if len(nets) > 1 else []
    )
    paths = []
    for exp in wd.experiments(experiments):
        da = prepared.inputs(exp).transpose(*INPUT_DIMS)
        if [str(m) for m in da["model"].values] != channels:
            raise InputError(prepared.path, f"inputs of {exp} are not in the checkpoint's model order")
        time = np.asarray(da["time"].values)
        source = anomaly_source(prepared, exp, norm, own=da)
        attrs: dict[str, Any] = provenance_attrs(
            f"CMIP6_DL merged and downscaled surface soil moisture, {exp}",
            config_json=cfg.to_json(),
            models_used=",".join(channels),
            checkpoint_sha256=ensemble_sha256(shas),
            checkpoint_epoch=int(state["epoch"]),
            ensemble_members=len(nets),
            **({"member_checkpoints_sha256": ",".join(shas)} if len(nets) > 1 else {}),
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
                variables = _create_product(nc, time, static, attrs, time_chunk=PRODUCT_CHUNKS[0],
                                            fields=fields_written)
                bar = StepBar(total=len(time), desc=f"predict {exp}", unit="month",
                              disable=not progress, dynamic_ncols=True)
                with bar:
                    for start in range(0, len(time), block):
                        stop = min(start + block, len(time))
                        x = np.asarray(da.isel(time=slice(start, stop)).values, dtype=np.float32)
                        months = month_index(time[start:stop])
                        slow = None if source is None else source.slow(time[start:stop])
                        fields = combine_members([
                            predict_fields(net, nm, static, x, months, rt, bs, slow)
                            for _, net, nm in nets
                        ])
                        for name, values in fields.items():
                            if name in PACKED:  # NaN → fill, beyond int16 clipped
                                ok = np.isfinite(values)
                                values = np.ma.array(
                                    np.where(ok, np.minimum(values, 32767 * SD_SCALE), 0.0), mask=~ok
                                )
                            variables[name][start:stop] = values
                        bar.update(stop - start)
        paths.append(path)
    return paths


def _member(
    path: Path, prepared: Any, static: StaticFields
) -> tuple[dict[str, Any], YNet, Normalization]:
    """One network of the ensemble from ``path``: its checkpoint, YNet (CPU, eval) and scaling,
    checked against the prepared store (models, their order, prepared data, scale)."""
    state = load_checkpoint(path)
    model = model_from_checkpoint(state, path)
    channels = [str(c) for c in state["channels"]]
    if channels != prepared.channels:
        raise InputError(
            path, f"checkpoint was trained on models {channels} but the prepared store holds {prepared.channels}",
        )
    fp_ckpt, fp_store = state.get("prepared_fingerprint") or "", prepared.manifest.get("fingerprint") or ""
    if fp_ckpt and fp_store and fp_ckpt != fp_store:
        raise InputError(path, "checkpoint was trained on other prepared data: rerun `smcore train`")
    if static.scale != model.config.scale:
        raise InputError(path, f"checkpoint downscales x{model.config.scale}, the store needs x{static.scale}")
    return state, model, Normalization.from_state(state["normalization"])
