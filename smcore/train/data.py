"""Tensors for YNet from the prepared store: normalisation, auxiliary fields, splits.

Every statistic is computed from the **training split only** (validation and test
months never leak into the scaling). Two normalisations exist for each side:

- inputs (``input_norm``):
  ``"standard"`` — ``(x - x_mean[c]) / x_std[c]`` with the store's per-model training stats;
  ``"anomaly"`` — ``(x - x_clim[month, c, i, j]) / s[c]``: each model's departure from its own
  training-period monthly climatology at each coarse cell, ``s[c]`` the std of that departure;
  ``"local"`` — the same departure divided by its own std at each calendar month and cell,
  ``x_sd[month, c, i, j]`` (a standardised anomaly).
- target (``target_norm``):
  ``"standard"`` — ``(y - y_mean) / y_std``;
  ``"anomaly"`` — ``(y - clim[month]) / s_y``, the departure from the training-period monthly
  climatology of the reference (which is also an auxiliary field), ``s_y`` its std over land;
  ``"local"`` — that departure divided by its std at each calendar month and pixel,
  ``y_sd[month, i, j]``. The loss is then weighted by ``(y_sd / s_y)²`` so that it stays the
  mean squared error in m3 m-3 (divided by ``s_y²``), comparable across modes.

The default is ``"anomaly"`` for both: the network starts from the training climatology
(output 0) and learns departures from it, which is what the models can inform. ``"local"``
targets the fact that shared convolution weights cannot follow anomaly amplitudes that vary
from place to place; on the full demo (5 epochs) it changed the test MAE by < 1 % (0.01269
vs 0.01277 m3 m-3) with a slightly worse validation loss, so it stays an option.
``"standard"`` is the plain scaling of the reference code.

With ``forced_window`` > 0 (``train.forced_window_years``) the slow part of the model
anomalies is taken out of the inputs and its ensemble mean added to the target's offset
(:mod:`smcore.train.forced`): the network then sees and predicts the monthly variability only.

The auxiliary fields (A = 5, fine grid) are, per calendar month: elevation standardised over
land, the target climatology of that month standardised like the target, the land mask, and
latitude and longitude mapped onto -1 … 1 across the domain (0 outside land). The paper's
three fields say what a place is like; the coordinates also say where it is, so that the
network can weight the models by region, as a per-pixel regression does (on the full demo
they lowered the test MAE; see docs/evaluation.md). Checkpoints store their list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import xarray as xr

from smcore.errors import ConfigError, InputError
from smcore.train.forced import slow_anomalies, window_margin

if TYPE_CHECKING:  # the prepared store's readers are not needed to train on tensors
    from smcore.prep.store import PreparedData

__all__ = [
    "NORM_MODES",
    "AUX_FIELDS",
    "forced_split_problem",
    "LEGACY_AUX_FIELDS",
    "Normalization",
    "TrainingData",
    "StaticFields",
    "load_static",
    "fit_normalization",
    "ensemble_on_fine",
    "historical_slow",
    "scenario_continuation",
    "slow_series",
    "AnomalySource",
    "load_training_data",
    "month_index",
]

NORM_MODES = ("standard", "anomaly", "local")
INPUT_DIMS = ("time", "model", "clat", "clon")
AUX_FIELDS = ("elevation", "target_climatology", "land_mask", "latitude", "longitude")
LEGACY_AUX_FIELDS = AUX_FIELDS[:3]
"""The auxiliary fields of checkpoints written before latitude/longitude were added."""


def forced_split_problem(forced_window: float, input_norm: str, target_norm: str) -> str | None:
    """Why the forced/weather split cannot run with these scalings, or None when it can."""
    if forced_window > 0 and "standard" in (input_norm, target_norm):
        return (
            "train.forced_window_years > 0 needs input_norm and target_norm 'anomaly' or 'local' "
            "(set forced_window_years = 0 for the standard scaling)"
        )
    return None


def month_index(time: Any) -> np.ndarray:
    """Calendar month (0 = January … 11 = December) of each time value, int64 (T,)."""
    return np.asarray(pd.DatetimeIndex(np.asarray(time)).month, dtype=np.int64) - 1


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
class Normalization:
    """Scaling of inputs and target, fitted on the training split (see module docstring).

    Arrays: ``x_mean``/``x_std`` (C,); ``x_clim`` (12, C, h, w) in anomaly/local modes, else None;
    ``x_sd`` (12, C, h, w) and ``y_sd`` (12, H, W) m3 m-3 in local mode, else None;
    scalars in m3 m-3: ``y_offset`` (standard mode: the training mean), ``y_scale``;
    ``clim_mean``/``clim_scale`` standardise the climatology aux field;
    ``elev_mean``/``elev_scale`` (m) standardise elevation.
    """

    input_norm: str
    target_norm: str
    x_mean: np.ndarray
    x_std: np.ndarray
    x_clim: np.ndarray | None
    y_offset: float
    y_scale: float
    clim_mean: float
    clim_scale: float
    elev_mean: float
    elev_scale: float
    x_sd: np.ndarray | None = None
    y_sd: np.ndarray | None = None
    forced_window: float = 0.0
    aux: tuple[str, ...] = AUX_FIELDS

    def __post_init__(self) -> None:
        unknown = set(self.aux) - set(AUX_FIELDS)
        if unknown:
            raise ValueError(f"unknown auxiliary fields {sorted(unknown)}; known: {AUX_FIELDS}")
        for name, mode in (("input_norm", self.input_norm), ("target_norm", self.target_norm)):
            if mode not in NORM_MODES:
                raise ValueError(f"{name} must be one of {NORM_MODES}, got {mode!r}")
        problem = forced_split_problem(self.forced_window, self.input_norm, self.target_norm)
        if problem:
            raise ValueError(problem)

    @property
    def splits_forced(self) -> bool:
        """Whether the slow (forced) part of the anomalies bypasses the network."""
        return self.forced_window > 0

    # -- scaling ---------------------------------------------------------
    def x_anomaly(self, x: np.ndarray, months: np.ndarray) -> np.ndarray:
        """Departure (T, C, h, w) m3 m-3 of each model from its training monthly climatology."""
        assert self.x_clim is not None
        return np.asarray(x, dtype=np.float32) - self.x_clim[months]

    def normalize_x(self, x: np.ndarray, months: np.ndarray, slow: np.ndarray | None = None) -> np.ndarray:
        """Scale coarse inputs (T, C, h, w) m3 m-3 → float32, no NaN.

        ``slow`` (T, C, h, w), the slow part of the anomalies (:mod:`smcore.train.forced`),
        is removed first when the forced split is on.
        """
        x = np.asarray(x, dtype=np.float32)
        if self.input_norm in ("anomaly", "local"):
            x = self.x_anomaly(x, months)
            if self.splits_forced:
                if slow is None:
                    raise ValueError("this scaling removes the slow anomaly: pass slow=")
                x = x - slow
            if self.input_norm == "local":
                assert self.x_sd is not None
                out = x / self.x_sd[months]
            else:
                out = x / self.x_std[None, :, None, None]
        else:
            out = (x - self.x_mean[None, :, None, None]) / self.x_std[None, :, None, None]
        return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)

    def target_offset(
        self, climatology: np.ndarray, months: np.ndarray, forced: np.ndarray | None = None
    ) -> np.ndarray:
        """What the network's output is relative to, (T, H, W) m3 m-3.

        The training climatology of the month (anomaly/local modes), plus ``forced`` (T, H, W),
        the ensemble-mean slow anomaly on the fine grid, when the forced split is on.
        """
        if self.target_norm in ("anomaly", "local"):
            base = climatology[months]
            if self.splits_forced:
                if forced is None:
                    raise ValueError("this scaling adds the ensemble slow anomaly: pass forced=")
                base = base + forced
            return base
        return np.full((len(months),) + climatology.shape[1:], self.y_offset, dtype=np.float32)

    def normalize_y(
        self, y: np.ndarray, climatology: np.ndarray, months: np.ndarray, forced: np.ndarray | None = None
    ) -> np.ndarray:
        """Scale the reference (T, H, W) m3 m-3 → float32 (NaN stays NaN)."""
        offset = self.target_offset(climatology, months, forced)
        return ((y - offset) / self.target_scale(months)).astype(np.float32)

    def denormalize_y(
        self, out: np.ndarray, climatology: np.ndarray, months: np.ndarray, forced: np.ndarray | None = None
    ) -> np.ndarray:
        """Network output (T, H, W) → soil moisture m3 m-3."""
        offset = self.target_offset(climatology, months, forced)
        return (out * self.target_scale(months) + offset).astype(np.float32)

    def target_scale(self, months: np.ndarray) -> np.ndarray | float:
        """What one unit of network output is worth in m3 m-3: (T, H, W) in local mode, else a float."""
        if self.target_norm == "local":
            assert self.y_sd is not None
            return self.y_sd[months]
        return self.y_scale

    def loss_weights(self, land: np.ndarray) -> np.ndarray | None:
        """Per-month pixel weights (12, 1, H, W) that keep the loss an MSE in m3 m-3 (local mode).

        ``(y_sd / y_scale)²``, 0 outside land; None in the other modes (uniform weights).
        """
        if self.target_norm != "local":
            return None
        assert self.y_sd is not None
        w = np.where(land[None], (self.y_sd / self.y_scale) ** 2, 0.0)
        return np.nan_to_num(w).astype(np.float32)[:, None]

    def aux_fields(self, static: StaticFields) -> np.ndarray:
        """Auxiliary fields per calendar month, (12, A, H, W) float32, 0 outside land."""
        land = static.land
        elev = np.where(land, (static.elevation - self.elev_mean) / self.elev_scale, 0.0)
        clim = np.where(land[None], (static.climatology - self.clim_mean) / self.clim_scale, 0.0)
        clim = np.nan_to_num(clim)
        lat = np.asarray(static.lat, dtype=np.float64)
        lon = np.asarray(static.lon, dtype=np.float64)
        fields = {
            "elevation": lambda: elev,
            "target_climatology": lambda: clim,
            "land_mask": lambda: land,
            # position in the domain, -1 … 1: lets the network weight the models by region
            "latitude": lambda: np.where(land, _unit_range(lat)[:, None], 0.0),
            "longitude": lambda: np.where(land, _unit_range(lon)[None, :], 0.0),
        }
        aux = np.empty((12, len(self.aux)) + land.shape, dtype=np.float32)
        for i, name in enumerate(self.aux):
            aux[:, i] = fields[name]()
        return aux

    # -- (de)serialisation for checkpoints (tensors and plain types only) --
    def to_state(self) -> dict[str, Any]:
        """Dict of tensors/str/float, loadable with ``torch.load(weights_only=True)``."""
        state: dict[str, Any] = {
            "input_norm": self.input_norm,
            "target_norm": self.target_norm,
            "x_mean": torch.from_numpy(np.asarray(self.x_mean, dtype=np.float32)),
            "x_std": torch.from_numpy(np.asarray(self.x_std, dtype=np.float32)),
        }
        for name in ("x_clim", "x_sd", "y_sd"):
            value = getattr(self, name)
            if value is not None:
                state[name] = torch.from_numpy(np.asarray(value, dtype=np.float32))
        for name in ("y_offset", "y_scale", "clim_mean", "clim_scale", "elev_mean", "elev_scale",
                     "forced_window"):
            state[name] = float(getattr(self, name))
        state["aux"] = list(self.aux)
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "Normalization":
        """Inverse of :meth:`to_state`."""
        def array(name: str) -> np.ndarray | None:
            value = state.get(name)
            return None if value is None else value.numpy()

        return cls(
            input_norm=str(state["input_norm"]),
            target_norm=str(state["target_norm"]),
            x_mean=state["x_mean"].numpy(),
            x_std=state["x_std"].numpy(),
            x_clim=array("x_clim"),
            x_sd=array("x_sd"),
            y_sd=array("y_sd"),
            forced_window=float(state.get("forced_window", 0.0)),
            aux=tuple(str(a) for a in state.get("aux", LEGACY_AUX_FIELDS)),
            **{
                k: float(state[k])
                for k in ("y_offset", "y_scale", "clim_mean", "clim_scale", "elev_mean", "elev_scale")
            },
        )


def _unit_range(values: np.ndarray) -> np.ndarray:
    """``values`` mapped linearly onto -1 … 1 (0 for a single value)."""
    half = (values.max() - values.min()) / 2.0 if values.size else 0.0
    return (values - values.mean()) / half if half > 0 else np.zeros_like(values)


def _safe_scale(value: float) -> float:
    return float(value) if np.isfinite(value) and value > 1e-12 else 1.0


def _positive_median(values: np.ndarray) -> float:
    """Median of the finite, positive values (1e-6 if there are none)."""
    v = np.asarray(values)
    v = v[np.isfinite(v) & (v > 0)]
    return float(np.median(v)) if v.size else 1e-6


def ensemble_on_fine(slow: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Mean over models of coarse slow anomalies (T, C, h, w), bilinear to the fine grid (T, H, W).

    Uses the same interpolation as the network's input path (``align_corners=False``).
    """
    mean = torch.from_numpy(np.ascontiguousarray(slow.mean(axis=1, keepdims=True), dtype=np.float32))
    fine = F.interpolate(mean, size=shape, mode="bilinear", align_corners=False)
    return fine[:, 0].numpy()


