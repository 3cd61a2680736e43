"""Fit the baselines on training months and predict them for any months (pure functions).

Products (names as in ``metrics.csv``): ``ensemble_mean``, ``bias_corrected_ensemble_mean``,
``era5_train_climatology``, ``ridge_stacking`` and ``qdm_ensemble_mean``; see
docs/evaluation.md. :func:`fit_baselines` receives :class:`~smcore.evaluation.data.FitData`,
which holds training and validation months only.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from smcore.evaluation import baselines as bl
from smcore.evaluation.data import EvalGrid, FitData, chunks, months_of, times_of

__all__ = [
    "DL",
    "ENSEMBLE_MEAN",
    "BC_EM",
    "CLIM",
    "RIDGE",
    "QDM",
    "BASELINES",
    "BaselineFits",
    "fit_baselines",
    "predict_baselines",
]

DL = "CMIP6_DL"
ENSEMBLE_MEAN = "ensemble_mean"
BC_EM = "bias_corrected_ensemble_mean"
CLIM = "era5_train_climatology"
RIDGE = "ridge_stacking"
QDM = "qdm_ensemble_mean"
BASELINES: tuple[str, ...] = (BC_EM, CLIM, RIDGE, QDM)
"""Baseline products in the order of ``metrics.csv`` (QDM only when xsdba imports)."""


@dataclass
class BaselineFits:
    """Fitted parameters of every baseline (all from training months; λ from validation).

    ``ref_clim`` and ``offset`` are ``(12, pixel)`` m3 m-3; ``x_clim`` the models' coarse
    training climatology ``(12, model, clat, clon)`` m3 m-3; ``ridge`` per-pixel coefficients
    on the models' anomalies; ``qdm`` the trained xsdba adjustment or None.
    """

    ref_clim: np.ndarray
    offset: np.ndarray
    x_clim: np.ndarray
    ridge: bl.RidgeFit
    qdm: Any = None
    qdm_note: str = ""

    def arrays(self) -> dict[str, np.ndarray]:
        """The fitted numbers, by name (for audits and tests)."""
        out = {
            "ref_clim": self.ref_clim,
            "offset": self.offset,
            "x_clim": self.x_clim,
            "ridge_coef": self.ridge.coef,
            "ridge_intercept": self.ridge.intercept,
            "ridge_lam": self.ridge.lam,
        }
        if self.qdm is not None:
            out["qdm_af"] = np.asarray(self.qdm.ds["af"].values)
            out["qdm_hist_q"] = np.asarray(self.qdm.ds["hist_q"].values)
        return out


def _features(coarse: np.ndarray, grid: EvalGrid) -> np.ndarray:
    """Coarse ``(time, model, clat, clon)`` → features ``(pixel, time, model)``."""
    return np.transpose(grid.resample(coarse), (2, 0, 1))


def _anomaly_features(
    coarse: np.ndarray, months: np.ndarray, x_clim: np.ndarray, grid: EvalGrid
) -> np.ndarray:
    """Models' departures from their training climatology, resampled: ``(pixel, time, model)``."""
    return _features(np.asarray(coarse, dtype=np.float64) - x_clim[months - 1], grid)


def _ensemble_mean(coarse: np.ndarray, grid: EvalGrid) -> np.ndarray:
    """Ensemble mean ``(time, pixel)`` (m3 m-3) of the bilinearly resampled models."""
    out = np.empty((coarse.shape[0], grid.pixels.size), dtype=np.float64)
    for sl in chunks(coarse.shape[0], 60):
        out[sl] = grid.resample(np.asarray(coarse[sl], dtype=np.float64).mean(axis=1))
    return out


