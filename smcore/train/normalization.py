"""The whole scaling of a run: inputs, target, auxiliary fields and the forced/weather split.

:class:`Normalization` composes the input and target scalers of :mod:`smcore.train.scaling`,
the statistics of the auxiliary fields (:class:`AuxStats`) and the forced window: with
``forced_window`` > 0 the slow part of the model anomalies is taken out of the inputs and its
ensemble mean added to the target's offset (:mod:`smcore.train.forced`), so that the network
sees and predicts the monthly variability only. It is fitted on the training split
(:func:`fit_normalization`) and saved in checkpoints under ``normalization``
(:data:`STATE_KEYS`, tensors and plain types only).

The auxiliary fields (``train.aux_fields``, fine grid) are, per calendar month: elevation
standardised over land, the target climatology of that month standardised like the target,
the land mask, and latitude and longitude mapped onto -1 … 1 across the domain (0 outside
land). The paper's three fields say what a place is like; the coordinates also say where it
is, so that the network can weight the models by region, as a per-pixel regression does
(docs/evaluation.md says on what evidence they are kept). Checkpoints store their list.

The forced change combines the models' slow anomalies with equal weights or ClimWIP weights
(``train.forced_method``, :mod:`smcore.train.weights`); the historical slow anomalies are
continued by the scenarios unless ``train.scenario_continuation`` is off. Both are stored in
the checkpoint (``forced_weights``, ``continuation``) when they differ from the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from smcore.config import AUX_FIELD_NAMES, forced_split_problem
from smcore.errors import ConfigError, InputError
from smcore.train.forced import ensemble_on_fine, month_index, slow_anomalies
from smcore.train.scaling import (
    FitData,
    InputScaler,
    TargetScaler,
    input_scaler,
    safe_scale,
    target_scaler,
)
from smcore.train.weights import climwip_weights, coarse_reference

if TYPE_CHECKING:
    from smcore.prep.store import PreparedData
    from smcore.train.data import StaticFields

__all__ = [
    "AUX_FIELDS",
    "LEGACY_AUX_FIELDS",
    "STATE_KEYS",
    "AuxStats",
    "Normalization",
    "fit_normalization",
]

AUX_FIELDS = AUX_FIELD_NAMES
LEGACY_AUX_FIELDS = AUX_FIELDS[:3]
"""The auxiliary fields of checkpoints written before latitude/longitude were added."""

STATE_KEYS = (
    "input_norm", "target_norm", "x_mean", "x_std", "x_clim", "x_sd", "y_sd", "y_offset",
    "y_scale", "clim_mean", "clim_scale", "elev_mean", "elev_scale", "forced_window", "aux",
    "forced_weights", "continuation",
)
"""The keys of a checkpoint's ``normalization`` entry, in the order they are written (the
arrays of a mode that has none are left out). Renaming one breaks older checkpoints."""


def _unit_range(values: np.ndarray) -> np.ndarray:
    """``values`` mapped linearly onto -1 … 1 (0 for a single value)."""
    half = (values.max() - values.min()) / 2.0 if values.size else 0.0
    return (values - values.mean()) / half if half > 0 else np.zeros_like(values)


@dataclass(eq=False)
class AuxStats:
    """Which auxiliary fields YNet gets (``names``), and how two of them are standardised.

    ``elev_mean``/``elev_scale`` (m) standardise elevation over land; ``clim_mean``/
    ``clim_scale`` (m3 m-3, the store's training mean and std of the target) the climatology.
    """

    names: tuple[str, ...]
    elev_mean: float
    elev_scale: float
    clim_mean: float
    clim_scale: float

    def __post_init__(self) -> None:
        unknown = set(self.names) - set(AUX_FIELDS)
        if unknown:
            raise ValueError(f"unknown auxiliary fields {sorted(unknown)}; known: {AUX_FIELDS}")

    @classmethod
    def fit(
        cls, static: StaticFields, y_mean: float, y_std: float,
        names: tuple[str, ...] = AUX_FIELDS,
    ) -> AuxStats:
        """Elevation statistics over land; the climatology scaled by the target's mean and std."""
        elev = static.elevation[static.land]
        return cls(
            names=tuple(names),
            elev_mean=float(elev.mean()),
            elev_scale=safe_scale(float(elev.std())),
            clim_mean=y_mean,
            clim_scale=y_std,
        )

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> AuxStats:
        """Inverse of :meth:`to_state`; a checkpoint without ``aux`` has the legacy three fields."""
        return cls(
            names=tuple(str(a) for a in state.get("aux", LEGACY_AUX_FIELDS)),
            **{k: float(state[k]) for k in ("elev_mean", "elev_scale", "clim_mean", "clim_scale")},
        )

    def to_state(self) -> dict[str, Any]:
        """Checkpoint entries (floats and the list of field names)."""
        return {
            "clim_mean": float(self.clim_mean),
            "clim_scale": float(self.clim_scale),
            "elev_mean": float(self.elev_mean),
            "elev_scale": float(self.elev_scale),
            "aux": list(self.names),
        }

    def fields(self, static: StaticFields) -> np.ndarray:
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
        aux = np.empty((12, len(self.names)) + land.shape, dtype=np.float32)
        for i, name in enumerate(self.names):
            aux[:, i] = fields[name]()
        return aux


@dataclass(eq=False)
class Normalization:
    """Scaling of inputs, target and auxiliary fields, fitted on the training split.

    ``inputs``/``target``: the scalers of ``train.input_norm``/``train.target_norm``;
    ``aux_stats``: the auxiliary fields; ``forced_window`` (years, 0 = off): the forced split;
    ``forced_weights`` (C,): the models' weights in the forced change (None: equal);
    ``continuation``: whether the scenarios continue the historical slow anomalies.
    Arrays: inputs ``x`` (T, C, h, w) and their slow part ``slow`` (T, C, h, w) m3 m-3; target
    ``y`` (T, H, W) and the ensemble slow anomaly on the fine grid ``forced`` (T, H, W) m3 m-3;
    ``climatology`` (12, H, W) m3 m-3; ``months`` (T,) calendar months 0–11.
    """

    inputs: InputScaler
    target: TargetScaler
    aux_stats: AuxStats
    forced_window: float = 0.0
    forced_weights: np.ndarray | None = None
    continuation: bool = True

    def __post_init__(self) -> None:
        problem = forced_split_problem(self.forced_window, self.input_norm, self.target_norm)
        if problem:
            raise ValueError(problem)

    @property
    def input_norm(self) -> str:
        """Name of the input scaling (:data:`smcore.config.SCALING_MODES`)."""
        return self.inputs.name

    @property
    def target_norm(self) -> str:
        """Name of the target scaling (:data:`smcore.config.SCALING_MODES`)."""
        return self.target.name

    @property
    def aux(self) -> tuple[str, ...]:
        """Names of the auxiliary fields, in channel order."""
        return self.aux_stats.names

    @property
    def splits_forced(self) -> bool:
        """Whether the slow (forced) part of the anomalies bypasses the network."""
        return self.forced_window > 0

    # -- scaling ---------------------------------------------------------
    def x_anomaly(self, x: np.ndarray, months: np.ndarray) -> np.ndarray:
        """Departure (T, C, h, w) m3 m-3 of each model from its training monthly climatology.

        In the standard input scaling: from its training mean.
        """
        return self.inputs.departure(x, months)

    def normalize_x(
        self, x: np.ndarray, months: np.ndarray, slow: np.ndarray | None = None
    ) -> np.ndarray:
        """Scale coarse inputs → float32, no NaN; with the forced split ``slow`` goes first."""
        slow = self._split(slow, "removes the slow anomaly: pass slow=")
        return self.inputs.apply(x, months, slow)

    def target_offset(
        self, climatology: np.ndarray, months: np.ndarray, forced: np.ndarray | None = None
    ) -> np.ndarray:
        """What the network's output is relative to, (T, H, W) m3 m-3.

        The training climatology of the month (anomaly/local modes), plus ``forced`` when the
        forced split is on; the training mean in the standard mode.
        """
        return self.target.offset(climatology, months, self._forced(forced))

    def target_scale(self, months: np.ndarray) -> np.ndarray | float:
        """What one unit of network output is worth in m3 m-3: (T, H, W) or a float."""
        return self.target.unit(months)

    def normalize_y(
        self, y: np.ndarray, clim: np.ndarray, months: np.ndarray, forced: np.ndarray | None = None
    ) -> np.ndarray:
        """Scale the reference (T, H, W) m3 m-3 → float32 (NaN stays NaN)."""
        return self.target.apply(y, clim, months, self._forced(forced))

    def denormalize_y(
        self, yn: np.ndarray, clim: np.ndarray, months: np.ndarray, forced: np.ndarray | None = None
    ) -> np.ndarray:
        """Network output ``yn`` (T, H, W) → soil moisture m3 m-3."""
        return self.target.invert(yn, clim, months, self._forced(forced))

    def loss_weights(self, land: np.ndarray) -> np.ndarray | None:
        """Per-month pixel weights (12, 1, H, W) that keep the loss an MSE in m3 m-3 (local mode).

        ``(y_sd / y_scale)²``, 0 outside land; None in the other modes (uniform weights).
        """
        return self.target.loss_weights(land)

    def forced_on_fine(self, slow: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """The forced change on the fine grid (T, H, W) m3 m-3 from slow anomalies (T, C, h, w)."""
        return ensemble_on_fine(slow, shape, self.forced_weights)

    def aux_fields(self, static: StaticFields) -> np.ndarray:
        """Auxiliary fields per calendar month, (12, A, H, W) float32, 0 outside land."""
        return self.aux_stats.fields(static)

    def _forced(self, forced: np.ndarray | None) -> np.ndarray | None:
        return self._split(forced, "adds the ensemble slow anomaly: pass forced=")

    def _split(self, part: np.ndarray | None, missing: str) -> np.ndarray | None:
        """``part`` when the forced split is on (ValueError if absent), else None."""
        if not self.splits_forced:
            return None
        if part is None:
            raise ValueError(f"this scaling {missing}")
        return part

    # -- (de)serialisation for checkpoints (tensors and plain types only) --
    def to_state(self) -> dict[str, Any]:
        """Dict of tensors/str/float, loadable with ``torch.load(weights_only=True)``."""
        state = {
            "input_norm": self.input_norm,
            "target_norm": self.target_norm,
            **self.inputs.to_state(),
            **self.target.to_state(),
            **self.aux_stats.to_state(),
            "forced_window": float(self.forced_window),
        }
        if self.forced_weights is not None:
            state["forced_weights"] = torch.from_numpy(
                np.asarray(self.forced_weights, dtype=np.float64)
            )
        if not self.continuation:
            state["continuation"] = False
        return {**{k: state[k] for k in STATE_KEYS if k in state}, **state}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Normalization:
        """Inverse of :meth:`to_state`.

        Also reads checkpoints written before the forced split (no ``forced_window``) and
        before the coordinate fields (no ``aux``).
        """
        return cls(
            inputs=input_scaler(str(state["input_norm"])).from_state(state),
            target=target_scaler(str(state["target_norm"])).from_state(state),
            aux_stats=AuxStats.from_state(state),
            forced_window=float(state.get("forced_window", 0.0)),
            forced_weights=(
                None if state.get("forced_weights") is None
                else state["forced_weights"].numpy().astype(np.float64)
            ),
            continuation=bool(state.get("continuation", True)),
        )


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
    forced_method: str = "ensemble_mean",
    continuation: bool = True,
    aux_fields: tuple[str, ...] = AUX_FIELDS,
) -> Normalization:
    """Fit the scaling; every statistic comes from the training months only.

    ``x`` (T, C, h, w) and ``y`` (T, H, W) are all historical months (m3 m-3) at ``time``;
    ``train`` (T,) bool marks the training split. With ``forced_window`` > 0 the slow part
    of the model anomalies is split off first (:mod:`smcore.train.forced`); the smoothing
    uses the models' own series (inputs only, never the reference). ``forced_method``
    "climwip" weights the models' slow anomalies by their skill and independence on the
    training months (:func:`smcore.train.weights.climwip_weights`).
    """
    tr = np.asarray(train, dtype=bool)
    if not tr.any():
        raise InputError(prepared.path, "the training split holds no month")
    problem = forced_split_problem(forced_window, input_norm, target_norm)
    if problem:
        raise ConfigError(problem)
    st = prepared.static
    data = FitData(
        x=x,
        y=y,
        months=month_index(time),
        train=tr,
        climatology=static.climatology,
        land=static.land,
        x_mean=np.asarray(st["x_mean"].values, dtype=np.float32),
        x_std=np.array([safe_scale(s) for s in np.asarray(st["x_std"].values)], dtype=np.float32),
        y_mean=float(np.asarray(st["y_mean"].values)),
        y_std=safe_scale(float(np.asarray(st["y_std"].values))),
        source=prepared.path,
    )
    weights = None
    if forced_method == "climwip":
        years = np.asarray(time, dtype="datetime64[Y]").astype(np.int64) + 1970
        weights, _ = climwip_weights(
            x[tr], coarse_reference(y[tr], static.scale), data.months[tr], years[tr], static.clat
        )
    elif forced_method != "ensemble_mean":
        raise ConfigError(f"unknown forced_method {forced_method!r}")
    slow = forced = None
    if forced_window > 0:
        slow = slow_anomalies(time, data.x_departure, time, forced_window)
        forced = ensemble_on_fine(slow, static.land.shape, weights)
    return Normalization(
        inputs=input_scaler(input_norm).fit(data, slow),
        target=target_scaler(target_norm).fit(data, forced),
        aux_stats=AuxStats.fit(static, data.y_mean, data.y_std, aux_fields),
        forced_window=float(forced_window),
        forced_weights=weights,
        continuation=bool(continuation),
    )
