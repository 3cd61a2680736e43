"""How YNet's inputs and target are scaled: one small class per mode, chosen by name.

Every statistic comes from the **training split only** (validation and test months never
leak into the scaling). The modes (``train.input_norm`` and ``train.target_norm``, both
:data:`smcore.config.SCALING_MODES`):

- inputs, coarse model fields ``x`` (T, C, h, w) m3 m-3:
  ``"standard"`` — ``(x - mean[c]) / std[c]`` with the store's per-model training statistics;
  ``"anomaly"`` — ``(x - clim[month, c, i, j]) / std[c]``: each model's departure from its own
  training-period monthly climatology at each coarse cell, ``std[c]`` the std of that departure;
  ``"local"`` — the same departure divided by its own std at each calendar month and cell,
  ``sd[month, c, i, j]`` (a standardised anomaly).
- target, the reference ``y`` (T, H, W) m3 m-3:
  ``"standard"`` — ``(y - mean) / scale``;
  ``"anomaly"`` — ``(y - climatology[month]) / scale``, the departure from the reference's
  training-period monthly climatology (also an auxiliary field), ``scale`` its std over land;
  ``"local"`` — that departure divided by its std at each calendar month and pixel,
  ``sd[month, i, j]``. The loss is then weighted by ``(sd / scale)²`` so that it stays the mean
  squared error in m3 m-3 (divided by ``scale²``), comparable across modes.

The default is ``"anomaly"`` for both: the network starts from the training climatology
(output 0) and learns departures from it, which is what the models can inform. ``"local"``
targets the fact that shared convolution weights cannot follow anomaly amplitudes that vary
from place to place; on the full demo (5 epochs) it changed the test MAE by < 1 % (0.01269
vs 0.01277 m3 m-3) with a slightly worse validation loss, so it stays an option.
``"standard"`` is the plain scaling of the reference code.

With the forced/weather split (:mod:`smcore.train.forced`) the inputs' departures lose their
slow part (``slow`` (T, C, h, w)) before they are divided, and the target's offset gains the
ensemble-mean slow anomaly on the fine grid (``forced`` (T, H, W)); :class:`Normalization
<smcore.train.normalization.Normalization>` decides when to pass them. Each scaler saves its
numbers under the checkpoint keys of ``to_state`` (tensors and floats only).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from smcore.config import SCALING_MODES
from smcore.errors import InputError

__all__ = [
    "FitData",
    "Scaler",
    "InputScaler",
    "StandardInput",
    "AnomalyInput",
    "LocalInput",
    "TargetScaler",
    "StandardTarget",
    "AnomalyTarget",
    "LocalTarget",
    "INPUT_SCALERS",
    "TARGET_SCALERS",
    "input_scaler",
    "target_scaler",
    "safe_scale",
]


def safe_scale(value: float) -> float:
    """``value`` as a divisor: itself when finite and > 1e-12, else 1."""
    return float(value) if np.isfinite(value) and value > 1e-12 else 1.0


def _positive_median(values: np.ndarray) -> float:
    """Median of the finite, positive values (1e-6 if there are none)."""
    v = np.asarray(values)
    v = v[np.isfinite(v) & (v > 0)]
    return float(np.median(v)) if v.size else 1e-6


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=np.float32))


def _per_channel(a: np.ndarray) -> np.ndarray:
    """A per-model vector (C,) shaped to broadcast over (T, C, h, w)."""
    return a[None, :, None, None]


@dataclass(eq=False)
class FitData:
    """What the scalers are fitted on: every historical month, the training split marked.

    ``x`` (T, C, h, w) and ``y`` (T, H, W) m3 m-3; ``months`` (T,) calendar months 0–11;
    ``train`` (T,) bool; ``climatology`` (12, H, W) m3 m-3 (NaN off land) and ``land`` (H, W)
    bool of the fine grid; the store's training statistics ``x_mean``/``x_std`` (C,) and
    ``y_mean``/``y_std`` m3 m-3, the stds already made safe divisors (:func:`safe_scale`);
    ``source`` names the store in error messages.
    """

    x: np.ndarray
    y: np.ndarray
    months: np.ndarray
    train: np.ndarray
    climatology: np.ndarray
    land: np.ndarray
    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: float
    y_std: float
    source: str | Path | None = None

    @cached_property
    def x_clim(self) -> np.ndarray:
        """Training-period monthly climatology of the inputs, (12, C, h, w) float32.

        A cell with no finite training value falls back to the model's store mean.
        """
        tr, months = self.train, self.months
        if len(np.unique(months[tr])) < 12:
            raise InputError(self.source, "the training split must cover all 12 calendar months")
        clim = np.stack([np.nanmean(self.x[tr & (months == m)], axis=0) for m in range(12)])
        return np.where(np.isfinite(clim), clim, _per_channel(self.x_mean)).astype(np.float32)

    @cached_property
    def x_departure(self) -> np.ndarray:
        """Inputs minus their monthly climatology, (T, C, h, w) m3 m-3."""
        return self.x - self.x_clim[self.months]


class Scaler(ABC):
    """One scaling mode (``name``), saved in checkpoints under fixed keys."""

    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def from_state(cls, state: dict[str, Any]) -> Scaler:
        """Inverse of :meth:`to_state` (``state`` may hold other keys too)."""

    @abstractmethod
    def to_state(self) -> dict[str, Any]:
        """Checkpoint entries (floats and float32 tensors)."""


# -- inputs ------------------------------------------------------------------
class InputScaler(Scaler):
    """Scaling of coarse inputs (T, C, h, w) m3 m-3 to what YNet sees.

    ``apply(x) = (x - centre - slow) / spread``; ``mean`` (C,) is the store's per-model
    training mean.
    """

    mean: np.ndarray

    @classmethod
    @abstractmethod
    def fit(cls, data: FitData, slow: np.ndarray | None = None) -> InputScaler:
        """Fit on the training months of ``data``; ``slow`` (T, C, h, w): slow part to leave out."""

    @abstractmethod
    def centre(self, months: np.ndarray) -> np.ndarray:
        """What the inputs of ``months`` (T,) are relative to, broadcastable to (T, C, h, w)."""

    @abstractmethod
    def spread(self, months: np.ndarray) -> np.ndarray:
        """What one scaled unit is worth in m3 m-3, broadcastable to (T, C, h, w)."""

    def departure(self, x: np.ndarray, months: np.ndarray) -> np.ndarray:
        """``x`` (T, C, h, w) minus :meth:`centre`, float32 m3 m-3."""
        return np.asarray(x, dtype=np.float32) - self.centre(months)

    def apply(
        self, x: np.ndarray, months: np.ndarray, slow: np.ndarray | None = None
    ) -> np.ndarray:
        """Scaled inputs (T, C, h, w) float32, NaN set to 0; ``slow`` is taken out first."""
        d = self.departure(x, months)
        if slow is not None:
            d = d - slow
        out = d / self.spread(months)
        return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)

    def invert(
        self, xn: np.ndarray, months: np.ndarray, slow: np.ndarray | None = None
    ) -> np.ndarray:
        """Inputs (T, C, h, w) m3 m-3 back from :meth:`apply` (where ``x`` was NaN: the centre).

        Training and inference never need it (the network's output is the target's); it
        documents, and the tests check, that :meth:`apply` loses nothing else.
        """
        x = np.asarray(xn, dtype=np.float32) * self.spread(months)
        if slow is not None:
            x = x + slow
        return (x + self.centre(months)).astype(np.float32)


@dataclass(eq=False)
class StandardInput(InputScaler):
    """``(x - mean[c]) / std[c]``, the store's training statistics (C,)."""

    name: ClassVar[str] = "standard"
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, data: FitData, slow: np.ndarray | None = None) -> StandardInput:
        """The store's statistics (``slow``: never given, the forced split needs departures)."""
        return cls(mean=data.x_mean, std=data.x_std)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> StandardInput:
        """From ``x_mean`` and ``x_std``."""
        return cls(mean=state["x_mean"].numpy(), std=state["x_std"].numpy())

    def to_state(self) -> dict[str, Any]:
        """``x_mean`` and ``x_std``."""
        return {"x_mean": _tensor(self.mean), "x_std": _tensor(self.std)}

    def centre(self, months: np.ndarray) -> np.ndarray:
        """``mean`` (1, C, 1, 1)."""
        return _per_channel(self.mean)

    def spread(self, months: np.ndarray) -> np.ndarray:
        """``std`` (1, C, 1, 1)."""
        return _per_channel(self.std)


