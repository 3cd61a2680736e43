"""Turn computed arrays into the CF-described datasets of the prepared store (docs/workdir.md)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from smcore.config import Config
from smcore.io.cmip6 import key_to_month_start
from smcore.io.netcdf import provenance_attrs
from smcore.io.units import VOLUMETRIC_UNITS
from smcore.regrid import grid_coords

__all__ = ["input_statistics", "fill_with_mean", "static_dataset", "inputs_dataarray"]

_SM = "volume_fraction_of_condensed_water_in_soil"
_TIME_ATTRS = {"standard_name": "time", "long_name": "time (first day of the month)", "axis": "T"}
_TIME_ENCODING = {
    "units": "days since 1850-01-01",
    "calendar": "proleptic_gregorian",
    "dtype": "int32",
}


def input_statistics(
    hist: np.ndarray, keys: Sequence[int] | np.ndarray, train: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-model mean and std over training months and finite coarse cells.

    ``hist`` is ``(time, model, clat, clon)`` with monthly ``keys``; returns two
    float32 arrays of shape ``(model,)`` in m3 m-3.
    """
    years = np.asarray(keys) // 12
    tr = (years >= train[0]) & (years <= train[1])
    sub = hist[tr].astype("float64")
    mean = np.nanmean(sub, axis=(0, 2, 3))
    std = np.nanstd(sub, axis=(0, 2, 3))
    return mean.astype("float32"), std.astype("float32")


def fill_with_mean(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Replace NaN in ``x(time, model, clat, clon)`` by each model's ``mean``, in place."""
    np.copyto(x, mean.astype(x.dtype)[None, :, None, None], where=~np.isfinite(x))
    return x


def _time_coord(keys: Sequence[int] | np.ndarray) -> xr.DataArray:
    t = xr.DataArray(key_to_month_start(keys), dims="time", attrs=dict(_TIME_ATTRS))
    t.encoding = dict(_TIME_ENCODING)
    return t


def inputs_dataarray(
    x: np.ndarray,
    keys: Sequence[int] | np.ndarray,
    channels: Sequence[str],
    cfg: Config,
    experiment: str,
) -> xr.DataArray:
    """``mrsos(time, model, clat, clon)`` float32 m3 m-3 of one experiment, chunked by time."""
    coords = {
        "time": _time_coord(keys),
        "model": xr.DataArray(list(channels), dims="model", attrs={"long_name": "CMIP6 source_id"}),
    }
    coords.update(grid_coords(cfg.coarse, ("clat", "clon")))
    da = xr.DataArray(
        x.astype("float32", copy=False),
        dims=("time", "model", "clat", "clon"),
        coords=coords,
        name="mrsos",
        attrs={
            "units": VOLUMETRIC_UNITS,
            "standard_name": _SM,
            "long_name": f"CMIP6 surface soil moisture ({experiment}) on the coarse grid",
            "comment": (
                f"kg m-2 divided by the layer depth {cfg.layer_depth_mm:g} mm; bilinear to the "
                f"{cfg.coarse.res:g} degree grid after nearest-land filling of ocean cells; cells "
                "without model data hold the model's training mean"
            ),
            "experiment_id": experiment,
        },
    )
    return da.chunk({"time": 120, "model": -1, "clat": -1, "clon": -1})


def static_dataset(
    cfg: Config,
    keys: Sequence[int] | np.ndarray,
    reference: np.ndarray,
    land: np.ndarray,
    elevation: np.ndarray,
    climatology: np.ndarray,
    y_stats: tuple[float, float],
    x_stats: tuple[np.ndarray, np.ndarray],
    channels: Sequence[str],
) -> xr.Dataset:
    """The root group of the prepared store, with CF attributes and provenance.

    ``reference`` ``(time, lat, lon)`` must already be NaN outside ``land``.
    """
    coords: dict[str, xr.DataArray] = {"time": _time_coord(keys)}
    coords.update(grid_coords(cfg.target, ("lat", "lon")))
    coords.update(grid_coords(cfg.coarse, ("clat", "clon")))
    coords["model"] = xr.DataArray(
        list(channels), dims="model", attrs={"long_name": "CMIP6 source_id"}
    )
    coords["month"] = xr.DataArray(
        np.arange(1, 13, dtype="int32"),
        dims="month",
        attrs={"long_name": "month of the year", "units": "1"},
    )
    p = cfg.periods
    ds = xr.Dataset(
        {
            "reference": (
                ("time", "lat", "lon"),
                reference.astype("float32", copy=False),
                {
                    "units": VOLUMETRIC_UNITS,
                    "standard_name": _SM,
                    "long_name": f"reference {cfg.reference_variable} on the target grid "
                    "(NaN outside land_mask)",
                },
            ),
            "land_mask": (
                ("lat", "lon"),
                land.astype("int8"),
                {
                    "units": "1",
                    "long_name": "study land: reference valid in every month and inside China",
                    "flag_values": np.array([0, 1], dtype="int8"),
                    "flag_meanings": "other study_land",
                },
            ),
            "elevation": (
                ("lat", "lon"),
                elevation.astype("float32"),
                {
                    "units": "m",
                    "standard_name": "surface_altitude",
                    "long_name": "elevation (0 over sea)",
                },
            ),
            "climatology": (
                ("month", "lat", "lon"),
                climatology.astype("float32"),
                {
                    "units": VOLUMETRIC_UNITS,
                    "standard_name": _SM,
                    "cell_methods": "time: mean within years",
                    "long_name": "monthly mean of reference over the training years "
                    f"{p.train[0]}-{p.train[1]}",
                },
            ),
            "x_mean": (
                ("model",),
                x_stats[0].astype("float32"),
                {
                    "units": VOLUMETRIC_UNITS,
                    "long_name": "mean of each model's coarse input over training months",
                },
            ),
            "x_std": (
                ("model",),
                x_stats[1].astype("float32"),
                {
                    "units": VOLUMETRIC_UNITS,
                    "long_name": "standard deviation of each model's coarse input "
                    "over training months",
                },
            ),
            "y_mean": (
                (),
                np.float32(y_stats[0]),
                {
                    "units": VOLUMETRIC_UNITS,
                    "long_name": "mean of reference over training months and land",
                },
            ),
            "y_std": (
                (),
                np.float32(y_stats[1]),
                {
                    "units": VOLUMETRIC_UNITS,
                    "long_name": "standard deviation of reference over training months and land",
                },
            ),
        },
        coords=coords,
    )
    ds.attrs = provenance_attrs("smcore prepared data", config_json=cfg.to_json())
    ds.attrs.update(
        train=f"{p.train[0]}-{p.train[1]}",
        val=f"{p.val[0]}-{p.val[1]}",
        test=f"{p.test[0]}-{p.test[1]}",
        future=f"{p.future[0]}-{p.future[1]}",
        channels=",".join(channels),
        experiments=",".join(cfg.experiments),
    )
    return ds.chunk({"time": 12, "lat": -1, "lon": -1})
