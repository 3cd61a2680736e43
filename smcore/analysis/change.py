"""Change rates of regional soil moisture (Fig. 8) and area fractions of significant trends.

Regions (Feng et al. 2022, Sect. 3.3): east of ``east_of_lon`` (100°E) only, split at
``split_lat`` (35°N) into ``north`` (lat ≥ 35°N) and ``south`` (lat < 35°N). Area means
are weighted by cos(latitude) over the pixels that are finite in that month.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from smcore.analysis.seasons import MONTH_NAMES, aggregate
from smcore.regrid import linear_weights

__all__ = [
    "REGIONS",
    "TIMESCALES",
    "region_masks",
    "area_weights",
    "regional_mean",
    "timescale_means",
    "change_rates",
    "area_fractions",
    "regional_weights",
    "model_regional_series",
    "model_change_ranges",
]

REGIONS: tuple[str, ...] = ("north", "south")
TIMESCALES: tuple[str, ...] = (*MONTH_NAMES, "MAM", "JJA", "SON", "DJF", "annual")
"""Columns of Fig. 8: each month, each season, the year."""


def area_weights(lat: xr.DataArray) -> xr.DataArray:
    """Relative cell areas of a regular lat/lon grid: cos(latitude), dims (lat,)."""
    return np.cos(np.deg2rad(lat)).rename("weight")


def region_masks(lat: xr.DataArray, lon: xr.DataArray, split_lat: float, east_of_lon: float) -> xr.DataArray:
    """Boolean masks ``(region, lat, lon)`` of the north and south regions east of a meridian.

    ``north``: lat ≥ ``split_lat`` and lon ≥ ``east_of_lon``; ``south``: lat < ``split_lat``
    and lon ≥ ``east_of_lon`` (degrees north / east, cell centres).
    """
    east = lon >= east_of_lon
    north = (lat >= split_lat) & east
    south = (lat < split_lat) & east
    masks = xr.concat([north, south], dim="region").transpose("region", "lat", "lon")
    return masks.assign_coords(region=list(REGIONS))


def regional_mean(ssm: xr.DataArray, masks: xr.DataArray) -> xr.DataArray:
    """cos(lat)-weighted mean of ``ssm`` over each region's finite pixels.

    Parameters
    ----------
    ssm : DataArray (time, lat, lon)
        Soil moisture, m3 m-3, NaN outside land; may be lazy.
    masks : DataArray (region, lat, lon) bool
        From :func:`region_masks`.

    Returns
    -------
    DataArray (region, time), units of ``ssm``; NaN where a region has no finite pixel.
    """
    w = area_weights(ssm["lat"]) * masks
    finite = ssm.notnull()
    num = (ssm.fillna(0.0) * w).sum(["lat", "lon"])
    den = (finite * w).sum(["lat", "lon"])
    out = (num / den.where(den > 0)).transpose("region", "time")
    out.attrs = {"units": ssm.attrs.get("units", "m3 m-3"), "long_name": "regional mean"}
    return out


def timescale_means(series: xr.DataArray, years: tuple[int, int]) -> xr.DataArray:
    """Mean of a monthly series over ``years`` for each month, season and the year.

    Parameters
    ----------
    series : DataArray (..., time)
        Monthly values (small: e.g. regional means).
    years : (first, last)
        Inclusive years. Seasons follow :mod:`smcore.analysis.seasons` (DJF of year ``y``
        is Dec ``y−1`` to Feb ``y``; only complete seasons count).

    Returns
    -------
    DataArray (..., timescale) with ``timescale`` = :data:`TIMESCALES`.
    """
    y0, y1 = years
    t_years = series["time"].dt.year
    t_months = series["time"].dt.month
    parts = []
    for m in range(1, 13):
        sel = (t_months == m) & (t_years >= y0) & (t_years <= y1)
        parts.append(series.where(sel).mean("time", skipna=True))
    for season in ("MAM", "JJA", "SON", "DJF", "annual"):
        agg = aggregate(series, season)
        parts.append(agg.sel(year=slice(y0, y1)).mean("year", skipna=True))
    out = xr.concat(parts, dim="timescale").assign_coords(timescale=list(TIMESCALES))
    return out


def change_rates(
    historical: xr.DataArray,
    future: Mapping[str, xr.DataArray],
    baseline: tuple[int, int],
    periods: Sequence[tuple[int, int]],
) -> pd.DataFrame:
    """Percent change of regional mean soil moisture relative to the historical baseline.

    Parameters
    ----------
    historical : DataArray (region, time)
        Regional means of the historical product (m3 m-3), covering ``baseline``.
    future : {experiment: DataArray (region, time)}
        Regional means of each scenario, covering ``periods``.
    baseline : (first, last)
        Baseline years (1995–2014).
    periods : sequence of (first, last)
        Future periods (2021–2040, 2041–2070, 2071–2100).

    Returns
    -------
    DataFrame with columns ``experiment, region, period, timescale, value`` where
    ``value = 100 (mean_period − mean_baseline) / mean_baseline`` (percent).
    """
    frames = [
        _rate_frame(rate, exp, period)
        for (exp, period), rate in _rates(historical, future, baseline, periods).items()
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=RATE_COLUMNS)


RATE_COLUMNS = ["experiment", "region", "period", "timescale", "value"]
"""The columns of :func:`change_rates`."""


def _rates(
    historical: xr.DataArray,
    future: Mapping[str, xr.DataArray],
    baseline: tuple[int, int],
    periods: Sequence[tuple[int, int]],
) -> dict[tuple[str, str], xr.DataArray]:
    """The percent changes ``(..., region, timescale)`` of each (experiment, "y0-y1") period.

    The series may have leading dimensions (e.g. ``model``): each is a series of its own.
    """
    base = timescale_means(historical, baseline)
    out = {}
    for exp, series in future.items():
        for y0, y1 in periods:
            fut = timescale_means(series, (y0, y1))
            out[(exp, f"{y0}-{y1}")] = 100.0 * (fut - base) / base
    return out


def _rate_frame(rate: xr.DataArray, experiment: str, period: str) -> pd.DataFrame:
    """Rows of :func:`change_rates` from ``rate`` (region, timescale), percent.

    Region by region, each in :data:`TIMESCALES` order.
    """
    values = rate.transpose("region", "timescale").sel(timescale=list(TIMESCALES)).values
    regions = [str(r) for r in rate["region"].values]
    return pd.DataFrame({
        "experiment": [experiment] * values.size,
        "region": [r for r in regions for _ in TIMESCALES],
        "period": [period] * values.size,
        "timescale": [str(t) for _ in regions for t in TIMESCALES],
        "value": [float(v) for v in values.reshape(-1)],
    }, columns=RATE_COLUMNS)


def area_fractions(trends: xr.Dataset) -> pd.DataFrame:
    """Area share of significant drying and wetting trends per experiment and season.

    Parameters
    ----------
    trends : Dataset (experiment, season, lat, lon) with ``trend`` and ``significant``
        (1 significant, 0 not, NaN no test: the field-significance mask of
        :func:`~smcore.analysis.analyse.with_significance`).

    Returns
    -------
    DataFrame ``experiment, season, drying, wetting``: cos(lat)-weighted fractions of the
    pixels with a finite trend and a test whose trend is negative (drying) / positive
    (wetting) and significant. NaN when no pixel has a finite trend.
    """
    w = area_weights(trends["lat"]) * xr.ones_like(trends["lon"])
    valid = trends["trend"].notnull() & trends["significant"].notnull()
    sig = valid & (trends["significant"] == 1)
    total = (w * valid).sum(["lat", "lon"])
    drying = (w * (sig & (trends["trend"] < 0))).sum(["lat", "lon"]) / total.where(total > 0)
    wetting = (w * (sig & (trends["trend"] > 0))).sum(["lat", "lon"]) / total.where(total > 0)
    rows = []
    for exp in trends["experiment"].values:
        for season in trends["season"].values:
            rows.append(
                {
                    "experiment": str(exp),
                    "season": str(season),
                    "drying": float(drying.sel(experiment=exp, season=season)),
                    "wetting": float(wetting.sel(experiment=exp, season=season)),
                }
            )
    return pd.DataFrame(rows, columns=["experiment", "season", "drying", "wetting"])



def regional_weights(
    masks: xr.DataArray, land: xr.DataArray, clat: np.ndarray, clon: np.ndarray
) -> xr.DataArray:
    """Weights that give a coarse field's regional mean after bilinear resampling.

    ``(W[r] * x).sum()`` equals :func:`regional_mean` over ``land`` of ``x`` (clat, clon)
    resampled to the target grid with :func:`smcore.regrid.linear_weights` (the resampling of
    the baselines): the resampling is linear, so the 0.25° fields are never formed.

    Parameters
    ----------
    masks : DataArray (region, lat, lon) bool, e.g. from :func:`region_masks`.
    land : DataArray (lat, lon) bool: the pixels the product has values on.
    clat : the coarse centres (degrees north, ascending).
    clon : the coarse centres (degrees east, ascending).

    Returns
    -------
    DataArray (region, clat, clon), dimensionless, each region's weights summing to 1 (NaN
    for a region without land).
    """
    lat, lon = masks["lat"].values, masks["lon"].values
    wlat, wlon = linear_weights(clat, lat), linear_weights(clon, lon)
    m = (area_weights(masks["lat"]) * masks * land).transpose("region", "lat", "lon").values
    total = m.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.matmul(wlat.T, m @ wlon) / np.where(total > 0, total, np.nan)[:, None, None]
    return xr.DataArray(w, dims=("region", "clat", "clon"),
                        coords={"region": masks["region"].values, "clat": clat, "clon": clon})


def model_regional_series(
    inputs: xr.DataArray, weights: xr.DataArray, x_clim: np.ndarray, ref_clim: np.ndarray
) -> xr.DataArray:
    """Regional means of every bias-corrected model, without resampling a field.

    Model ``k`` bias-corrected as :func:`smcore.evaluation.fitting.bias_corrected_members`
    (its resampled value minus its training climatology of the calendar month, plus the
    reference's; the clipping at 0 is left out), averaged over each region.

    Parameters
    ----------
    inputs : DataArray (time, model, clat, clon), m3 m-3.
    weights : DataArray (region, clat, clon) from :func:`regional_weights`.
    x_clim : array (model, 12, clat, clon): each model's training climatology, m3 m-3.
    ref_clim : array (region, 12): the regional mean of the reference's training
        climatology per calendar month, m3 m-3.

    Returns
    -------
    DataArray (model, region, time), m3 m-3.
    """
    months = inputs["time"].dt.month.values - 1
    x = inputs.transpose("time", "model", "clat", "clon").values.astype(np.float64)
    x = x - np.transpose(np.asarray(x_clim)[:, months], (1, 0, 2, 3))
    w = weights.transpose("region", "clat", "clon").values
    series = np.einsum("tkab,rab->krt", x, w) + np.asarray(ref_clim)[None, :, months]
    return xr.DataArray(
        series, dims=("model", "region", "time"),
        coords={"model": inputs["model"].values, "region": weights["region"].values,
                "time": inputs["time"].values},
        attrs={"units": "m3 m-3", "long_name": "regional mean of the bias-corrected model"},
    )


def model_change_ranges(
    historical: xr.DataArray,
    future: Mapping[str, xr.DataArray],
    baseline: tuple[int, int],
    periods: Sequence[tuple[int, int]],
    quantiles: tuple[float, float] = (0.05, 0.95),
) -> pd.DataFrame:
    """The models' range of each change rate of :func:`change_rates`.

    ``historical`` and each ``future`` series are (model, region, time) regional means of
    the bias-corrected models (:func:`model_regional_series`). Returns the rows of
    :func:`change_rates` (``experiment, region, period, timescale``) with ``model_p05`` and
    ``model_p95`` (percent; the quantiles over models, linear interpolation) and ``n_models``.
    """
    # every model at once: the means of 13 timescales per period, not per model and period
    rates = _rates(historical, future, baseline, periods)
    parts = [
        _rate_frame(rate.sel(model=model), exp, period).assign(model=str(model))
        for model in historical["model"].values
        for (exp, period), rate in rates.items()
    ]
    both = pd.concat(parts, ignore_index=True)
    keys = ["experiment", "region", "period", "timescale"]
    grouped = both.groupby(keys, sort=False)["value"]
    lo, hi = quantiles
    out = pd.DataFrame({
        f"model_p{round(lo * 100):02d}": grouped.quantile(lo),
        f"model_p{round(hi * 100):02d}": grouped.quantile(hi),
        "n_models": grouped.count(),
    }).reset_index()
    return out
