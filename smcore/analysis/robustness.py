"""How robust a trend is across models, classified as the IPCC AR6 Atlas's advanced approach.

For every pixel, from the trends of the individual (bias-corrected) models:

- ``share_significant``: the share of models whose trend is significant (their own
  Mann–Kendall test at the analysis's level, the product's test) — AR6's "change greater than
  the variability threshold";
- ``share_agree``: the share of *all* models whose trend has the sign of the multi-model
  median trend (a zero trend agrees with neither sign);

and the class (Gutiérrez et al. 2021, IPCC AR6 WGI Atlas, Cross-Chapter Box Atlas.1):

- ``robust`` — at least 66 % of the models significant and at least 80 % agree on the sign;
- ``conflicting`` — at least 66 % significant but fewer than 80 % agree;
- ``no_robust_change`` — fewer than 66 % significant.

Pure functions on numpy arrays (any trailing shape); pixels where any model is missing are
NaN shares and :data:`MISSING` class.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "NO_ROBUST_CHANGE",
    "ROBUST",
    "CONFLICTING",
    "MISSING",
    "CLASS_MEANINGS",
    "SIGNIFICANT_SHARE",
    "AGREE_SHARE",
    "model_agreement",
    "ar6_class",
]

NO_ROBUST_CHANGE, ROBUST, CONFLICTING, MISSING = 0, 1, 2, -1
CLASS_MEANINGS = {NO_ROBUST_CHANGE: "no_robust_change", ROBUST: "robust", CONFLICTING: "conflicting"}
"""CF ``flag_values`` → ``flag_meanings`` of the class variable (``MISSING`` is the fill)."""
SIGNIFICANT_SHARE = 0.66
AGREE_SHARE = 0.80


def model_agreement(trends: np.ndarray, significant: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shares of models with a significant trend and agreeing with the median's sign.

    ``trends`` (model, ...) any unit per time; ``significant`` (model, ...) bool or 0/1.
    Returns two float arrays of the trailing shape, in [0, 1], NaN where a model's trend is
    missing.
    """
    t = np.asarray(trends, dtype=np.float64)
    sig = np.asarray(significant)
    if sig.shape != t.shape:
        raise ValueError(f"significance {sig.shape} does not match trends {t.shape}")
    ok = np.isfinite(t).all(axis=0)
    with np.errstate(invalid="ignore"):
        median_sign = np.sign(np.median(t, axis=0))
        share_sig = (sig != 0).mean(axis=0)
        share_agree = ((np.sign(t) == median_sign) & (median_sign != 0)).mean(axis=0)
    return np.where(ok, share_sig, np.nan), np.where(ok, share_agree, np.nan)


def ar6_class(share_significant: np.ndarray, share_agree: np.ndarray,
              significant_share: float = SIGNIFICANT_SHARE,
              agree_share: float = AGREE_SHARE) -> np.ndarray:
    """AR6 class per pixel (int8: :data:`ROBUST`, :data:`CONFLICTING`,
    :data:`NO_ROBUST_CHANGE`, :data:`MISSING` where a share is NaN)."""
    sig = np.asarray(share_significant, dtype=np.float64)
    agree = np.asarray(share_agree, dtype=np.float64)
    out = np.full(np.broadcast(sig, agree).shape, NO_ROBUST_CHANGE, dtype=np.int8)
    changed = sig >= significant_share
    out[changed & (agree >= agree_share)] = ROBUST
    out[changed & (agree < agree_share)] = CONFLICTING
    out[~(np.isfinite(sig) & np.isfinite(agree))] = MISSING
    return out
