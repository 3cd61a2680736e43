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
NaN shares and :data:`MISSING` class. :func:`robustness_maps` applies them to models on their
coarse grid and carries the shares to the target grid with the same bilinear weights that
resample the models (the SSMI is standardised per pixel and calendar month, so a model's
SSMI, and its trend, is the same before and after the per-pixel bias correction).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import ndimage

from smcore.regrid import linear_weights

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
    "robustness_maps",
]

NO_ROBUST_CHANGE, ROBUST, CONFLICTING, MISSING = 0, 1, 2, -1
CLASS_MEANINGS = {
    NO_ROBUST_CHANGE: "no_robust_change", ROBUST: "robust", CONFLICTING: "conflicting"
}
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


def _fill_nearest(values: np.ndarray) -> np.ndarray:
    """NaN cells of the last two axes take the value of the nearest finite cell (per map)."""
    out = np.array(values, dtype=np.float64)
    flat = out.reshape(-1, *out.shape[-2:])
    for k, field in enumerate(flat):
        gaps = ~np.isfinite(field)
        if gaps.all() or not gaps.any():
            continue
        idx = ndimage.distance_transform_edt(gaps, return_distances=False, return_indices=True)
        flat[k] = field[tuple(idx)]
    return out


def robustness_maps(
    trend: xr.DataArray, significant: xr.DataArray, lat: np.ndarray, lon: np.ndarray,
    land: xr.DataArray,
) -> xr.Dataset:
    """AR6 robustness of the models' trends, on the target grid.

    Parameters
    ----------
    trend, significant : DataArray (model, ..., clat, clon)
        Every model's trend (any unit per time) and its field-significance mask (1/0/NaN) on
        the models' coarse grid (ascending ``clat``/``clon``, degrees).
    lat : target cell centres (degrees north, ascending).
    lon : target cell centres (degrees east, ascending).
    land : DataArray (..., lat, lon) bool
        Where the product has a trend; elsewhere the shares are NaN and the class MISSING.

    Returns
    -------
    Dataset (..., lat, lon): ``share_significant`` and ``share_agree`` (float32, 0–1) and
    ``robustness`` (int8 class, :data:`MISSING` outside ``land``).
    """
    dims = [d for d in trend.dims if d not in ("model", "clat", "clon")]
    t = trend.transpose("model", *dims, "clat", "clon")
    sig = significant.transpose("model", *dims, "clat", "clon").fillna(0.0)
    share_sig, share_agree = model_agreement(t.values, sig.values)
    wlat = linear_weights(t["clat"].values, np.asarray(lat))
    wlon = linear_weights(t["clon"].values, np.asarray(lon))

    def to_target(share: np.ndarray) -> np.ndarray:
        return np.clip(np.matmul(wlat, _fill_nearest(share) @ wlon.T), 0.0, 1.0)

    coords = {d: trend[d] for d in dims if d in trend.coords}
    coords.update(lat=np.asarray(lat), lon=np.asarray(lon))
    inside = land.transpose(*dims, "lat", "lon").values.astype(bool)
    fine_sig = np.where(inside, to_target(share_sig), np.nan)
    fine_agree = np.where(inside, to_target(share_agree), np.nan)
    out_dims = (*dims, "lat", "lon")
    return xr.Dataset(
        {
            "share_significant": (out_dims, fine_sig.astype(np.float32)),
            "share_agree": (out_dims, fine_agree.astype(np.float32)),
            "robustness": (out_dims, ar6_class(fine_sig, fine_agree)),
        },
        coords=coords,
    )
