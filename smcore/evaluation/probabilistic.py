"""Probabilistic scores: how well a predictive distribution of soil moisture is calibrated.

A forecast at one (month, pixel) is either an **ensemble** of equally likely values (``members``
on the first axis: e.g. the bias-corrected CMIP6 models, or the members of a deep ensemble) or a
**Gaussian** (mean ``mu`` and standard deviation ``sigma``). Values are volumetric soil moisture
(m3 m-3), laid out as ``(time, pixel)`` or any shape that broadcasts with the observation; pairs
where the observation or the forecast is not finite are left out of every score, as in
:mod:`smcore.evaluation.metrics`. Sums are accumulated in float64.

- :func:`crps_ensemble`: the continuous ranked probability score of the ensemble's empirical
  distribution, ``E|X − y| − ½ E|X − X'|`` (Gneiting & Raftery 2007, Eq. 21), in m3 m-3;
  :func:`crps_gaussian` its closed form for a normal distribution. Lower is better; for a
  single value it equals the absolute error, so CRPS and MAE share a scale.
- :func:`interval_coverage` and :func:`interval_width`: the share of observations inside a
  central interval (e.g. 5–95 %: 0.90 when calibrated) and its mean width (m3 m-3).
- :func:`pit_ensemble` and :func:`pit_gaussian`: the probability integral transform (the
  forecast's CDF at the observation, ranks randomised between tied members), whose histogram
  (:func:`pit_histogram`) is flat when the forecast is calibrated, U-shaped when it is too
  narrow and dome-shaped when too wide.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

__all__ = [
    "crps_ensemble",
    "crps_sorted",
    "crps_gaussian",
    "ensemble_quantiles",
    "interval_coverage",
    "interval_width",
    "pit_ensemble",
    "pit_gaussian",
    "pit_histogram",
    "randomised_rank",
]

_SQRT_PI = math.sqrt(math.pi)


def _finite_pairs(members: np.ndarray, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Members (M, n) and observations (n,) where the observation and every member are finite."""
    ens = np.asarray(members, dtype=np.float64)
    y = np.asarray(obs, dtype=np.float64)
    if ens.ndim < 1 or ens.shape[1:] != y.shape:
        raise ValueError(f"members {ens.shape} do not match observations {y.shape}")
    ens = ens.reshape(ens.shape[0], -1)
    y = y.reshape(-1)
    ok = np.isfinite(y) & np.isfinite(ens).all(axis=0)
    return ens[:, ok], y[ok]


def crps_ensemble(members: np.ndarray, obs: np.ndarray, *, mean: bool = True) -> np.ndarray | float:
    """CRPS of an ensemble's empirical distribution (m3 m-3).

    ``members``: (M, ...) values, ``obs``: (...) the observation. Computed from the sorted
    members, ``(1/M) Σ|x_i − y| − (1/M²) Σ_i (2i − M − 1) x_(i)`` (i = 1…M), which equals
    ``E|X − y| − ½ E|X − X'|`` without the M² pairs. ``mean``: the mean over every finite
    (member set, observation) pair (NaN when there is none); else the per-pair values (finite
    pairs only, flattened).
    """
    ens, y = _finite_pairs(members, obs)
    if ens.shape[0] == 0:
        raise ValueError("an ensemble needs at least one member")
    per = crps_sorted(np.sort(ens, axis=0), y)
    if not mean:
        return per
    return float(per.mean()) if per.size else float("nan")


