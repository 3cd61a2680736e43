"""Standardised soil moisture index (SSMI), Feng et al. (2022) Eq. 6.

``SSMI = (SM − mean_m) / std_m`` where ``mean_m`` and ``std_m`` are the mean and the
sample standard deviation (``ddof = 1``) of calendar month ``m`` over the reference years
(2015–2100 in the paper), computed per pixel from the finite values only.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["ssmi", "standardise_by_month", "MIN_REFERENCE_VALUES"]

MIN_REFERENCE_VALUES = 3
"""Fewest finite reference values of a calendar month for its statistics (fewer → NaN)."""


def standardise_by_month(
    x: np.ndarray,
    month: np.ndarray,
    in_reference: np.ndarray,
    ddof: int = 1,
    min_values: int = MIN_REFERENCE_VALUES,
) -> np.ndarray:
    """Standardise each calendar month of ``x`` (last axis = time) by its own statistics.

    Parameters
    ----------
    x : array (..., time)
        Values; NaN are ignored in the statistics and stay NaN.
    month : int array (time,)
        Calendar month (1–12) of each time step.
    in_reference : bool array (time,)
        Time steps whose values define the mean and standard deviation.
    ddof : int
        Delta degrees of freedom of the standard deviation.
    min_values : int
        A month with fewer finite reference values (or zero spread) gives NaN.

    Returns
    -------
    float64 array shaped like ``x``: dimensionless index.
    """
    x = np.asarray(x, dtype=np.float64)
    out = np.full(x.shape, np.nan)
    for m in range(1, 13):
        sel = month == m
        if not sel.any():
            continue
        ref = x[..., sel & in_reference]
        finite = np.isfinite(ref)
        count = finite.sum(axis=-1)
        total = np.where(finite, ref, 0.0).sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total / count
            dev2 = np.where(finite, (ref - mean[..., None]) ** 2, 0.0).sum(axis=-1)
            std = np.sqrt(dev2 / (count - ddof))
            # Exactly constant months: the rounding of the mean must not make a tiny std.
            hi = np.where(finite, ref, -np.inf).max(axis=-1, initial=-np.inf)
            lo = np.where(finite, ref, np.inf).min(axis=-1, initial=np.inf)
            spread = hi - lo
            bad = (count < max(min_values, ddof + 1)) | ~(spread > 0) | ~(std > 0)
            std = np.where(bad, np.nan, std)
            out[..., sel] = (x[..., sel] - mean[..., None]) / std[..., None]
    return out


def ssmi(
    ssm: xr.DataArray,
    reference: tuple[int, int],
    *,
    dim: str = "time",
    ddof: int = 1,
) -> xr.DataArray:
    """SSMI of a monthly series, each calendar month standardised over ``reference`` years.

    Parameters
    ----------
    ssm : DataArray (..., time, ...)
        Monthly soil moisture (any units, e.g. m3 m-3), NaN outside land. Lazy (dask) input
        stays lazy; ``time`` is taken as one chunk, other dims keep their chunks.
    reference : (first_year, last_year)
        Inclusive years of the standardisation statistics (the paper: 2015–2100).
    dim : str
        Name of the time dimension (datetime64 or cftime values).
    ddof : int
        Delta degrees of freedom of the standard deviation (1: sample std).

    Returns
    -------
    DataArray shaped like ``ssm`` (float64), dimensionless, ``units = "1"``.
    """
    years = ssm[dim].dt.year.values
    months = ssm[dim].dt.month.values
    in_ref = (years >= reference[0]) & (years <= reference[1])
    if not in_ref.any():
        raise ValueError(f"no time step of the series falls in the reference years {reference}")
    if ssm.chunks is not None:
        ssm = ssm.chunk({dim: -1})
    out = xr.apply_ufunc(
        standardise_by_month,
        ssm,
        input_core_dims=[[dim]],
        output_core_dims=[[dim]],
        kwargs={"month": months, "in_reference": in_ref, "ddof": ddof},
        dask="parallelized",
        output_dtypes=[np.float64],
    )
    out = out.transpose(*ssm.dims)
    out.attrs = {
        "long_name": "standardised soil moisture index (SSMI)",
        "units": "1",
        "reference_period": f"{reference[0]}-{reference[1]}",
    }
    return out.rename("ssmi")