def scenario_continuation(
    prepared: PreparedData, after: np.datetime64, margin: np.timedelta64
) -> xr.DataArray | None:
    """Mean over the prepared scenarios of their inputs in the ``margin`` after ``after``.

    Returns (time, model, clat, clon) m3 m-3 (the months every scenario has), or None when
    no scenario was prepared. The historical record ends where the scenarios begin, so a
    local-linear fit at its last years is one-sided; continuing the series with the
    scenarios (which share their first decade of forcing) centres the fit there.
    """
    ssps = [e for e in prepared.experiments if e != "historical"]
    if not ssps:
        return None
    end = np.datetime64(after) + margin
    parts = []
    for exp in ssps:
        da = prepared.inputs(exp).transpose(*INPUT_DIMS)
        t = np.asarray(da["time"].values)
        keep = np.flatnonzero((t > after) & (t <= end))
        parts.append(da.isel(time=keep).load())
    if any(p.sizes["time"] == 0 for p in parts):
        return None
    return xr.concat(parts, dim="experiment", join="inner").mean("experiment").astype(np.float32)


def historical_slow(
    norm: Normalization, x: np.ndarray, time: np.ndarray, continuation: xr.DataArray | None = None
) -> np.ndarray:
    """Slow anomalies (T, C, h, w) of the historical inputs ``x`` (T, C, h, w) at ``time``.

    Computed from the series itself, continued by ``continuation`` (months after ``time``,
    see :func:`scenario_continuation`) when given.
    """
    own = xr.DataArray(np.asarray(x), dims=INPUT_DIMS, coords={"time": np.asarray(time)})
    return AnomalySource([own] if continuation is None else [own, continuation], norm).slow(time)


