"""The slow (forced) part of the models' anomalies, kept apart from their monthly weather.

A network trained on historical months learns how the models' *weather* anomalies relate
to the reference's. That relation does not carry over to *forced* change: on the demo, with
plain anomalies as inputs, YNet amplified the 2071–2100 change of every scenario about
twofold (the shared weather is diluted across models, so the network learns to amplify the
ensemble signal, and applies the same gain to the trend); with only the annual-mean change
split off, it still distorted the changes of the seasonal cycle. So, when
``forced_window_years`` > 0, each model's anomalies are split into

- a slow part: for each calendar month separately, a local-linear (tricube-weighted) fit
  over a ``forced_window_years`` window of that month's anomalies, so that changes of the
  seasonal cycle are slow too, and
- the fast remainder, which is what the network sees.

The product is then ``training climatology + ensemble-mean slow anomaly (bilinear to the
fine grid) + network(fast anomalies)``: forced change enters with unit gain, like the
bias-corrected ensemble mean, and the network fuses and downscales the monthly variability.

The second half of the module reads the model series whose slow part a period needs from the
prepared store: a scenario continues the historical record, the historical record is continued
by the scenarios' mean, and :class:`AnomalySource` reads only the months a block needs.

Arrays: anomalies ``(T, C, h, w)`` m3 m-3 with times as numpy datetime64.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import xarray as xr

if TYPE_CHECKING:  # types only: this module imports without netCDF4, zarr, dask or cftime
    from smcore.prep.store import PreparedData
    from smcore.train.normalization import Normalization

__all__ = [
    "INPUT_DIMS",
    "month_index",
    "decimal_years",
    "local_linear_matrix",
    "window_margin",
    "slow_anomalies",
    "ensemble_on_fine",
    "scenario_continuation",
    "historical_slow",
    "slow_series",
    "AnomalySource",
    "anomaly_source",
]

INPUT_DIMS = ("time", "model", "clat", "clon")
"""Dimension order of the prepared store's model inputs."""


def month_index(time: Any) -> np.ndarray:
    """Calendar month (0 = January … 11 = December) of each time value, int64 (T,)."""
    return np.asarray(pd.DatetimeIndex(np.asarray(time)).month, dtype=np.int64) - 1


def decimal_years(time: np.ndarray) -> np.ndarray:
    """Mid-month decimal years of monthly time stamps, float64 (T,)."""
    t = pd.DatetimeIndex(np.asarray(time))
    return np.asarray(t.year + (t.month - 0.5) / 12.0, dtype=np.float64)


def local_linear_matrix(t_src: np.ndarray, t_dst: np.ndarray, window: float) -> np.ndarray:
    """Weights (T_dst, Y) of a tricube-weighted local-linear fit over ``window`` years.

    Row ``i`` gives the fitted value at ``t_dst[i]`` of a straight line fitted to the
    source points within ``window / 2`` years; a linear trend is reproduced exactly, also
    at the ends of the series (no end lag). Falls back to the weighted mean where fewer
    than two source points fall in the window, and to the nearest point where none does.
    """
    t_src = np.asarray(t_src, dtype=np.float64)
    t_dst = np.asarray(t_dst, dtype=np.float64)
    half = max(float(window) / 2.0, 0.5) + 0.5
    d = t_src[None, :] - t_dst[:, None]  # (T_dst, Y)
    w = np.clip(1.0 - (np.abs(d) / half) ** 3, 0.0, None) ** 3
    s0, s1, s2 = w.sum(1), (w * d).sum(1), (w * d * d).sum(1)
    det = s0 * s2 - s1 * s1
    lin = det > 1e-9 * np.maximum(s0 * s2, 1e-300)
    out = np.zeros_like(w)
    out[lin] = w[lin] * (s2[lin, None] - d[lin] * s1[lin, None]) / det[lin, None]
    mean = ~lin & (s0 > 0)
    out[mean] = w[mean] / s0[mean, None]
    none = s0 <= 0
    if none.any():
        out[none, np.argmin(np.abs(d[none]), axis=1)] = 1.0
    return out


def window_margin(window: float) -> np.timedelta64:
    """How far (in days) beyond a period the source months of its slow anomalies reach."""
    return np.timedelta64(int(np.ceil((max(float(window) / 2.0, 0.5) + 1.0) * 366)), "D")


