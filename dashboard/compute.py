"""Small pure helpers the views share: bilinear upsampling, labels, ordering, colour limits.

Nothing here reads files or builds plots; inputs and outputs are numpy / xarray / pandas.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from smcore.evaluation.baselines import apply_weights, bilinear_weights

__all__ = [
    "upsample",
    "point_series",
    "month_labels",
    "order_timescales",
    "symmetric_limit",
    "robust_range",
    "product_kind",
    "nearest_index",
]

_SEASONS = ("annual", "MAM", "JJA", "SON", "DJF")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def upsample(
    coarse: xr.DataArray, lat: np.ndarray, lon: np.ndarray, mask: np.ndarray | None = None
) -> xr.DataArray:
    """Bilinear interpolation of a field on ``(…, clat, clon)`` to ``(…, lat, lon)``.

    Uses the evaluation's bilinear baseline (:mod:`smcore.evaluation.baselines`: clamped at the
    edges), so the explorer shows exactly what the evaluation scores. Units are kept; cells
    where ``mask`` (lat, lon) is 0 or False become NaN.
    """
    wlat = bilinear_weights(coarse["clat"].values, lat)
    wlon = bilinear_weights(coarse["clon"].values, lon)
    values = apply_weights(coarse.values, wlat, wlon)
    if mask is not None:
        values = np.where(np.asarray(mask) > 0, values, np.nan)
    dims = [d for d in coarse.dims if d not in ("clat", "clon")] + ["lat", "lon"]
    coords = {d: coarse[d] for d in dims[:-2] if d in coarse.coords}
    coords.update(lat=np.asarray(lat), lon=np.asarray(lon))
    return xr.DataArray(
        values.astype(np.float32),
        dims=dims,
        coords=coords,
        attrs=dict(coarse.attrs),
        name=coarse.name,
    )


def point_series(coarse: xr.DataArray, lat: float, lon: float) -> np.ndarray:
    """Bilinear value of a ``(time, clat, clon)`` field at one point, for every time step."""
    wlat = bilinear_weights(coarse["clat"].values, np.array([lat]))
    wlon = bilinear_weights(coarse["clon"].values, np.array([lon]))
    return apply_weights(coarse.values, wlat, wlon)[:, 0, 0]


def month_labels(time: Sequence | np.ndarray | pd.Index) -> list[str]:
    """``YYYY-MM`` label of each time step (mid-month or first-of-month alike).

    The labels of a ``datetime64`` axis are made once per axis (the explorer asks for the same
    product's 1,000 labels several times per month shown); a new list is returned each time.
    """
    values = np.asarray(time)
    if values.dtype.kind == "M":
        return list(_labels_of(values.dtype.str, values.tobytes()))
    return _labels(values)


def _labels(values: np.ndarray) -> list[str]:
    return [f"{t.year:04d}-{t.month:02d}" for t in pd.DatetimeIndex(values)]


@functools.lru_cache(maxsize=64)
def _labels_of(dtype: str, raw: bytes) -> tuple[str, ...]:
    return tuple(_labels(np.frombuffer(raw, dtype=dtype)))


def order_timescales(labels: Iterable[str]) -> list[str]:
    """Order change-rate time scales as annual, MAM…DJF, Jan…Dec; unknown labels last, as given."""

    def key(item: tuple[int, str]) -> tuple[int, int]:
        pos, lab = item
        low = str(lab).strip().lower()
        for i, s in enumerate(_SEASONS):
            if low == s.lower():
                return (0, i)
        for i, m in enumerate(_MONTHS):
            if low[:3] == m:
                return (1, i)
        if low.isdigit() and 1 <= int(low) <= 12:
            return (1, int(low) - 1)
        return (2, pos)

    unique = list(dict.fromkeys(str(v) for v in labels))
    return [lab for _, lab in sorted(enumerate(unique), key=key)]


def symmetric_limit(
    values: np.ndarray | xr.DataArray, q: float = 98.0, floor: float = 1e-6
) -> float:
    """Half-width of a colour range centred on zero: the ``q``-th percentile of ``|values|``."""
    v = np.abs(np.asarray(values, dtype=float))
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 1.0
    return float(max(np.percentile(v, q), floor))


def robust_range(values: np.ndarray | xr.DataArray, q: float = 1.0) -> tuple[float, float]:
    """(low, high) = the ``q``-th and ``100 − q``-th percentiles of the finite values."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (0.0, 1.0)
    lo, hi = np.percentile(v, [q, 100 - q])
    if hi <= lo:
        hi = lo + 1e-6
    return (float(lo), float(hi))


def product_kind(name: str, models: Iterable[str]) -> str:
    """Role of a product in the evaluation: reference, CMIP6_DL, ensemble mean, ESM or baseline."""
    if name == "reference":
        return "reference"
    if name == "CMIP6_DL":
        return "CMIP6_DL"
    if name == "ensemble_mean":
        return "ensemble mean"
    if name in set(models):
        return "ESM"
    return "baseline"


def nearest_index(values: np.ndarray, x: float) -> int:
    """Index of the element of ``values`` nearest to ``x``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return int(np.nanargmin(np.abs(np.asarray(values, dtype=float) - x)))
