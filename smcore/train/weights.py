"""Model weights for the forced change: equal, or ClimWIP (skill and independence).

The product's forced change is a combination of the models' slow anomalies
(:mod:`smcore.train.forced`). ``train.forced_method = "ensemble_mean"`` gives every model the
same weight (the delta baseline); ``"climwip"`` weights them as ClimWIP does (Knutti et al.
2017; Brunner et al. 2020): a model gains weight with its historical skill and loses weight
with the number of models that look like it,

``w_i ∝ exp(-(D_i/σ_D)²) / (1 + Σ_{j≠i} exp(-(S_ij/σ_S)²))``,

where ``D_i`` is model ``i``'s distance to the reference and ``S_ij`` the distance between
models ``i`` and ``j``, both averaged over two diagnostics of the **training months only**
on the coarse grid, each divided by the median model-to-reference distance of that
diagnostic: the linear trend of the annual means (m3 m-3 per decade, the diagnostic that
bears on forced change) and the shape of the seasonal cycle (monthly climatology minus its
mean). ``σ_D`` and ``σ_S`` are the literature's typical values in these median-normalised
units (:data:`SIGMA_SKILL`, :data:`SIGMA_INDEPENDENCE`), not tuned here.
"""

from __future__ import annotations

import warnings

import numpy as np

from smcore.config import FORCED_METHODS

__all__ = [
    "FORCED_METHODS",
    "SIGMA_SKILL",
    "SIGMA_INDEPENDENCE",
    "coarse_reference",
    "climwip_weights",
]

SIGMA_SKILL = 0.5
SIGMA_INDEPENDENCE = 0.5
MIN_LAND_SHARE = 0.25
"""A coarse cell needs this share of valid fine cells for a reference value."""


def coarse_reference(y: np.ndarray, scale: int) -> np.ndarray:
    """Block means of the fine reference (T, H, W) m3 m-3 on the coarse grid (T, h, w).

    NaN where fewer than :data:`MIN_LAND_SHARE` of a block's fine cells are finite.
    """
    t, h, w = y.shape
    blocks = np.asarray(y, dtype=np.float64).reshape(t, h // scale, scale, w // scale, scale)
    ok = np.isfinite(blocks)
    n = ok.sum(axis=(2, 4))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ok, blocks, 0.0).sum(axis=(2, 4)) / n
    return np.where(n >= MIN_LAND_SHARE * scale * scale, mean, np.nan)


def _diagnostics(series: np.ndarray, months: np.ndarray, years: np.ndarray) -> list[np.ndarray]:
    """Trend of the annual means (per decade) and seasonal-cycle shape of (T, ..., h, w)."""
    uniq = np.unique(years)
    annual = np.stack([np.nanmean(series[years == y], axis=0) for y in uniq])
    t = (uniq - uniq.mean()) / 10.0
    trend = np.tensordot(t, annual - annual.mean(axis=0), axes=(0, 0)) / (t @ t)
    clim = np.stack([np.nanmean(series[months == m], axis=0) for m in range(12)])
    return [trend, clim - clim.mean(axis=0)]


def _rms(diff: np.ndarray, weight: np.ndarray, valid: np.ndarray) -> float:
    """Area-weighted RMS over the valid coarse cells (the last two axes) and leading axes."""
    d2 = np.where(valid, diff, 0.0) ** 2
    wsum = (weight * valid).sum()
    return float(np.sqrt((d2 * weight).sum() / (wsum * (d2.size // valid.size))))


def climwip_weights(
    x: np.ndarray,
    y_coarse: np.ndarray,
    months: np.ndarray,
    years: np.ndarray,
    clat: np.ndarray,
    *,
    sigma_skill: float = SIGMA_SKILL,
    sigma_independence: float = SIGMA_INDEPENDENCE,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """ClimWIP weights (C,) summing to 1, from the training months only.

    Parameters
    ----------
    x : (T, C, h, w) the models' coarse inputs, m3 m-3, training months only.
    y_coarse : (T, h, w) the reference on the coarse grid (:func:`coarse_reference`), m3 m-3.
    months : (T,) calendar months 0–11.
    years : (T,) calendar years.
    clat : (h,) coarse latitudes (degrees), for the cos(lat) area weights.
    sigma_skill, sigma_independence : σ_D and σ_S (median-normalised distances).

    Returns
    -------
    weights, details : ``details`` holds ``skill_distance`` (C,), ``model_distance`` (C, C)
    and the unnormalised ``skill`` and ``independence`` factors, for the record.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y_coarse, dtype=np.float64)
    months, years = np.asarray(months), np.asarray(years)
    valid = np.isfinite(y).all(axis=0) & np.isfinite(x).all(axis=(0, 1))
    if not valid.any():
        raise ValueError("no coarse cell where the reference and every model are finite")
    area = np.broadcast_to(np.cos(np.deg2rad(np.asarray(clat)))[:, None], valid.shape)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # sea cells: all-NaN means
        ref_diag = _diagnostics(y, months, years)
        mod_diag = _diagnostics(x, months, years)  # each (…, C, h, w)
    n = x.shape[1]
    skill = np.zeros(n)
    between = np.zeros((n, n))
    for ref_d, mod_d in zip(ref_diag, mod_diag, strict=True):
        model_axis = mod_d.ndim - 3
        to_ref = np.array([
            _rms(np.take(mod_d, i, axis=model_axis) - ref_d, area, valid) for i in range(n)
        ])
        scale = float(np.median(to_ref)) or 1.0
        skill += to_ref / scale
        for i in range(n):
            for j in range(i + 1, n):
                d = _rms(
                    np.take(mod_d, i, axis=model_axis) - np.take(mod_d, j, axis=model_axis),
                    area, valid,
                )
                between[i, j] = between[j, i] = d / scale
    skill /= len(ref_diag)
    between /= len(ref_diag)
    perf = np.exp(-((skill / sigma_skill) ** 2))
    similar = np.exp(-((between / sigma_independence) ** 2))
    np.fill_diagonal(similar, 0.0)
    indep = 1.0 / (1.0 + similar.sum(axis=1))
    w = perf * indep
    w = w / w.sum()
    details = {
        "skill_distance": skill, "model_distance": between, "skill": perf, "independence": indep,
    }
    return w.astype(np.float64), details