def slow_anomalies(
    src_time: np.ndarray, src_anom: np.ndarray, dst_time: np.ndarray, window: float
) -> np.ndarray:
    """Slow anomalies (T_dst, ...) float32 at months ``dst_time`` from monthly anomalies.

    ``src_anom`` (T_src, ...) at ``src_time`` (datetime64 months) must cover ``dst_time``
    with :func:`window_margin` on both sides where the series allows. Each calendar month is
    smoothed separately across years (:func:`local_linear_matrix`).
    """
    src_t, dst_t = decimal_years(src_time), decimal_years(dst_time)
    src_m = pd.DatetimeIndex(np.asarray(src_time)).month.to_numpy()
    dst_m = pd.DatetimeIndex(np.asarray(dst_time)).month.to_numpy()
    src = np.asarray(src_anom, dtype=np.float64).reshape(len(src_t), -1)
    out = np.zeros((len(dst_t), src.shape[1]), dtype=np.float64)
    for m in np.unique(dst_m):
        d, k = dst_m == m, src_m == m
        if not k.any():
            raise ValueError(f"no source month {m} for the slow anomalies")
        out[d] = local_linear_matrix(src_t[k], dst_t[d], window) @ src[k]
    return out.reshape((len(dst_t),) + tuple(np.shape(src_anom)[1:])).astype(np.float32)


def ensemble_on_fine(
    slow: np.ndarray, shape: tuple[int, int], weights: np.ndarray | None = None
) -> np.ndarray:
    """Mean over models of coarse slow anomalies (T, C, h, w), bilinear to the fine grid (T, H, W).

    ``weights`` (C,), summing to 1, weight the models (:mod:`smcore.train.weights`); None:
    equal weights. Uses the same interpolation as the network's input path
    (``align_corners=False``).
    """
    if weights is None:
        mean = slow.mean(axis=1, keepdims=True)
    else:
        w = np.asarray(weights, dtype=np.float64)
        mean = np.tensordot(np.asarray(slow, dtype=np.float64), w, axes=(1, 0))[:, None]
    mean = np.ascontiguousarray(mean, dtype=np.float32)
    fine = F.interpolate(torch.from_numpy(mean), size=shape, mode="bilinear", align_corners=False)
    return fine[:, 0].numpy()


# -- the series behind the slow anomalies, read from the prepared store ----------------------
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
    """The inputs (time, model, clat, clon), in time order, behind the slow part of ``experiment``.

    A scenario continues the historical record across 2014/2015; the historical record is
    continued by the scenarios' mean (:func:`scenario_continuation`) unless
    ``norm.continuation`` is off. ``own`` is the experiment's own inputs when already at hand
    (default: read from ``prepared``).
    """
    if own is None:
        own = prepared.inputs(experiment).transpose(*INPUT_DIMS)
    if experiment != "historical":
        if "historical" not in prepared.experiments:
            return [own]
        return [prepared.inputs("historical").transpose(*INPUT_DIMS), own]
    if not norm.continuation:
        return [own]
    after = np.asarray(own["time"].values).max()
    cont = scenario_continuation(prepared, after, window_margin(norm.forced_window))
    return [own] if cont is None else [own, cont]


class AnomalySource:
    """Monthly model anomalies of consecutive experiments (historical, a scenario), read lazily.

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
        """Slow anomalies (T, C, h, w) at the months ``time``."""
        margin = window_margin(self.norm.forced_window)
        t0, t1 = np.asarray(time).min(), np.asarray(time).max()
        src_t, src = self.between(t0 - margin, t1 + margin)
        return slow_anomalies(src_t, src, time, self.norm.forced_window)


def anomaly_source(
    prepared: PreparedData, experiment: str, norm: Normalization, own: xr.DataArray | None = None
) -> AnomalySource | None:
    """Where the slow anomalies of ``experiment`` come from, or None when ``norm`` does not split.

    ``own``: the experiment's inputs (time, model, clat, clon) when already at hand.
    """
    if not norm.splits_forced:
        return None
    return AnomalySource(slow_series(prepared, experiment, norm, own=own), norm)