def slow_series(
    prepared: PreparedData, experiment: str, norm: Normalization, own: xr.DataArray | None = None
) -> list[xr.DataArray]:
    """The inputs (time, model, clat, clon), in time order, whose slow anomalies serve ``experiment``.

    A scenario continues the historical record across 2014/2015; the historical record is
    continued by the scenarios' mean (:func:`scenario_continuation`). ``own`` is the
    experiment's own inputs when already at hand (default: read from ``prepared``).
    """
    if own is None:
        own = prepared.inputs(experiment).transpose(*INPUT_DIMS)
    if experiment != "historical":
        if "historical" not in prepared.experiments:
            return [own]
        return [prepared.inputs("historical").transpose(*INPUT_DIMS), own]
    after = np.asarray(own["time"].values).max()
    cont = scenario_continuation(prepared, after, window_margin(norm.forced_window))
    return [own] if cont is None else [own, cont]


class AnomalySource:
    """Monthly model anomalies of consecutive experiments (historical, then a scenario), read lazily.

    ``between(lo, hi)`` reads only the months in ``[lo, hi]``, so the slow anomalies of a
    block of months need the block plus a window margin, never a whole experiment.
    """

    def __init__(self, arrays: Sequence[xr.DataArray], norm: Normalization) -> None:
        self.norm = norm
        self.parts: list[tuple[xr.DataArray, np.ndarray]] = []
        end = None
        for da in arrays:
            t = np.asarray(da["time"].values)
            if end is not None:
                keep = np.flatnonzero(t > end)
                if keep.size == 0:
                    continue
                da, t = da.isel(time=slice(int(keep[0]), None)), t[int(keep[0]):]
            self.parts.append((da, t))
            end = t[-1]

    def between(self, lo: np.datetime64, hi: np.datetime64) -> tuple[np.ndarray, np.ndarray]:
        """Times (T,) and anomalies (T, C, h, w) m3 m-3 of the months in ``[lo, hi]``."""
        times, values = [], []
        for da, t in self.parts:
            idx = np.flatnonzero((t >= lo) & (t <= hi))
            if idx.size:
                sl = slice(int(idx[0]), int(idx[-1]) + 1)
                x = np.asarray(da.isel(time=sl).values, dtype=np.float32)
                times.append(t[sl])
                values.append(self.norm.x_anomaly(x, month_index(t[sl])))
        return np.concatenate(times), np.concatenate(values)

    def slow(self, time: np.ndarray) -> np.ndarray:
        """Slow anomalies (T, C, h, w) at the months ``time`` (:mod:`smcore.train.forced`)."""
        margin = window_margin(self.norm.forced_window)
        t0, t1 = np.asarray(time).min(), np.asarray(time).max()
        src_t, src = self.between(t0 - margin, t1 + margin)
        return slow_anomalies(src_t, src, time, self.norm.forced_window)


