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

Arrays: anomalies ``(T, C, h, w)`` m3 m-3 with times as numpy datetime64.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["decimal_years", "local_linear_matrix", "window_margin", "slow_anomalies"]


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