def fit_baselines(
    data: FitData, grid: EvalGrid, *, use_qdm: bool = True, progress: bool = False
) -> BaselineFits:
    """Fit every baseline on the training months (ridge penalty chosen on validation months).

    Returns
    -------
    BaselineFits
        Reference climatology, bias-correction offset, per-pixel ridge fit and QDM.
    """
    months_train = months_of(data.keys_train)
    em_train = _ensemble_mean(data.coarse_train, grid)
    ref_clim = bl.monthly_climatology(data.ref_train, months_train)
    offset = bl.bias_correction_offset(em_train, data.ref_train, months_train)

    # Ridge on anomalies: reference departures from its training climatology regressed on
    # the models' departures from theirs (i.e. twelve calendar-month intercepts, shared slopes).
    x_clim = bl.monthly_climatology(data.coarse_train, months_train)
    ref_anom = data.ref_train - bl.expand_climatology(ref_clim, months_train)
    moments: bl.RidgeMoments | None = None
    steps = list(chunks(data.coarse_train.shape[0]))
    for sl in tqdm(steps, desc="ridge: training moments", disable=not progress, leave=False):
        feats = _anomaly_features(data.coarse_train[sl], months_train[sl], x_clim, grid)
        m = bl.ridge_moments(feats, ref_anom[sl])
        moments = m if moments is None else moments + m
    assert moments is not None
    candidates = [bl.ridge_solve(moments, lam) for lam in bl.RIDGE_LAMBDAS]
    sse = np.zeros((len(candidates), grid.pixels.size))
    months_val = months_of(data.keys_val)
    val_anom = data.ref_val - bl.expand_climatology(ref_clim, months_val)
    for sl in chunks(data.coarse_val.shape[0]):
        feats = _anomaly_features(data.coarse_val[sl], months_val[sl], x_clim, grid)
        y = np.asarray(val_anom[sl], dtype=np.float64)
        for i, fit in enumerate(candidates):
            err = bl.ridge_predict(fit, feats) - y
            sse[i] += np.where(np.isfinite(err), err * err, 0.0).sum(axis=0)
    ridge = bl.ridge_select(candidates, sse)

    qdm, note = None, ""
    if use_qdm:
        if bl.qdm_available():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                qdm = bl.qdm_train(data.ref_train, em_train, times_of(data.keys_train))
        else:
            note = "xsdba is not importable: qdm_ensemble_mean skipped"
    return BaselineFits(
        ref_clim=ref_clim, offset=offset, x_clim=x_clim, ridge=ridge, qdm=qdm, qdm_note=note
    )


def predict_baselines(
    fits: BaselineFits, coarse: np.ndarray, keys: np.ndarray, grid: EvalGrid
) -> dict[str, np.ndarray]:
    """Every baseline product for the months ``keys`` from coarse inputs of those months.

    Parameters
    ----------
    fits : BaselineFits
        Parameters from :func:`fit_baselines`.
    keys : numpy.ndarray
        Months (year * 12 + month - 1) of ``coarse``.
    grid : EvalGrid
        Scored pixels and resampling weights.
    coarse : numpy.ndarray
        ``(time, model, clat, clon)`` m3 m-3, the months ``keys``.

    Returns
    -------
    dict
        ``{name: (time, pixel) float32}`` for the ensemble mean and each baseline.
    """
    months = months_of(keys)
    em = _ensemble_mean(coarse, grid)
    clim = bl.expand_climatology(fits.ref_clim, months)
    ridge = np.empty_like(em)
    for sl in chunks(coarse.shape[0]):
        feats = _anomaly_features(coarse[sl], months[sl], fits.x_clim, grid)
        ridge[sl] = clim[sl] + bl.ridge_predict(fits.ridge, feats)
    out = {
        ENSEMBLE_MEAN: em,
        BC_EM: em + bl.expand_climatology(fits.offset, months),
        CLIM: clim,
        RIDGE: ridge,
    }
    if fits.qdm is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[QDM] = bl.qdm_adjust(fits.qdm, em, times_of(keys))
    return {k: np.asarray(v, dtype=np.float32) for k, v in out.items()}
