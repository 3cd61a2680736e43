"""Tensors for YNet from the prepared store: every historical month, scaled, with its splits.

:func:`load_training_data` reads the store, fits the scaling on the training split
(:mod:`smcore.train.normalization`, modes in :mod:`smcore.train.scaling`), takes the slow part
of the anomalies out with the forced split (:mod:`smcore.train.forced`), and returns
:class:`TrainingData`: whole (CPU) tensors the training loop indexes by month.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
import xarray as xr

from smcore.errors import InputError
from smcore.train.forced import INPUT_DIMS, anomaly_source, month_index
from smcore.train.normalization import Normalization, fit_normalization

if TYPE_CHECKING:  # the prepared store's readers are not needed to train on tensors
    from smcore.prep.store import PreparedData

__all__ = [
    "INPUT_DIMS",
    "TrainingData",
    "StaticFields",
    "load_static",
    "load_training_data",
    "month_index",
]


@dataclass
class StaticFields:
    """Fine-grid fields of the prepared store, as numpy arrays.

    ``land`` (H, W) bool; ``elevation`` (H, W) m; ``climatology`` (12, H, W) m3 m-3,
    NaN outside land; ``lat``/``lon`` (H,)/(W,) degrees; ``clat``/``clon`` coarse centres.
    """

    land: np.ndarray
    elevation: np.ndarray
    climatology: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    clat: np.ndarray
    clon: np.ndarray

    @property
    def scale(self) -> int:
        """Integer ratio between the fine and the coarse grid."""
        return len(self.lat) // len(self.clat)


def load_static(prepared: PreparedData) -> StaticFields:
    """Read the fine-grid static fields and check the grids nest exactly."""
    st = prepared.static
    land = np.asarray(st["land_mask"].values) == 1
    clim = np.asarray(st["climatology"].transpose("month", "lat", "lon").values, dtype=np.float32)
    if clim.shape[0] != 12:
        raise InputError(prepared.path, f"climatology has {clim.shape[0]} months, expected 12")
    fields_ = StaticFields(
        land=land,
        elevation=np.nan_to_num(np.asarray(st["elevation"].values, dtype=np.float32)),
        climatology=clim,
        lat=np.asarray(st["lat"].values),
        lon=np.asarray(st["lon"].values),
        clat=np.asarray(st["clat"].values),
        clon=np.asarray(st["clon"].values),
    )
    (nlat, nlon), (nclat, nclon) = land.shape, (len(fields_.clat), len(fields_.clon))
    if nclat == 0 or nclon == 0 or nlat % nclat or nlon % nclon or nlat // nclat != nlon // nclon:
        raise InputError(
            prepared.path,
            f"fine grid {nlat}x{nlon} is not an integer multiple of coarse grid {nclat}x{nclon}",
        )
    if not land.any():
        raise InputError(prepared.path, "land_mask has no land cell")
    return fields_


@dataclass
class TrainingData:
    """Every historical month as tensors, ready for YNet.

    ``x`` (T, C, h, w) normalised inputs; ``y`` (T, 1, H, W) normalised target, 0 outside land;
    ``month`` (T,) int64 calendar month 0–11; ``aux`` (12, A, H, W) auxiliary fields;
    ``land`` (1, 1, H, W) bool; ``splits`` maps train/val/test to int64 indices into T;
    ``weight`` (12, 1, H, W) per-month loss weights, or None for uniform weights over land.
    """

    x: torch.Tensor
    y: torch.Tensor
    month: torch.Tensor
    aux: torch.Tensor
    land: torch.Tensor
    splits: dict[str, torch.Tensor]
    norm: Normalization
    channels: list[str]
    time: np.ndarray
    static: StaticFields = field(repr=False)
    weight: torch.Tensor | None = None

    @property
    def nbytes(self) -> int:
        """Bytes held by the tensors."""
        tensors = [self.x, self.y, self.month, self.aux, self.land]
        if self.weight is not None:
            tensors.append(self.weight)
        return sum(t.numel() * t.element_size() for t in tensors)

    def to(self, device: torch.device | str) -> "TrainingData":
        """A copy whose tensors live on ``device``."""
        dev = torch.device(device)
        return TrainingData(
            x=self.x.to(dev),
            y=self.y.to(dev),
            month=self.month.to(dev),
            aux=self.aux.to(dev),
            land=self.land.to(dev),
            splits={k: v.to(dev) for k, v in self.splits.items()},
            norm=self.norm,
            channels=self.channels,
            time=self.time,
            static=self.static,
            weight=None if self.weight is None else self.weight.to(dev),
        )


def _historical_inputs(prepared: PreparedData, time: np.ndarray) -> xr.DataArray:
    da = prepared.inputs("historical").transpose(*INPUT_DIMS)
    if list(map(str, da["model"].values)) != prepared.channels:
        raise InputError(prepared.path, "historical inputs and root store disagree on the model order")
    if da.sizes["time"] != len(time) or not np.array_equal(
        np.asarray(da["time"].values, dtype="datetime64[M]"), np.asarray(time, dtype="datetime64[M]")
    ):
        raise InputError(prepared.path, "historical inputs do not cover the same months as the reference")
    return da


def load_training_data(
    prepared: PreparedData,
    *,
    input_norm: str = "anomaly",
    target_norm: str = "anomaly",
    forced_window: float = 0.0,
    forced_method: str = "ensemble_mean",
    continuation: bool = True,
    aux_fields: tuple[str, ...] | None = None,
    norm: Normalization | None = None,
) -> TrainingData:
    """Load every historical month of the store into (CPU) tensors, normalised with training stats.

    The keywords are those of :func:`~smcore.train.normalization.fit_normalization` (``train.*``
    of the configuration); ``norm`` reuses a fitted scaling (when resuming from a checkpoint)
    instead of fitting one.
    """
    static = load_static(prepared)
    time = np.asarray(prepared.static["time"].values)
    x_da = _historical_inputs(prepared, time)
    x = np.asarray(x_da.values, dtype=np.float32)
    y = np.asarray(prepared.static["reference"].transpose("time", "lat", "lon").values, dtype=np.float32)
    months = month_index(time)
    masks = {name: prepared.split_mask(name) for name in ("train", "val", "test")}
    for name in ("train", "val"):
        if not masks[name].any():
            raise InputError(prepared.path, f"the {name} split holds no month of the prepared data")
    if norm is None:
        norm = fit_normalization(
            prepared, static, x, y, time, masks["train"],
            input_norm=input_norm, target_norm=target_norm, forced_window=forced_window,
            forced_method=forced_method, continuation=continuation,
            **({} if aux_fields is None else {"aux_fields": tuple(aux_fields)}),
        )
    elif (n := len(norm.inputs.mean)) != x.shape[1]:
        raise InputError(prepared.path, f"scaling has {n} channels, store has {x.shape[1]}")
    source = anomaly_source(prepared, "historical", norm, own=x_da.copy(data=x))
    slow = None if source is None else source.slow(time)
    forced = None if slow is None else norm.forced_on_fine(slow, static.land.shape)
    xn = norm.normalize_x(x, months, slow)
    yn = norm.normalize_y(y, static.climatology, months, forced)
    del slow, forced
    yn = np.where(static.land[None], np.nan_to_num(yn), 0.0).astype(np.float32)
    weights = norm.loss_weights(static.land)
    return TrainingData(
        x=torch.from_numpy(xn),
        y=torch.from_numpy(yn[:, None]),
        month=torch.from_numpy(months),
        aux=torch.from_numpy(norm.aux_fields(static)),
        land=torch.from_numpy(static.land[None, None].copy()),
        splits={k: torch.from_numpy(np.flatnonzero(v).astype(np.int64)) for k, v in masks.items()},
        norm=norm,
        channels=prepared.channels,
        time=time,
        static=static,
        weight=None if weights is None else torch.from_numpy(weights),
    )