def crps_sorted(xs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-pair CRPS (m3 m-3) of members ``xs`` (M, n) already sorted along axis 0, all finite,
    at observations ``y`` (n,): the formula of :func:`crps_ensemble`."""
    m = xs.shape[0]
    weights = (2 * np.arange(1, m + 1) - m - 1).astype(np.float64)[:, None] / m**2
    return np.abs(xs - y).mean(axis=0) - (weights * xs).sum(axis=0)


def crps_gaussian(mu: np.ndarray, sigma: np.ndarray, obs: np.ndarray, *, mean: bool = True
                  ) -> np.ndarray | float:
    """CRPS of a normal distribution N(``mu``, ``sigma``²) at ``obs`` (m3 m-3).

    ``σ [z (2Φ(z) − 1) + 2φ(z) − 1/√π]`` with ``z = (y − μ)/σ``; σ = 0 gives |y − μ|.
    Arrays broadcast; non-finite pairs and negative σ are left out (``mean``: their mean,
    else the finite values flattened).
    """
    mu, sigma, y = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (mu, sigma, obs)))
    ok = np.isfinite(mu) & np.isfinite(sigma) & np.isfinite(y) & (sigma >= 0)
    mu, sigma, y = mu[ok], sigma[ok], y[ok]
    err = y - mu
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sigma > 0, err / sigma, 0.0)
    pdf = np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    per = np.where(sigma > 0, sigma * (z * (2 * ndtr(z) - 1) + 2 * pdf - 1 / _SQRT_PI), np.abs(err))
    if not mean:
        return per
    return float(per.mean()) if per.size else float("nan")


def ensemble_quantiles(members: np.ndarray, q: tuple[float, ...] | list[float]) -> np.ndarray:
    """Quantiles ``q`` (fractions) of an ensemble over its first axis: (len(q), ...).

    Linear interpolation between order statistics (numpy's default); NaN where a member is.
    """
    ens = np.asarray(members, dtype=np.float64)
    out = np.quantile(ens, np.asarray(q, dtype=np.float64), axis=0)
    return np.where(np.isfinite(ens).all(axis=0), out, np.nan)


def _finite_interval(lo: np.ndarray, hi: np.ndarray, obs: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lo, hi, y = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (lo, hi, obs)))
    ok = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(y)
    if np.any(lo[ok] > hi[ok]):
        raise ValueError("interval: a lower bound lies above its upper bound")
    return lo[ok], hi[ok], y[ok]


def interval_coverage(lo: np.ndarray, hi: np.ndarray, obs: np.ndarray) -> float:
    """Share of finite observations with ``lo ≤ y ≤ hi`` (NaN when there is none)."""
    lo, hi, y = _finite_interval(lo, hi, obs)
    return float(((y >= lo) & (y <= hi)).mean()) if y.size else float("nan")


def interval_width(lo: np.ndarray, hi: np.ndarray, obs: np.ndarray | None = None) -> float:
    """Mean width ``hi − lo`` (m3 m-3) over the pairs :func:`interval_coverage` scores."""
    lo, hi, _ = _finite_interval(lo, hi, np.zeros(np.shape(lo)) if obs is None else obs)
    return float((hi - lo).mean()) if lo.size else float("nan")


def pit_ensemble(members: np.ndarray, obs: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """PIT values of ``obs`` in the ensemble ``members`` (M, ...), finite pairs flattened.

    With ``b`` members below and ``e`` equal to the observation, the PIT is drawn uniformly
    from ``[b/M, (b + e)/M]`` (``seed`` fixes the draw), the randomised rank that makes a
    calibrated ensemble's PIT exactly uniform, ties included.
    """
    ens, y = _finite_pairs(members, obs)
    return randomised_rank((ens < y).sum(axis=0), (ens == y).sum(axis=0), ens.shape[0], seed)


def randomised_rank(below: np.ndarray, equal: np.ndarray, m: int, seed: int = 0) -> np.ndarray:
    """PIT values from the counts of an ensemble's ``m`` members below and equal to each value.

    Each is drawn uniformly from ``[below/m, (below + equal)/m]`` (``seed`` fixes the draw),
    the randomised rank of :func:`pit_ensemble`.
    """
    u = np.random.default_rng(seed).random(np.shape(below))
    return (below + u * equal) / m


def pit_gaussian(mu: np.ndarray, sigma: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """PIT values ``Φ((y − μ)/σ)`` of a normal forecast, finite pairs with σ > 0 flattened."""
    mu, sigma, y = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (mu, sigma, obs)))
    ok = np.isfinite(mu) & np.isfinite(sigma) & np.isfinite(y) & (sigma > 0)
    return ndtr((y[ok] - mu[ok]) / sigma[ok])


def pit_histogram(pit: np.ndarray, bins: int = 10) -> np.ndarray:
    """Relative frequencies of PIT values in ``bins`` equal bins of [0, 1] (sum 1; 1/bins each
    when calibrated). A value of exactly 1 falls in the last bin."""
    p = np.asarray(pit, dtype=np.float64).reshape(-1)
    p = p[np.isfinite(p)]
    if p.size == 0:
        return np.full(bins, np.nan)
    counts = np.bincount(np.minimum((p * bins).astype(int), bins - 1), minlength=bins)
    return counts / p.size