def fit_normalization(
    prepared: PreparedData,
    static: StaticFields,
    x: np.ndarray,
    y: np.ndarray,
    time: np.ndarray,
    train: np.ndarray,
    *,
    input_norm: str = "anomaly",
    target_norm: str = "anomaly",
    forced_window: float = 0.0,
) -> Normalization:
    """Fit the scaling; every statistic comes from the training months only.

    ``x`` (T, C, h, w) and ``y`` (T, H, W) are all historical months (m3 m-3) at ``time``;
    ``train`` (T,) bool marks the training split. With ``forced_window`` > 0 the slow part
    of the model anomalies is split off first (:mod:`smcore.train.forced`); the smoothing
    uses the models' own series (inputs only, never the reference).
    """
    months = month_index(time)
    tr = np.asarray(train, dtype=bool)
    if not tr.any():
        raise InputError(prepared.path, "the training split holds no month")
    problem = forced_split_problem(forced_window, input_norm, target_norm)
    if problem:
        raise ConfigError(problem)
    st = prepared.static
    x_mean = np.asarray(st["x_mean"].values, dtype=np.float32)
    x_std = np.array([_safe_scale(s) for s in np.asarray(st["x_std"].values)], dtype=np.float32)
    x_clim = x_sd = y_sd = None
    forced = None
    if input_norm in ("anomaly", "local"):
        if len(np.unique(months[tr])) < 12:
            raise InputError(prepared.path, "the training split must cover all 12 calendar months")
        x_clim = np.stack([np.nanmean(x[tr & (months == m)], axis=0) for m in range(12)])
        x_clim = np.where(np.isfinite(x_clim), x_clim, x_mean[None, :, None, None]).astype(np.float32)
        fast = x - x_clim[months]
        if forced_window > 0:
            slow = slow_anomalies(time, fast, time, forced_window)
            fast = fast - slow
            forced = ensemble_on_fine(slow, static.land.shape)
        fast_tr, m_tr = fast[tr], months[tr]
        x_std = np.array(
            [_safe_scale(np.nanstd(fast_tr[:, c])) for c in range(fast_tr.shape[1])], dtype=np.float32
        )
        if input_norm == "local":
            sd = np.stack([np.nanstd(fast_tr[m_tr == m], axis=0) for m in range(12)])  # (12,C,h,w)
            floor = np.array([0.1 * _positive_median(sd[:, c]) for c in range(sd.shape[1])], dtype=np.float32)
            x_sd = np.maximum(np.nan_to_num(sd), floor[None, :, None, None]).astype(np.float32)
    land = static.land
    y_mean = float(np.asarray(st["y_mean"].values))
    y_std = _safe_scale(float(np.asarray(st["y_std"].values)))
    if target_norm in ("anomaly", "local"):
        resid = y[tr] - static.climatology[months[tr]]
        if forced is not None:
            resid = resid - forced[tr]
        on_land = resid[:, land]
        y_offset, y_scale = 0.0, _safe_scale(float(np.nanstd(on_land)))
        if target_norm == "local":
            m_tr = months[tr]
            sd = np.stack([np.nanstd(on_land[m_tr == m], axis=0) for m in range(12)])  # (12, P)
            y_sd = np.ones((12,) + land.shape, dtype=np.float32)
            y_sd[:, land] = np.maximum(np.nan_to_num(sd), 0.1 * _positive_median(sd))
    else:
        y_offset, y_scale = y_mean, y_std
    elev = static.elevation[land]
    return Normalization(
        input_norm=input_norm,
        target_norm=target_norm,
        x_mean=x_mean,
        x_std=x_std,
        x_clim=x_clim,
        y_offset=y_offset,
        y_scale=y_scale,
        clim_mean=y_mean,
        clim_scale=y_std,
        elev_mean=float(elev.mean()),
        elev_scale=_safe_scale(float(elev.std())),
        x_sd=x_sd,
        y_sd=y_sd,
        forced_window=float(forced_window),
    )


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
    norm: Normalization | None = None,
) -> TrainingData:
    """Load every historical month of the store into (CPU) tensors, normalised with training stats.

    ``norm`` reuses a fitted scaling (when resuming from a checkpoint) instead of fitting one.
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
        )
    elif len(norm.x_mean) != x.shape[1]:
        raise InputError(prepared.path, f"scaling has {len(norm.x_mean)} channels, store has {x.shape[1]}")
    slow = None
    if norm.splits_forced:
        series = slow_series(prepared, "historical", norm, own=x_da.copy(data=x))
        slow = AnomalySource(series, norm).slow(time)
    forced = None if slow is None else ensemble_on_fine(slow, static.land.shape)
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
