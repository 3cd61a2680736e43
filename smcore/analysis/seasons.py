"""Annual and seasonal aggregation of monthly series.

Seasons are MAM, JJA, SON and DJF; ``annual`` is January–December. A December counts in
the *following* year's DJF (DJF 2016 = Dec 2015, Jan 2016, Feb 2016). Only complete
groups are kept: the first winter of a series starting in January (no preceding
December) and the last December of a series ending in December are dropped. A group's
value is the mean of its months and is NaN when any of its months is NaN.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import xarray as xr

from smcore.config import SEASONS

__all__ = [
    "SEASONS",
    "SEASON_MONTHS",
    "MONTH_NAMES",
    "season_groups",
    "aggregate",
    "aggregate_all",
]

SEASON_MONTHS: Mapping[str, tuple[int, ...]] = {
    "annual": tuple(range(1, 13)),
    "MAM": (3, 4, 5),
    "JJA": (6, 7, 8),
    "SON": (9, 10, 11),
    "DJF": (12, 1, 2),
}
"""Calendar months of each aggregation period (DJF: December of the previous year)."""

MONTH_NAMES: tuple[str, ...] = (
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
)


def season_groups(years: np.ndarray, months: np.ndarray, season: str) -> tuple[np.ndarray, np.ndarray]:
    """Which time steps make up each complete ``season`` group.

    Parameters
    ----------
    years, months : int arrays (time,)
        Calendar year and month of each time step.
    season : str
        One of :data:`SEASONS`.

    Returns
    -------
    labels : int array (group,)
        The year of each complete group (for DJF, the year of its January).
    index : int array (group, n_months)
        Positions along time of the group's months.
    """
    if season not in SEASON_MONTHS:
        raise ValueError(f"unknown season {season!r}; expected one of {', '.join(SEASONS)}")
    wanted = SEASON_MONTHS[season]
    years = np.asarray(years, dtype=np.int64)
    months = np.asarray(months, dtype=np.int64)
    label = years + ((season == "DJF") & (months == 12))
    position: dict[tuple[int, int], int] = {}
    for i, (y, m) in enumerate(zip(label.tolist(), months.tolist())):
        if m not in wanted:
            continue
        if (y, m) in position:
            raise ValueError(f"time step {years[i]}-{m:02d} occurs more than once")
        position[(y, m)] = i
    labels = sorted({y for y, _ in position})
    complete = [y for y in labels if all((y, m) in position for m in wanted)]
    index = np.array([[position[(y, m)] for m in wanted] for y in complete], dtype=np.int64)
    return np.array(complete, dtype=np.int64), index.reshape(len(complete), len(wanted))


def _group_mean(x: np.ndarray, index: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)[..., index].mean(axis=-1)


def aggregate(da: xr.DataArray, season: str, *, dim: str = "time") -> xr.DataArray:
    """Mean of ``da`` over each complete ``season`` group.

    Parameters
    ----------
    da : DataArray (..., time, ...)
        Monthly values (one per calendar month); lazy input stays lazy.
    season : str
        ``annual``, ``MAM``, ``JJA``, ``SON`` or ``DJF``.
    dim : str
        The time dimension.

    Returns
    -------
    DataArray with ``dim`` replaced by ``year`` (int labels; for DJF the January's year),
    same units as ``da``, float64.
    """
    years, index = season_groups(da[dim].dt.year.values, da[dim].dt.month.values, season)
    if da.chunks is not None:
        da = da.chunk({dim: -1})
    out = xr.apply_ufunc(
        _group_mean,
        da,
        input_core_dims=[[dim]],
        output_core_dims=[["year"]],
        kwargs={"index": index},
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {"year": len(years)}},
    )
    out = out.assign_coords(year=("year", years))
    out = out.transpose(*[d if d != dim else "year" for d in da.dims])
    out.attrs = dict(da.attrs)
    return out


def aggregate_all(da: xr.DataArray, *, dim: str = "time") -> dict[str, xr.DataArray]:
    """:func:`aggregate` for every season of :data:`SEASONS`, in that order."""
    return {s: aggregate(da, s, dim=dim) for s in SEASONS}
