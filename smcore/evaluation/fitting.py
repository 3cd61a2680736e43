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

from smcore.distributed import map_tasks, result, submit
from smcore.evaluation import baselines as bl
from smcore.evaluation.data import CHUNK_MONTHS, EvalGrid, FitData, chunks, months_of, times_of

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
    "BC_MEMBERS",
    "bias_corrected_members",
]

DL = "CMIP6_DL"
ENSEMBLE_MEAN = "ensemble_mean"
BC_EM = "bias_corrected_ensemble_mean"
CLIM = "era5_train_climatology"
RIDGE = "ridge_stacking"
QDM = "qdm_ensemble_mean"
BC_MEMBERS = "bias_corrected_members"
"""The probabilistic baseline: every model bias-corrected on its own, as an ensemble."""
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


RIDGE_BLOCK_MONTHS = 10 * CHUNK_MONTHS
"""Months of one ridge task (training moments, predictions): its moments are summed over
12-month chunks in order, then the blocks' sums in order, in-process and on a cluster alike
(one block's features at 0.25° over China, 25 models: about 0.4 GB float64)."""


def _block_moments(
    job: tuple[np.ndarray, np.ndarray, np.ndarray, EvalGrid, np.ndarray],
) -> bl.RidgeMoments:
    """Ridge moments of one block of months: ``(coarse, months, x_clim, grid, ref_anom)``."""
    coarse, months, x_clim, grid, ref_anom = job
    moments: bl.RidgeMoments | None = None
    for sl in chunks(coarse.shape[0]):
        feats = _anomaly_features(coarse[sl], months[sl], x_clim, grid)
        m = bl.ridge_moments(feats, ref_anom[sl])
        moments = m if moments is None else moments + m
    assert moments is not None
    return moments


def _block_ridge(
    job: tuple[np.ndarray, np.ndarray, np.ndarray, EvalGrid, bl.RidgeFit, np.ndarray],
) -> np.ndarray:
    """Ridge predictions ``(time, pixel)`` of one block.

    ``job`` is ``(coarse, months, x_clim, grid, fit, clim)``.
    """
    coarse, months, x_clim, grid, fit, clim = job
    out = np.empty_like(clim)
    for sl in chunks(coarse.shape[0]):
        feats = _anomaly_features(coarse[sl], months[sl], x_clim, grid)
        out[sl] = clim[sl] + bl.ridge_predict(fit, feats)
    return out


