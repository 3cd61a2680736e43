"""The slow (forced) part of the models' anomalies, kept apart from their monthly weather.

A network trained on historical months learns how the models' *weather* anomalies relate
to the reference's. That relation does not carry over to *forced* change: on the demo, with
plain anomalies as inputs, YNet amplified the 2071–2100 change of every scenario about
twofold (the shared weather is diluted across models, so the network learns to amplify the
ensemble signal, and applies the same gain to the trend). So, when ``forced_window_years``
> 0, the models' anomalies are split into

- a slow part: annual-mean anomalies smoothed by a local-linear (tricube-weighted) fit over a
  ``forced_window_years`` window, evaluated at each month, and
- the fast remainder, which is what the network sees.

The product is then ``training climatology + ensemble-mean slow anomaly (bilinear to the
fine grid) + network(fast anomalies)``: forced change enters with unit gain, like the
bias-corrected ensemble mean, and the network fuses and downscales the monthly variability.

Arrays: anomalies ``(T, C, h, w)`` m3 m-3 with times as numpy datetime64.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["decimal_years", "annual_means", "local_linear_matrix", "slow_anomalies"]


def decimal_years(time: np.ndarray) -> np.ndarray:
    """Mid-month decimal years of monthly time stamps, float64 (T,)."""
    t = pd.DatetimeIndex(np.asarray(time))
    return np.asarray(t.year + (t.month - 0.5) / 12.0, dtype=np.float64)


def annual_means(anom: np.ndarray, time: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Calendar-year means of monthly anomalies.

    Returns the years' mid-points (Y,) as decimal years and the means (Y, ...), float64.
    Years with only some months are averaged over the months present.
    """
    years = pd.DatetimeIndex(np.asarray(time)).year.to_numpy()
    uniq = np.unique(years)
    means = np.stack([np.asarray(anom[years == y], dtype=np.float64).mean(axis=0) for y in uniq])
    return uniq.astype(np.float64) + 0.5, means


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


def slow_anomalies(
    t_annual: np.ndarray, annual: np.ndarray, time: np.ndarray, window: float
) -> np.ndarray:
    """The slow anomaly (T, ...) float32 at monthly ``time`` from annual means (Y, ...)."""
    m = local_linear_matrix(t_annual, decimal_years(time), window)
    flat = annual.reshape(annual.shape[0], -1)
    return (m @ flat).reshape((m.shape[0],) + annual.shape[1:]).astype(np.float32)
