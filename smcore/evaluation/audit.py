"""Check that the normalisation statistics of the prepared store saw no test-period value."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from smcore.evaluation import baselines as bl
from smcore.evaluation.data import EvalGrid, FitData, months_of
from smcore.evaluation.fitting import BaselineFits

__all__ = ["audit_normalisation"]


def audit_normalisation(
    static: xr.Dataset,
    data: FitData,
    fits: BaselineFits,
    grid: EvalGrid,
    keys_test: np.ndarray,
    ref_test: np.ndarray,
    coarse_test: np.ndarray,
) -> dict[str, Any]:
    """Check the store's normalisation statistics for test-period leakage.

    Each statistic the network was normalised with (``climatology``, ``y_mean``, ``y_std``,
    ``x_mean``) is compared with its recomputation from the training months only and from
    all historical months; a statistic closer to the all-period value has seen val/test data.
    """
    all_ref = np.concatenate([data.ref_train, data.ref_val, ref_test]).astype(np.float64)
    train_ref = data.ref_train.astype(np.float64)
    months_all = months_of(np.concatenate([data.keys_train, data.keys_val, keys_test]))

    def verdict(stored: Any, train: Any, everything: Any) -> dict[str, Any]:
        stored, train, everything = (
            np.asarray(v, dtype=np.float64) for v in (stored, train, everything)
        )
        d_train = float(np.nanmax(np.abs(stored - train)))
        d_all = float(np.nanmax(np.abs(stored - everything)))
        return {
            "max_abs_diff_train_only": d_train,
            "max_abs_diff_all_periods": d_all,
            "consistent_with_train_only": bool(d_train <= d_all),
        }

    x_all = np.concatenate([data.coarse_train, data.coarse_val, coarse_test]).astype(np.float64)
    return {
        "climatology": verdict(
            grid.take(np.asarray(static["climatology"].values, dtype=np.float64)),
            fits.ref_clim,
            bl.monthly_climatology(all_ref, months_all),
        ),
        "y_mean": verdict(static["y_mean"].values, np.nanmean(train_ref), np.nanmean(all_ref)),
        "y_std": verdict(static["y_std"].values, np.nanstd(train_ref), np.nanstd(all_ref)),
        "x_mean": verdict(
            static["x_mean"].values,
            data.coarse_train.astype(np.float64).mean(axis=(0, 2, 3)),
            x_all.mean(axis=(0, 2, 3)),
        ),
    }
