"""The NetCDF datasets of ``WD/evaluation`` (CF-1.8; see docs/workdir.md)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from smcore.evaluation.data import EvalGrid, times_of
from smcore.evaluation.regions import REGION_CODES, REGIONS, regional_mean

__all__ = ["SSM_ATTRS", "TIME_ENCODING", "maps_dataset", "regional_dataset"]

TIME_ENCODING = {
    "units": "days since 1850-01-01",
    "calendar": "standard",
    "dtype": "float64",
    "_FillValue": None,
}
SSM_ATTRS = {
    "units": "m3 m-3",
    "standard_name": "volume_fraction_of_condensed_water_in_soil",
    "long_name": "surface soil moisture",
}


def maps_dataset(
    maps: dict[str, tuple[np.ndarray, np.ndarray]], grid: EvalGrid, attrs: dict[str, str]
) -> xr.Dataset:
    """``maps.nc``: per-pixel ``mae`` (m3 m-3) and ``r`` (1), dims (product, lat, lon).

    ``maps`` maps a product name to its ``(mae, r)`` arrays over the scored pixels.
    """
    names = list(maps)
    mae = np.stack([grid.to_map(maps[n][0]) for n in names]).astype(np.float32)
    r = np.stack([grid.to_map(maps[n][1]) for n in names]).astype(np.float32)
    ds = xr.Dataset(
        {
            "mae": (
                ("product", "lat", "lon"),
                mae,
                {
                    "units": "m3 m-3",
                    "long_name": "mean absolute error against the reference over the test months",
                },
            ),
            "r": (
                ("product", "lat", "lon"),
                r,
                {
                    "units": "1",
                    "long_name": "Pearson correlation with the reference over the test months",
                },
            ),
        },
        coords={
            "product": ("product", np.array(names, dtype=object), {"long_name": "product name"}),
            "lat": grid.lat,
            "lon": grid.lon,
        },
        attrs=attrs,
    )
    return ds


def regional_dataset(
    series: dict[str, np.ndarray],
    regions: np.ndarray,
    grid: EvalGrid,
    keys: np.ndarray,
    attrs: dict[str, str],
) -> xr.Dataset:
    """``regional_series.nc``: ``ssm(region, product, time)`` (m3 m-3), mid-month times.

    ``series`` maps a product name to ``(time, pixel)`` values, ``regions`` is the region code
    of each scored pixel, ``keys`` the months (year * 12 + month - 1).
    """
    names = list(series)
    plat = grid.pixel_lat
    data = np.full((len(REGIONS), len(names), keys.size), np.nan, dtype=np.float64)
    for i, region in enumerate(REGIONS):
        sel = regions == REGION_CODES[region]
        if sel.any():
            for j, name in enumerate(names):
                data[i, j] = regional_mean(series[name], plat, sel)
    start = times_of(keys)
    end = times_of(keys + 1)
    mid = start + (end - start) // 2
    ds = xr.Dataset(
        {
            "ssm": (
                ("region", "product", "time"),
                data.astype(np.float32),
                {
                    **SSM_ATTRS,
                    "cell_methods": "area: mean (cos-latitude weighted) time: mean",
                },
            ),
            "time_bnds": (("time", "bnds"), np.stack([start, end], axis=1)),
            "n_pixels": (
                "region",
                np.array([(regions == REGION_CODES[r]).sum() for r in REGIONS], np.int32),
                {
                    "long_name": "number of scored pixels in the region",
                    "units": "1",
                },
            ),
        },
        coords={
            "region": ("region", np.array(REGIONS, dtype=object), {"long_name": "climate region"}),
            "product": ("product", np.array(names, dtype=object), {"long_name": "product name"}),
            "time": ("time", mid, {"bounds": "time_bnds", "standard_name": "time", "axis": "T"}),
        },
        attrs=attrs,
    )
    for name in ("time", "time_bnds"):
        ds[name].encoding.update(TIME_ENCODING)
    return ds
