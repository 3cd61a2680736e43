"""Small computations several factories share."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

__all__ = ["training_climatology"]


def training_climatology(
    values: np.ndarray, time: pd.DatetimeIndex, train: tuple[int, int]
) -> np.ndarray:
    """Mean of each calendar month over the ``train`` years: (time, ...) → (12, ...), NaN-aware."""
    years = np.asarray(time.year)
    in_train = (years >= train[0]) & (years <= train[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN sea cells
        return np.stack(
            [np.nanmean(values[in_train & (time.month == m)], axis=0) for m in range(1, 13)]
        )