def _qdm_train(job: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bl.qdm_train(*job)


def _qdm_adjust(job: tuple[Any, np.ndarray, np.ndarray]) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bl.qdm_adjust(*job)


# A trained xsdba adjustment does not survive pickling; between processes it travels as its
# dataset (which holds its parameters) and is rebuilt with ``from_dataset``.
def _qdm_train_ds(job: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Any:
    return _qdm_train(job).ds


def _qdm_adjust_ds(job: tuple[Any, np.ndarray, np.ndarray]) -> np.ndarray:
    ds, em, times = job
    return _qdm_adjust((_qdm_from_ds(ds), em, times))


def _qdm_from_ds(ds: Any) -> Any:
    import xsdba

    return xsdba.QuantileDeltaMapping.from_dataset(ds)


def fit_baselines(
    data: FitData,
    grid: EvalGrid,
    *,
    use_qdm: bool = True,
    progress: bool = False,
    client: Any = None,
) -> BaselineFits:
    """Fit every baseline on the training months (ridge penalty chosen on validation months).

    With ``client`` (a ``distributed.Client``) the QDM training runs as one task while
    the ridge training moments run as one task per :data:`RIDGE_BLOCK_MONTHS` months;
    the numbers are identical to the in-process path.

    Returns
    -------
    BaselineFits
        Reference climatology, bias-correction offset, per-pixel ridge fit and QDM.
    """
    months_train = months_of(data.keys_train)
    em_train = _ensemble_mean(data.coarse_train, grid)
    ref_clim = bl.monthly_climatology(data.ref_train, months_train)
    offset = bl.bias_correction_offset(em_train, data.ref_train, months_train)

    qdm, note = None, ""
    qdm_job = (data.ref_train, em_train, times_of(data.keys_train))
    run_qdm = use_qdm and bl.qdm_available()
    if use_qdm and not run_qdm:
        note = "xsdba is not importable: qdm_ensemble_mean skipped"
    if run_qdm and client is not None:
        qdm = submit(client, _qdm_train_ds, qdm_job)  # runs beside the ridge tasks

    # Ridge on anomalies: reference departures from its training climatology regressed on
    # the models' departures from theirs (i.e. twelve calendar-month intercepts, shared slopes).
    x_clim = bl.monthly_climatology(data.coarse_train, months_train)
    ref_anom = data.ref_train - bl.expand_climatology(ref_clim, months_train)
    jobs = [
        (data.coarse_train[b], months_train[b], x_clim, grid, ref_anom[b])
        for b in chunks(data.coarse_train.shape[0], RIDGE_BLOCK_MONTHS)
    ]
    moments: bl.RidgeMoments | None = None
    for m in map_tasks(
        _block_moments, jobs, client, desc="ridge: training moments", progress=progress,
        unit="block",
    ):
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

    if run_qdm:
        qdm = _qdm_train(qdm_job) if client is None else _qdm_from_ds(result(qdm))
    return BaselineFits(
        ref_clim=ref_clim, offset=offset, x_clim=x_clim, ridge=ridge, qdm=qdm, qdm_note=note
    )


def predict_baselines(
    fits: BaselineFits,
    coarse: np.ndarray,
    keys: np.ndarray,
    grid: EvalGrid,
    client: Any = None,
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
    client : distributed.Client, optional
        Run the QDM adjustment and the ridge blocks as tasks (identical numbers).

    Returns
    -------
    dict
        ``{name: (time, pixel) float32}`` for the ensemble mean and each baseline, clipped at
        0 m3 m-3 like the network's product (NaN stays NaN).
    """
    months = months_of(keys)
    em = _ensemble_mean(coarse, grid)
    qdm = None
    if fits.qdm is not None and client is not None:
        qdm = submit(client, _qdm_adjust_ds, (fits.qdm.ds, em, times_of(keys)))
    clim = bl.expand_climatology(fits.ref_clim, months)
    ridge = np.empty_like(em)
    blocks = list(chunks(coarse.shape[0], RIDGE_BLOCK_MONTHS))
    jobs = [(coarse[b], months[b], fits.x_clim, grid, fits.ridge, clim[b]) for b in blocks]
    for b, values in zip(blocks, map_tasks(_block_ridge, jobs, client), strict=True):
        ridge[b] = values
    out = {
        ENSEMBLE_MEAN: em,
        BC_EM: em + bl.expand_climatology(fits.offset, months),
        CLIM: clim,
        RIDGE: ridge,
    }
    if fits.qdm is not None:
        out[QDM] = _qdm_adjust((fits.qdm, em, times_of(keys))) if client is None else result(qdm)
    # A volume fraction is >= 0: every product is clipped alike (CMIP6_DL is, in predict).
    return {k: np.maximum(np.asarray(v, dtype=np.float32), 0.0) for k, v in out.items()}


def bias_corrected_members(
    fits: BaselineFits, coarse: np.ndarray, keys: np.ndarray, grid: EvalGrid
) -> np.ndarray:
    """Each model bias-corrected on its own: ``(model, time, pixel)`` float32, m3 m-3, ≥ 0.

    Model ``m`` at month ``t`` is its bilinearly resampled value minus its own training
    climatology of that calendar month, plus the reference's (per pixel, fitted on the
    training months only: :attr:`BaselineFits.x_clim`, :attr:`BaselineFits.ref_clim`). Their
    mean over models is the ``bias_corrected_ensemble_mean`` before clipping; as an ensemble
    forecast they are the honest probabilistic baseline (:data:`BC_MEMBERS`). ``coarse`` is
    ``(time, model, clat, clon)`` of the months ``keys``; pass a few years at a time (the
    result holds every model at 0.25°).
    """
    months = months_of(keys)
    anomalies = _anomaly_features(coarse, months, fits.x_clim, grid)  # (pixel, time, model)
    members = np.transpose(anomalies, (2, 1, 0)) + bl.expand_climatology(fits.ref_clim, months)
    return np.maximum(members.astype(np.float32), 0.0)
