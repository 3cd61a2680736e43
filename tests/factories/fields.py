"""Small computations several factories share."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["training_climatology", "flip_stored_bytes"]


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


def flip_stored_bytes(path: Path, stored: bytes, what: str) -> None:
    """Flip eight bytes in the middle of ``stored``, which must occur once in the file ``path``
    (a chunk's bytes as HDF5 wrote them; ``what`` names it in the error)."""
    blob = bytearray(path.read_bytes())
    at = blob.find(stored)
    if at < 0 or blob.find(stored, at + 1) >= 0:
        raise ValueError(f"{path}: {what} not found once in the file")
    middle = at + len(stored) // 2
    blob[middle : middle + 8] = bytes(b ^ 0xFF for b in blob[middle : middle + 8])
    path.write_bytes(bytes(blob))