@dataclass(eq=False)
class AnomalyInput(InputScaler):
    """``(x - clim[month]) / std[c]``: ``clim`` (12, C, h, w), ``std`` (C,) of the departures.

    ``mean`` (C,), the store's, only fills ``clim`` where a cell has no training value.
    """

    name: ClassVar[str] = "anomaly"
    mean: np.ndarray
    std: np.ndarray
    clim: np.ndarray

    @staticmethod
    def _training_departures(
        data: FitData, slow: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Departures (T_train, C, h, w) less ``slow``, and their calendar months (T_train,)."""
        fast = data.x_departure if slow is None else data.x_departure - slow
        return fast[data.train], data.months[data.train]

    @staticmethod
    def _channel_std(fast: np.ndarray) -> np.ndarray:
        """Std (C,) float32 over all months and cells of each model's departures."""
        stds = [safe_scale(np.nanstd(fast[:, c])) for c in range(fast.shape[1])]
        return np.array(stds, dtype=np.float32)

    @classmethod
    def fit(cls, data: FitData, slow: np.ndarray | None = None) -> AnomalyInput:
        """The training climatology and the std of the departures from it, less ``slow``."""
        fast, _ = cls._training_departures(data, slow)
        return cls(mean=data.x_mean, std=cls._channel_std(fast), clim=data.x_clim)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> AnomalyInput:
        """From ``x_mean``, ``x_std`` and ``x_clim``."""
        return cls(
            mean=state["x_mean"].numpy(), std=state["x_std"].numpy(), clim=state["x_clim"].numpy()
        )

    def to_state(self) -> dict[str, Any]:
        """``x_mean``, ``x_std`` and ``x_clim``."""
        return {
            "x_mean": _tensor(self.mean), "x_std": _tensor(self.std), "x_clim": _tensor(self.clim)
        }

    def centre(self, months: np.ndarray) -> np.ndarray:
        """``clim[months]`` (T, C, h, w)."""
        return self.clim[months]

    def spread(self, months: np.ndarray) -> np.ndarray:
        """``std`` (1, C, 1, 1)."""
        return _per_channel(self.std)


@dataclass(eq=False)
class LocalInput(AnomalyInput):
    """``(x - clim[month]) / sd[month]``: ``sd`` (12, C, h, w), the departures' std.

    ``sd`` is taken per calendar month and cell and floored at a tenth of each model's median;
    ``std`` (C,) is kept as in the anomaly mode.
    """

    name: ClassVar[str] = "local"
    sd: np.ndarray

    @classmethod
    def fit(cls, data: FitData, slow: np.ndarray | None = None) -> LocalInput:
        """As :meth:`AnomalyInput.fit`, plus the std of the departures per month and cell."""
        fast, m_tr = cls._training_departures(data, slow)
        sd = np.stack([np.nanstd(fast[m_tr == m], axis=0) for m in range(12)])  # (12, C, h, w)
        floor = [0.1 * _positive_median(sd[:, c]) for c in range(sd.shape[1])]
        floor = _per_channel(np.array(floor, dtype=np.float32))
        sd = np.maximum(np.nan_to_num(sd), floor).astype(np.float32)
        return cls(mean=data.x_mean, std=cls._channel_std(fast), clim=data.x_clim, sd=sd)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LocalInput:
        """From ``x_mean``, ``x_std``, ``x_clim`` and ``x_sd``."""
        base = AnomalyInput.from_state(state)
        return cls(mean=base.mean, std=base.std, clim=base.clim, sd=state["x_sd"].numpy())

    def to_state(self) -> dict[str, Any]:
        """``x_mean``, ``x_std``, ``x_clim`` and ``x_sd``."""
        return {**super().to_state(), "x_sd": _tensor(self.sd)}

    def spread(self, months: np.ndarray) -> np.ndarray:
        """``sd[months]`` (T, C, h, w)."""
        return self.sd[months]


# -- target ------------------------------------------------------------------
class TargetScaler(Scaler):
    """Scaling of the reference (T, H, W) m3 m-3 to YNet's output: ``(y - offset) / unit``.

    ``scale`` (m3 m-3) is the typical size of one unit (the loss is divided by its square).
    """

    scale: float

    @classmethod
    @abstractmethod
    def fit(cls, data: FitData, forced: np.ndarray | None = None) -> TargetScaler:
        """Fit on the training months of ``data``; ``forced`` (T, H, W): part of the offset."""

    @abstractmethod
    def offset(
        self, climatology: np.ndarray, months: np.ndarray, forced: np.ndarray | None = None
    ) -> np.ndarray:
        """What the output is relative to, (T, H, W) m3 m-3, given the (12, H, W) climatology."""

    def unit(self, months: np.ndarray) -> np.ndarray | float:
        """What one unit of output is worth in m3 m-3: ``scale``, or (T, H, W)."""
        return self.scale

    def apply(
        self, y: np.ndarray, clim: np.ndarray, months: np.ndarray, forced: np.ndarray | None = None
    ) -> np.ndarray:
        """Scaled reference (T, H, W) float32 (NaN stays NaN); ``clim`` (12, H, W) m3 m-3."""
        offset = self.offset(clim, months, forced)
        return ((y - offset) / self.unit(months)).astype(np.float32)

    def invert(
        self, yn: np.ndarray, clim: np.ndarray, months: np.ndarray, forced: np.ndarray | None = None
    ) -> np.ndarray:
        """Network output ``yn`` (T, H, W) → soil moisture m3 m-3, float32."""
        return (yn * self.unit(months) + self.offset(clim, months, forced)).astype(np.float32)

    def loss_weights(self, land: np.ndarray) -> np.ndarray | None:
        """Per-month pixel weights (12, 1, H, W) of the loss, or None for uniform weights."""
        return None


@dataclass(eq=False)
class StandardTarget(TargetScaler):
    """``(y - mean) / scale``, the store's training mean and std (m3 m-3)."""

    name: ClassVar[str] = "standard"
    mean: float
    scale: float

    @classmethod
    def fit(cls, data: FitData, forced: np.ndarray | None = None) -> StandardTarget:
        """The store's statistics (``forced``: never given, the forced split needs departures)."""
        return cls(mean=data.y_mean, scale=data.y_std)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> StandardTarget:
        """From ``y_offset`` (the mean) and ``y_scale``."""
        return cls(mean=float(state["y_offset"]), scale=float(state["y_scale"]))

    def to_state(self) -> dict[str, Any]:
        """``y_offset`` (the mean) and ``y_scale``."""
        return {"y_offset": float(self.mean), "y_scale": float(self.scale)}

    def offset(
        self, climatology: np.ndarray, months: np.ndarray, forced: np.ndarray | None = None
    ) -> np.ndarray:
        """``mean`` everywhere, (T, H, W) float32."""
        return np.full((len(months),) + climatology.shape[1:], self.mean, dtype=np.float32)


@dataclass(eq=False)
class AnomalyTarget(TargetScaler):
    """``(y - climatology[month] - forced) / scale``, ``scale`` the departures' std over land."""

    name: ClassVar[str] = "anomaly"
    scale: float

    @staticmethod
    def _training_departures(data: FitData, forced: np.ndarray | None) -> np.ndarray:
        """Departures of the training months from the offset, on land: (T_train, P)."""
        tr = data.train
        resid = data.y[tr] - data.climatology[data.months[tr]]
        if forced is not None:
            resid = resid - forced[tr]
        return resid[:, data.land]

    @classmethod
    def fit(cls, data: FitData, forced: np.ndarray | None = None) -> AnomalyTarget:
        """The std over land of the training departures from the climatology and ``forced``."""
        on_land = cls._training_departures(data, forced)
        return cls(scale=safe_scale(float(np.nanstd(on_land))))

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> AnomalyTarget:
        """From ``y_scale``."""
        return cls(scale=float(state["y_scale"]))

    def to_state(self) -> dict[str, Any]:
        """``y_offset`` (0: the offset is the climatology) and ``y_scale``."""
        return {"y_offset": 0.0, "y_scale": float(self.scale)}

    def offset(
        self, climatology: np.ndarray, months: np.ndarray, forced: np.ndarray | None = None
    ) -> np.ndarray:
        """``climatology[months]``, plus ``forced`` when given."""
        base = climatology[months]
        return base if forced is None else base + forced


@dataclass(eq=False)
class LocalTarget(AnomalyTarget):
    """``(y - climatology[month] - forced) / sd[month]``: ``sd`` (12, H, W) m3 m-3.

    ``sd`` is the departures' std per calendar month and pixel (1 off land), floored at a
    tenth of their median; ``scale`` is kept as in the anomaly mode.
    """

    name: ClassVar[str] = "local"
    sd: np.ndarray

    @classmethod
    def fit(cls, data: FitData, forced: np.ndarray | None = None) -> LocalTarget:
        """As :meth:`AnomalyTarget.fit`, plus the std of the departures per month and pixel."""
        on_land = cls._training_departures(data, forced)
        m_tr = data.months[data.train]
        sd = np.stack([np.nanstd(on_land[m_tr == m], axis=0) for m in range(12)])  # (12, P)
        full = np.ones((12,) + data.land.shape, dtype=np.float32)
        full[:, data.land] = np.maximum(np.nan_to_num(sd), 0.1 * _positive_median(sd))
        return cls(scale=safe_scale(float(np.nanstd(on_land))), sd=full)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LocalTarget:
        """From ``y_scale`` and ``y_sd``."""
        return cls(scale=float(state["y_scale"]), sd=state["y_sd"].numpy())

    def to_state(self) -> dict[str, Any]:
        """``y_offset``, ``y_scale`` and ``y_sd``."""
        return {**super().to_state(), "y_sd": _tensor(self.sd)}

    def unit(self, months: np.ndarray) -> np.ndarray | float:
        """``sd[months]`` (T, H, W)."""
        return self.sd[months]

    def loss_weights(self, land: np.ndarray) -> np.ndarray | None:
        """``(sd / scale)²`` on land, 0 off land: the loss stays an MSE in m3 m-3 (over scale²)."""
        w = np.where(land[None], (self.sd / self.scale) ** 2, 0.0)
        return np.nan_to_num(w).astype(np.float32)[:, None]


INPUT_SCALERS: dict[str, type[InputScaler]] = {
    cls.name: cls for cls in (StandardInput, AnomalyInput, LocalInput)
}
TARGET_SCALERS: dict[str, type[TargetScaler]] = {
    cls.name: cls for cls in (StandardTarget, AnomalyTarget, LocalTarget)
}


def input_scaler(mode: str) -> type[InputScaler]:
    """The input scaler class of ``mode``; ValueError naming the modes if there is none."""
    return _lookup(INPUT_SCALERS, "input_norm", mode)


def target_scaler(mode: str) -> type[TargetScaler]:
    """The target scaler class of ``mode``; ValueError naming the modes if there is none."""
    return _lookup(TARGET_SCALERS, "target_norm", mode)


def _lookup(registry: dict[str, Any], what: str, mode: str) -> Any:
    try:
        return registry[mode]
    except KeyError:
        raise ValueError(f"{what} must be one of {SCALING_MODES}, got {mode!r}") from None
