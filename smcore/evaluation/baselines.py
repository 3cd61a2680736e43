"""Baseline products the network must beat: pure functions, fitted on the training split only.

Layout conventions: fine-grid fields of the scored pixels are ``(time, pixel)`` arrays (the
land pixels of the target grid, flattened in C order); model features are
``(pixel, time, model)``; soil moisture is always m3 m-3.

- :func:`bilinear_to_target` resamples coarse (2°) fields to the fine (0.25°) grid.
- ensemble mean: the mean over models of the resampled fields (resampling is linear, so
  resampling the coarse mean gives the same field).
- :func:`monthly_climatology` / :func:`expand_climatology`: the reference's training-period
  climatology of each calendar month, and its use as a product.
- :func:`bias_correction_offset`: reference minus ensemble-mean training climatology, added
  to the ensemble mean of any period.
- Ridge stacking (:func:`ridge_moments` → :func:`ridge_solve` → :func:`ridge_predict`):
  per-pixel ridge regression of a target on features plus an unpenalised intercept,
  accumulated chunk by chunk so that the training features are never held at once
  (``smcore.evaluation.fitting`` applies it to monthly anomalies).
- :func:`qdm_train` / :func:`qdm_adjust`: additive quantile delta mapping of the ensemble
  mean (xsdba, monthly grouping).

Nothing here selects periods: callers pass training (or validation) data explicitly, which
is what makes the fits free of test-period values (see tests/test_baselines.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from scipy.stats import rankdata

from smcore.regrid import linear_weights as bilinear_weights

__all__ = [
    "RIDGE_LAMBDAS",
    "bilinear_weights",
    "apply_weights",
    "bilinear_to_target",
    "monthly_climatology",
    "expand_climatology",
    "bias_correction_offset",
    "RidgeMoments",
    "RidgeFit",
    "ridge_moments",
    "ridge_solve",
    "ridge_predict",
    "ridge_select",
    "qdm_available",
    "qdm_train",
    "qdm_windows",
    "qdm_adjust",
    "nearest_level",
    "QDM_WINDOW_YEARS",
    "QDM_STEP_YEARS",
]

RIDGE_LAMBDAS: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
"""Ridge penalties tried on the validation split, relative to the mean feature variance."""


# -- resampling --------------------------------------------------------------------------
def apply_weights(values: np.ndarray, wlat: np.ndarray, wlon: np.ndarray) -> np.ndarray:
    """Apply separable weights to the last two axes: ``(..., clat, clon)`` → ``(..., lat, lon)``.

    Units are preserved; the result is float64.
    """
    v = np.asarray(values, dtype=np.float64)
    return np.matmul(wlat, v @ wlon.T)


def bilinear_to_target(coarse: xr.DataArray, lat: np.ndarray, lon: np.ndarray) -> xr.DataArray:
    """Bilinearly resample a coarse field ``(..., clat, clon)`` to target centres ``(lat, lon)``.

    Target cells beyond the outermost coarse centres (the outer 0.875° of the domain for
    the paper's grids) take the value at the nearest coarse centre along each axis
    (constant extrapolation). Units and other attributes are kept.
    """
    wlat = bilinear_weights(coarse["clat"].values, lat)
    wlon = bilinear_weights(coarse["clon"].values, lon)
    other = [d for d in coarse.dims if d not in ("clat", "clon")]
    data = apply_weights(coarse.transpose(*other, "clat", "clon").values, wlat, wlon)
    coords = {d: coarse[d] for d in other if d in coarse.coords}
    coords.update(lat=np.asarray(lat), lon=np.asarray(lon))
    return xr.DataArray(data, dims=(*other, "lat", "lon"), coords=coords, attrs=dict(coarse.attrs))


# -- climatology and bias correction -----------------------------------------------------
def monthly_climatology(values: np.ndarray, months: np.ndarray) -> np.ndarray:
    """Mean of each calendar month, NaN ignored.

    Parameters
    ----------
    values : numpy.ndarray
        ``(time, pixel)``, m3 m-3.
    months : numpy.ndarray
        Calendar month (1…12) of each time step.

    Returns
    -------
    numpy.ndarray
        ``(12, pixel)`` float64, NaN for a calendar month with no finite value.
    """
    x = np.asarray(values, dtype=np.float64)
    months = np.asarray(months)
    if months.shape != (x.shape[0],):
        raise ValueError(f"months has shape {months.shape}, expected ({x.shape[0]},)")
    out = np.full((12, *x.shape[1:]), np.nan)
    for m in range(1, 13):
        block = x[months == m]
        if block.shape[0] == 0:
            continue
        ok = np.isfinite(block)
        n = ok.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[m - 1] = np.where(n > 0, np.where(ok, block, 0.0).sum(axis=0) / n, np.nan)
    return out


def expand_climatology(climatology: np.ndarray, months: np.ndarray) -> np.ndarray:
    """The climatology of each time step's calendar month: ``(12, pixel)`` → ``(time, pixel)``."""
    return np.asarray(climatology)[np.asarray(months) - 1]


def bias_correction_offset(
    model_train: np.ndarray, reference_train: np.ndarray, months_train: np.ndarray
) -> np.ndarray:
    """Per-pixel, per-calendar-month offset ``clim(reference) − clim(model)`` (m3 m-3).

    Both inputs are ``(time, pixel)`` over the training months only; the result is
    ``(12, pixel)`` and is added to the model (ensemble mean) of any period.
    """
    return monthly_climatology(reference_train, months_train) - monthly_climatology(
        model_train, months_train
    )


# -- ridge stacking ----------------------------------------------------------------------
@dataclass(frozen=True)
class RidgeMoments:
    """Sums over time of one pixel's features ``x`` (M) and target ``y``, for each pixel.

    ``n (P,)``, ``sx (P, M)``, ``sy (P,)``, ``sxx (P, M, M)``, ``sxy (P, M)``; float64.
    """

    n: np.ndarray
    sx: np.ndarray
    sy: np.ndarray
    sxx: np.ndarray
    sxy: np.ndarray

    def __add__(self, other: RidgeMoments) -> RidgeMoments:
        return RidgeMoments(
            self.n + other.n,
            self.sx + other.sx,
            self.sy + other.sy,
            self.sxx + other.sxx,
            self.sxy + other.sxy,
        )


@dataclass(frozen=True)
class RidgeFit:
    """Per-pixel ridge coefficients: ``coef (P, M)``, ``intercept (P,)`` (m3 m-3), ``lam (P,)``."""

    coef: np.ndarray
    intercept: np.ndarray
    lam: np.ndarray


def ridge_moments(features: np.ndarray, target: np.ndarray) -> RidgeMoments:
    """Accumulate the sufficient statistics of one chunk of months.

    Parameters
    ----------
    features : numpy.ndarray
        ``(pixel, time, model)``, m3 m-3.
    target : numpy.ndarray
        ``(time, pixel)``, m3 m-3; months where the target or any feature is not finite
        are left out for that pixel.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64).T  # (P, T)
    if x.shape[:2] != y.shape:
        raise ValueError(f"features {x.shape} do not match target {y.T.shape}")
    w = np.isfinite(y) & np.isfinite(x).all(axis=2)
    x = np.where(w[..., None], x, 0.0)
    y = np.where(w, y, 0.0)
    xt = np.swapaxes(x, 1, 2)  # (P, M, T)
    return RidgeMoments(
        n=w.sum(axis=1).astype(np.float64),
        sx=x.sum(axis=1),
        sy=y.sum(axis=1),
        sxx=np.matmul(xt, x),
        sxy=np.matmul(xt, y[..., None])[..., 0],
    )


def ridge_solve(moments: RidgeMoments, lam: float | np.ndarray) -> RidgeFit:
    """Solve the centred ridge normal equations of every pixel at once.

    ``β = (C + λ·s·I)⁻¹ c`` with ``C``, ``c`` the feature covariance and feature–target
    covariance, and ``s = trace(C)/M`` (so ``λ`` is relative to the mean feature variance
    and features that are constant in time get zero weight); the intercept is not
    penalised: ``b = ȳ − x̄·β``. ``lam`` is a scalar or one value per pixel.
    """
    n = np.maximum(moments.n, 1.0)
    xm = moments.sx / n[:, None]
    ym = moments.sy / n
    cov = moments.sxx / n[:, None, None] - xm[:, :, None] * xm[:, None, :]
    cxy = moments.sxy / n[:, None] - xm * ym[:, None]
    n_feat = cov.shape[-1]
    scale = np.trace(cov, axis1=1, axis2=2) / n_feat + 1e-12
    lam_p = np.broadcast_to(np.asarray(lam, dtype=np.float64), n.shape)
    a = cov + (lam_p * scale)[:, None, None] * np.eye(n_feat)
    coef = np.linalg.solve(a, cxy[..., None])[..., 0]
    intercept = ym - np.einsum("pm,pm->p", xm, coef)
    empty = moments.n < 1
    coef[empty] = np.nan
    intercept[empty] = np.nan
    return RidgeFit(coef=coef, intercept=intercept, lam=np.array(lam_p))


def ridge_predict(fit: RidgeFit, features: np.ndarray) -> np.ndarray:
    """Predict ``(time, pixel)`` (m3 m-3) from features ``(pixel, time, model)``."""
    x = np.asarray(features, dtype=np.float64)
    return (np.matmul(x, fit.coef[..., None])[..., 0] + fit.intercept[:, None]).T


def ridge_select(fits: list[RidgeFit], val_sse: np.ndarray) -> RidgeFit:
    """Pick, for each pixel, the fit with the smallest validation squared error.

    ``val_sse`` is ``(len(fits), pixel)``; pixels with no validation data get the middle
    penalty of the grid.
    """
    sse = np.where(np.isfinite(val_sse), val_sse, np.inf)
    best = np.argmin(sse, axis=0)
    no_val = ~np.isfinite(val_sse).any(axis=0)
    best[no_val] = len(fits) // 2
    pix = np.arange(best.size)
    coef = np.stack([f.coef for f in fits])[best, pix]
    intercept = np.stack([f.intercept for f in fits])[best, pix]
    lam = np.stack([f.lam for f in fits])[best, pix]
    return RidgeFit(coef=coef, intercept=intercept, lam=lam)


# -- quantile delta mapping --------------------------------------------------------------
def qdm_available() -> bool:
    """Whether xsdba (quantile delta mapping) can be imported."""
    try:
        import xsdba  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means "not available"
        return False
    return True


def _series(values: np.ndarray, times: np.ndarray) -> xr.DataArray:
    return xr.DataArray(
        np.asarray(values, dtype=np.float64),
        dims=("time", "loc"),
        coords={"time": np.asarray(times, dtype="datetime64[ns]")},
        attrs={"units": "m3 m-3"},
    )


def qdm_train(
    reference_train: np.ndarray,
    model_train: np.ndarray,
    times_train: np.ndarray,
    *,
    nquantiles: int = 20,
) -> Any:
    """Train additive quantile delta mapping (Cannon et al. 2015) per pixel and calendar month.

    Parameters
    ----------
    reference_train, model_train : numpy.ndarray
        ``(time, pixel)`` over the training months only, m3 m-3.
    times_train : numpy.ndarray
        datetime64 of each training month.
    nquantiles : int
        Number of quantiles of each calendar month's distribution.

    Returns
    -------
    xsdba.QuantileDeltaMapping
        The trained adjustment (its ``ds`` holds ``af`` and ``hist_q``).
    """
    import xsdba

    ref = _series(reference_train, times_train)
    hist = _series(model_train, times_train)
    return xsdba.QuantileDeltaMapping.train(
        ref, hist, nquantiles=nquantiles, group="time.month", kind="+"
    )


QDM_WINDOW_YEARS = 30
"""Years of the moving window in which a long series is adjusted (its quantiles are its own)."""

QDM_STEP_YEARS = 10
"""Years kept from each window: the central decade (the first and last windows keep more)."""


def qdm_windows(
    years: np.ndarray, window: int = QDM_WINDOW_YEARS, step: int = QDM_STEP_YEARS
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Moving windows of a monthly series with calendar ``years`` (time,).

    Returns ``[(window_mask, keep_mask), ...]`` (bool, (time,)): each ``step``-year block
    is adjusted within the ``window`` years centred on it (shifted to stay inside the series;
    the whole series when it is shorter than ``window``), and only the block is kept. The
    blocks cover every time step exactly once.
    """
    y = np.asarray(years, dtype=np.int64)
    if y.size == 0:
        return []
    y0, y1 = int(y.min()), int(y.max())
    out = []
    for b0 in range(y0, y1 + 1, step):
        b1 = min(b0 + step - 1, y1)
        w0 = b0 - (window - (b1 - b0 + 1)) // 2
        w0 = max(y0, min(w0, y1 - window + 1))
        w1 = min(y1, w0 + window - 1)
        out.append(((y >= w0) & (y <= w1), (y >= b0) & (y <= b1)))
    return out


def qdm_adjust(
    trained: Any,
    model: np.ndarray,
    times: np.ndarray,
    *,
    window: int = QDM_WINDOW_YEARS,
    step: int = QDM_STEP_YEARS,
) -> np.ndarray:
    """Adjust a model series ``(time, pixel)`` (m3 m-3) with a trained QDM; same shape out.

    A series longer than ``window`` years is adjusted in moving windows
    (:func:`qdm_windows`): quantile delta mapping carries each quantile's change relative to
    the simulation's own distribution, which for 2015–2100 must be the distribution of the
    years around each value, not of 86 years at once.
    """
    t = np.asarray(times, dtype="datetime64[ns]")
    years = t.astype("datetime64[Y]").astype(np.int64) + 1970
    months = t.astype("datetime64[M]").astype(np.int64) % 12
    values = np.asarray(model, dtype=np.float64)
    af = np.asarray(trained.ds["af"].transpose("month", "quantiles", "loc").values)
    levels = np.asarray(trained.ds["quantiles"].values, dtype=np.float64)
    out = np.empty_like(values)
    for in_window, keep in qdm_windows(years, window, step):
        adjusted = _qdm_apply(af, levels, values[in_window], months[in_window])
        out[keep] = adjusted[keep[in_window]]
    return out


def _qdm_apply(af: np.ndarray, levels: np.ndarray, sim: np.ndarray, months: np.ndarray) -> np.ndarray:
    """Additive QDM of one window, as xsdba's ``adjust(interp="nearest",
    extrapolation="constant")`` computes it, vectorised over pixels.

    Each value's quantile within its calendar month of the window (xsdba's percentage rank of
    the finite values) picks the adjustment factor of the nearest trained quantile level.
    ``af`` (12, levels, pixel), ``sim`` (time, pixel) m3 m-3, ``months`` (time,) 0–11.
    (xsdba does the same through a 2-D ``griddata`` per pixel, about 50x slower.)
    """
    out = np.full_like(sim, np.nan)
    pixels = np.arange(sim.shape[1])[None, :]
    for m in range(12):
        rows = np.flatnonzero(months == m)
        if rows.size == 0:
            continue
        v = sim[rows]
        with np.errstate(invalid="ignore", divide="ignore"):
            # xsdba's percentage rank: average rank / count, then stretched so that its
            # maximum stays and its minimum becomes 0 (ties at either end included)
            pct = rankdata(v, axis=0, method="average", nan_policy="omit") / np.isfinite(v).sum(0)
            lo, hi = np.nanmin(pct, axis=0), np.nanmax(pct, axis=0)
            tau = hi * (pct - lo) / (hi - lo)
        k = nearest_level(levels, np.nan_to_num(tau, nan=0.5))
        out[rows] = np.where(np.isfinite(tau), v + af[m][k, pixels], np.nan)
    return out


def nearest_level(levels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index of the level nearest each value, the lower one on a tie.

    As ``np.abs(values[..., None] - levels).argmin(-1)``, without its (..., levels) array.
    ``levels`` (n,) strictly increasing; ``values`` any shape; the indices have its shape.
    """
    if levels.size == 1:
        return np.zeros(values.shape, dtype=np.intp)
    upper = np.searchsorted(levels, values, side="left").clip(1, levels.size - 1)
    lower = upper - 1
    return np.where(np.abs(values - levels[upper]) < np.abs(values - levels[lower]), upper, lower)
