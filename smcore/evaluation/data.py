"""Reading and laying out evaluation data: month keys, scored pixels, fields and fit data.

Fine-grid fields of the scored pixels are ``(time, pixel)`` arrays (C-order flat indices of
the target grid); coarse model inputs are ``(time, model, clat, clon)``; soil moisture is
always m3 m-3. :func:`load_fit_data` reads the training and validation months only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import xarray as xr

from smcore.errors import InputError
from smcore.prep.store import PreparedData

__all__ = [
    "CHUNK_MONTHS",
    "EvalGrid",
    "FitData",
    "chunks",
    "load_fit_data",
    "month_keys",
    "months_of",
    "read_fields",
    "select_months",
    "times_of",
]

CHUNK_MONTHS = 12
"""Months handled at once when model features are expanded to the fine grid."""


def month_keys(time: xr.DataArray | np.ndarray) -> np.ndarray:
    """``year * 12 + month - 1`` of each time stamp (datetime64 or cftime), to match months."""
    t = time if isinstance(time, xr.DataArray) else xr.DataArray(np.asarray(time), dims="time")
    return (
        np.asarray(t.dt.year.values, dtype=np.int64) * 12
        + np.asarray(t.dt.month.values, dtype=np.int64)
        - 1
    )


def months_of(keys: np.ndarray) -> np.ndarray:
    """Calendar month (1…12) of each month key."""
    return keys % 12 + 1


def times_of(keys: np.ndarray) -> np.ndarray:
    """First of each month as datetime64[ns]."""
    years = keys // 12
    months = keys % 12 + 1
    return np.array(
        [np.datetime64(f"{y:04d}-{m:02d}-01", "ns") for y, m in zip(years, months, strict=True)]
    )


@dataclass(frozen=True)
class EvalGrid:
    """The scored pixels of the target grid and the resampling weights from the coarse grid.

    ``pixels`` are flat (C-order) indices into ``(lat, lon)``; ``wlat``/``wlon`` are the
    bilinear weights coarse → target (:func:`smcore.evaluation.baselines.bilinear_weights`).
    """

    lat: np.ndarray
    lon: np.ndarray
    pixels: np.ndarray
    wlat: np.ndarray
    wlon: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        """``(nlat, nlon)`` of the target grid."""
        return (self.lat.size, self.lon.size)

    @property
    def pixel_lat(self) -> np.ndarray:
        """Latitude (degrees_north) of each scored pixel, ``(pixel,)``."""
        return np.repeat(self.lat, self.lon.size)[self.pixels]

    def take(self, fields: np.ndarray) -> np.ndarray:
        """``(time, lat, lon)`` → ``(time, pixel)``."""
        a = np.asarray(fields)
        return a.reshape(a.shape[0], -1)[:, self.pixels]

    def to_map(self, values: np.ndarray) -> np.ndarray:
        """``(..., pixel)`` → ``(..., lat, lon)`` with NaN off the scored pixels."""
        v = np.asarray(values, dtype=np.float64)
        out = np.full((*v.shape[:-1], self.lat.size * self.lon.size), np.nan)
        out[..., self.pixels] = v
        return out.reshape(*v.shape[:-1], *self.shape)

    @cached_property
    def weights(self) -> sp.csr_matrix:
        """The bilinear weights of the scored pixels, ``(pixel, clat·clon)``, sparse: the rows of
        ``kron(wlat, wlon)`` at ``pixels``, at most four non-zero weights each."""
        full = sp.kron(sp.csr_matrix(self.wlat), sp.csr_matrix(self.wlon), format="csr")
        return full[self.pixels]

    def resample(self, coarse: np.ndarray) -> np.ndarray:
        """Coarse ``(time, [model,] clat, clon)`` → ``(time, [model,] pixel)``, bilinear, float64.

        One sparse product over all leading axes, computing only the scored pixels: the same
        values as :func:`smcore.evaluation.baselines.apply_weights` followed by :meth:`take`
        (to rounding) for finite inputs, about 60× faster on the demo's 120-month blocks of 25
        models. A NaN coarse value reaches only the target cells it has weight in.
        """
        v = np.asarray(coarse, dtype=np.float64)
        flat = v.reshape(-1, v.shape[-2] * v.shape[-1])
        out = np.ascontiguousarray((self.weights @ flat.T).T)
        return out.reshape(*v.shape[:-2], out.shape[-1])


def chunks(n: int, size: int = CHUNK_MONTHS) -> Iterator[slice]:
    """Consecutive slices of at most ``size`` covering ``range(n)``."""
    for i in range(0, n, size):
        yield slice(i, min(i + size, n))


def read_fields(da: xr.DataArray, index: np.ndarray, grid: EvalGrid) -> np.ndarray:
    """``da(time, lat, lon)`` at time positions ``index`` → ``(time, pixel)`` float32."""
    out = np.empty((len(index), grid.pixels.size), dtype=np.float32)
    for sl in chunks(len(index), 60):
        out[sl] = grid.take(np.asarray(da.isel(time=index[sl]).values, dtype=np.float32))
    return out


def select_months(da: xr.DataArray, keys: np.ndarray, path: Path, what: str) -> np.ndarray:
    """Time positions in ``da`` of the months ``keys`` (matched by year and month)."""
    have = month_keys(da["time"])
    pos = {k: i for i, k in enumerate(have)}
    missing = [k for k in keys if k not in pos]
    if missing:
        first = int(missing[0])
        raise InputError(
            path,
            f"{what} lacks {len(missing)} of the {len(keys)} months needed "
            f"(first missing {first // 12}-{first % 12 + 1:02d})",
        )
    return np.array([pos[k] for k in keys], dtype=np.int64)


@dataclass
class FitData:
    """Everything the baselines are fitted on: training and validation months only.

    ``ref_*`` are ``(time, pixel)`` reference values (m3 m-3), ``coarse_*`` the coarse model
    inputs ``(time, model, clat, clon)`` (m3 m-3), ``keys_*`` the months (year*12+month-1).
    """

    keys_train: np.ndarray
    ref_train: np.ndarray
    coarse_train: np.ndarray
    keys_val: np.ndarray
    ref_val: np.ndarray
    coarse_val: np.ndarray


def load_fit_data(prepared: PreparedData, grid: EvalGrid) -> FitData:
    """Read the training and validation months of the reference and inputs, nothing else."""
    static = prepared.static
    keys = month_keys(static["time"])
    inputs = prepared.inputs("historical")
    in_pos = {k: i for i, k in enumerate(month_keys(inputs["time"]))}
    parts: dict[str, Any] = {}
    for split in ("train", "val"):
        idx = np.flatnonzero(prepared.split_mask(split))
        if idx.size == 0:
            raise InputError(prepared.path, f"the {split} split has no months")
        split_keys = keys[idx]
        missing = [k for k in split_keys if k not in in_pos]
        if missing:
            raise InputError(prepared.path, f"historical inputs lack {len(missing)} {split} months")
        parts[f"keys_{split}"] = split_keys
        parts[f"ref_{split}"] = read_fields(static["reference"], idx, grid)
        in_idx = np.array([in_pos[k] for k in split_keys])
        parts[f"coarse_{split}"] = np.asarray(inputs.isel(time=in_idx).values, dtype=np.float32)
    return FitData(**parts)
