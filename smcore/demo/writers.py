"""Write the demo data in the formats users download: CMIP6 (ESGF), ERA5-Land (new CDS), truth.

The CMIP6 and ERA5-Land writers imitate the real files closely (names, DRS folders,
variables, attributes, encodings) so that the loaders are tested on what they will
meet. Every file says in its global attributes that it is synthetic.
"""

from __future__ import annotations

import datetime as _dt
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from smcore.config import Config, ModelSpec, activity_for
from smcore.demo.layout import (
    TIME_UNITS,
    FileLayout,
    NativeGrid,
    drs_version,
    file_pieces,
    month_axis,
    nominal_resolution,
)
from smcore.io.netcdf import provenance_attrs, write_netcdf

__all__ = [
    "CMIP6_FILL",
    "cmip6_relpath",
    "write_cmip6",
    "era5_filename",
    "write_era5_year",
    "write_truth",
    "write_planted_trends",
]

CMIP6_FILL = np.float32(1.0e20)
SYNTHETIC_NOTE = (
    "SYNTHETIC DEMO DATA written by 'smcore demo-data' in the format of the real archive; "
    "not output of the named model or of ECMWF"
)
_COMPRESSION = {"zlib": True, "complevel": 1, "shuffle": True}
KEEP_BITS = 11
"""Explicit mantissa bits kept by :func:`bitround` (relative precision 2**-12 ≈ 2.4e-4)."""


def bitround(values: np.ndarray, keepbits: int = KEEP_BITS) -> np.ndarray:
    """Round float32 values to ``keepbits`` mantissa bits (round half up), NaN kept.

    The trailing bits of float32 noise do not compress; zeroing them makes the files
    ~45 % smaller while changing values by at most 2**-(keepbits+1) relative (e.g.
    0.005 kg m-2 of 40 kg m-2). Done here rather than by netCDF-C's quantize filter so
    that the files carry no ``_Quantize…`` attribute, like the real archives.
    """
    a = np.ascontiguousarray(values, dtype=np.float32)
    drop = 23 - keepbits
    bits = a.view(np.uint32)
    half = np.uint32(1 << (drop - 1))
    mask = np.uint32((0xFFFFFFFF >> drop) << drop)
    rounded = ((bits + half) & mask).view(np.float32)
    return np.where(np.isfinite(a), rounded, a)

_EXPERIMENT_TITLES = {
    "historical": "all-forcing simulation of the recent past",
    "ssp126": "update of RCP2.6 based on SSP1",
    "ssp245": "update of RCP4.5 based on SSP2",
    "ssp370": "gap-filling scenario reaching 7.0 based on SSP3",
    "ssp585": "update of RCP8.5 based on SSP5",
}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def cmip6_relpath(spec: ModelSpec, experiment: str, y0: int, y1: int, cfg: Config) -> Path:
    """DRS path of one file, relative to the ``cmip6`` folder (starts with ``CMIP6/``)."""
    folder = Path(
        "CMIP6", activity_for(experiment), spec.institution_id, spec.source_id, experiment,
        spec.member_id, cfg.table_id, cfg.variable, "gn", drs_version(spec.source_id, experiment),
    )
    name = (f"{cfg.variable}_{cfg.table_id}_{spec.source_id}_{experiment}_{spec.member_id}_gn_"
            f"{y0:04d}01-{y1:04d}12.nc")
    return folder / name


def _member_indices(member_id: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, name in (("r", "realization_index"), ("i", "initialization_index"),
                      ("p", "physics_index"), ("f", "forcing_index")):
        start = member_id.index(key) + 1
        digits = ""
        while start < len(member_id) and member_id[start].isdigit():
            digits += member_id[start]
            start += 1
        out[name] = int(digits)
    return out


def _cmip6_global_attrs(spec: ModelSpec, experiment: str, cfg: Config,
                        tracking: str) -> dict[str, object]:
    is_ssp = experiment.startswith("ssp")
    attrs: dict[str, object] = {
        "Conventions": "CF-1.7 CMIP-6.2",
        "activity_id": activity_for(experiment),
        "branch_method": "standard",
        "branch_time_in_child": 60225.0 if is_ssp else 0.0,
        "branch_time_in_parent": 60225.0 if is_ssp else 0.0,
        "creation_date": _now(),
        "data_specs_version": "01.00.30",
        "experiment": _EXPERIMENT_TITLES.get(experiment, experiment),
        "experiment_id": experiment,
        "external_variables": "areacella",
        "frequency": "mon",
        "further_info_url": (f"https://furtherinfo.es-doc.org/CMIP6.{spec.institution_id}."
                             f"{spec.source_id}.{experiment}.none.{spec.member_id}"),
        "grid": f"native atmosphere regular grid ({spec.dlat:g} x {spec.dlon:g} degrees)",
        "grid_label": "gn",
        "institution": f"{spec.institution_id} (synthetic stand-in)",
        "institution_id": spec.institution_id,
        "license": ("Synthetic demo data of smcore; "
                    "CMIP6 model data are licensed CC BY 4.0 by their providers"),
        "mip_era": "CMIP6",
        "nominal_resolution": nominal_resolution(spec),
        "parent_activity_id": "CMIP" if is_ssp else "CMIP",
        "parent_experiment_id": "historical" if is_ssp else "piControl",
        "parent_mip_era": "CMIP6",
        "parent_source_id": spec.source_id,
        "parent_time_units": TIME_UNITS,
        "parent_variant_label": spec.member_id,
        "product": "model-output",
        "realm": "land",
        "source": f"{spec.source_id}: synthetic soil moisture generated by smcore",
        "source_id": spec.source_id,
        "source_type": "AOGCM",
        "sub_experiment": "none",
        "sub_experiment_id": "none",
        "table_id": cfg.table_id,
        "table_info": "Creation Date:(24 July 2019) MD5:synthetic",
        "title": f"{spec.source_id} output prepared for CMIP6 (SYNTHETIC: smcore demo data)",
        "tracking_id": f"hdl:21.14100/{tracking}",
        "variable_id": cfg.variable,
        "variant_label": spec.member_id,
        "member_id": spec.member_id,
        "comment": SYNTHETIC_NOTE,
        "history": f"{_now()} written by smcore demo-data",
    }
    attrs.update(_member_indices(spec.member_id))
    return attrs


def write_cmip6(
    root: Path,
    values: np.ndarray,
    years: tuple[int, int],
    spec: ModelSpec,
    layout: FileLayout,
    grid: NativeGrid,
    experiment: str,
    cfg: Config,
    rng: np.random.Generator,
) -> list[Path]:
    """Write one model's experiment as ESGF files under ``root`` (the ``cmip6`` folder).

    ``values`` (time, lat ascending, lon) are volumetric (m3 m-3, NaN over the model's
    ocean) for every month of ``years``; they are written as ``mrsos`` in kg m-2
    (× ``cfg.layer_depth_mm``), split into files by the layout. ``rng`` draws the
    tracking ids. Returns the paths written.
    """
    y0, y1 = years
    kg = bitround(values * np.float32(cfg.layer_depth_mm))
    lat, lat_b = grid.lat, grid.lat_bounds
    if layout.lat_descending:
        kg, lat, lat_b = kg[:, ::-1], lat[::-1], lat_b[::-1, ::-1]
    written = []
    for a, b in file_pieces(layout, experiment, y0, y1):
        i0, i1 = (a - y0) * 12, (b - y0 + 1) * 12
        mid, bnds = month_axis(spec.calendar, a, b)
        tracking = str(uuid.UUID(bytes=rng.bytes(16), version=4))
        time_attrs = {"bounds": "time_bnds", "units": TIME_UNITS, "calendar": spec.calendar,
                      "axis": "T", "long_name": "time", "standard_name": "time"}
        ds = xr.Dataset(
            {
                cfg.variable: (("time", "lat", "lon"), kg[i0:i1], {
                    "standard_name": "mass_content_of_water_in_soil_layer",
                    "long_name": "Moisture in Upper Portion of Soil Column",
                    "comment": ("The mass of water in all phases in the upper 10cm of the "
                                "soil layer."),
                    "units": "kg m-2",
                    "cell_methods": "area: mean where land time: mean",
                    "cell_measures": "area: areacella",
                    "original_name": cfg.variable,
                    "missing_value": CMIP6_FILL,
                }),
                "time_bnds": (("time", "bnds"), bnds),
                "lat_bnds": (("lat", "bnds"), lat_b),
                "lon_bnds": (("lon", "bnds"), grid.lon_bounds),
            },
            coords={
                "time": ("time", mid, time_attrs),
                "lat": ("lat", lat, {"bounds": "lat_bnds", "units": "degrees_north",
                                     "axis": "Y", "long_name": "Latitude",
                                     "standard_name": "latitude"}),
                "lon": ("lon", grid.lon, {"bounds": "lon_bnds", "units": "degrees_east",
                                          "axis": "X", "long_name": "Longitude",
                                          "standard_name": "longitude"}),
            },
            attrs=_cmip6_global_attrs(spec, experiment, cfg, tracking),
        )
        ny, nx = kg.shape[1:]
        encoding = {
            cfg.variable: {"dtype": "float32", "_FillValue": CMIP6_FILL,
                           "chunksizes": (min(12, i1 - i0), ny, nx), **_COMPRESSION},
            "time": {"dtype": "float64", "_FillValue": None},
            "time_bnds": {"dtype": "float64", "_FillValue": None},
            "lat": {"_FillValue": None}, "lon": {"_FillValue": None},
            "lat_bnds": {"_FillValue": None}, "lon_bnds": {"_FillValue": None},
        }
        path = root / cmip6_relpath(spec, experiment, a, b, cfg)
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.to_netcdf(path, format="NETCDF4", engine="netcdf4", encoding=encoding)
        written.append(path)
    return written


def era5_filename(year: int) -> str:
    """File name of one year of the ERA5-Land-like reference."""
    return f"swvl1_era5land_monthly_{year:04d}.nc"


def write_era5_year(path: Path, values: np.ndarray, year: int, lat_desc: np.ndarray,
                    lon: np.ndarray) -> Path:
    """Write 12 months of ``swvl1`` (m3 m-3, NaN over sea) as a new-CDS netCDF file.

    ``values`` (12, lat, lon) must already be ordered with ``lat_desc`` descending.
    The layout is that of CDS netCDF files converted from GRIB: ``valid_time`` (int64
    seconds since 1970-01-01, first of the month 00:00), scalar ``number``, ``expver``
    strings along ``valid_time``, ``latitude`` with ``stored_direction: decreasing``.
    """
    if not np.all(np.diff(lat_desc) < 0):
        raise ValueError("ERA5-Land latitudes must be descending")
    starts = pd.date_range(f"{year:04d}-01-01", periods=12, freq="MS")
    seconds = ((starts - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)).to_numpy()
    seconds = seconds.astype(np.int64)
    step = float(abs(lat_desc[1] - lat_desc[0])) if lat_desc.size > 1 else 0.1
    grib = {
        "GRIB_paramId": np.int64(39), "GRIB_dataType": "an",
        "GRIB_numberOfPoints": np.int64(lat_desc.size * lon.size),
        "GRIB_typeOfLevel": "depthBelowLandLayer", "GRIB_stepUnits": np.int64(1),
        "GRIB_stepType": "avgua",
        "GRIB_gridType": "regular_ll", "GRIB_NV": np.int64(0), "GRIB_Nx": np.int64(lon.size),
        "GRIB_Ny": np.int64(lat_desc.size), "GRIB_cfName": "unknown", "GRIB_cfVarName": "swvl1",
        "GRIB_gridDefinitionDescription": "Latitude/Longitude Grid",
        "GRIB_iDirectionIncrementInDegrees": step, "GRIB_iScansNegatively": np.int64(0),
        "GRIB_jDirectionIncrementInDegrees": step, "GRIB_jPointsAreConsecutive": np.int64(0),
        "GRIB_jScansPositively": np.int64(0),
        "GRIB_latitudeOfFirstGridPointInDegrees": float(lat_desc[0]),
        "GRIB_latitudeOfLastGridPointInDegrees": float(lat_desc[-1]),
        "GRIB_longitudeOfFirstGridPointInDegrees": float(lon[0]),
        "GRIB_longitudeOfLastGridPointInDegrees": float(lon[-1]),
        "GRIB_missingValue": 3.4028234663852886e38, "GRIB_name": "Volumetric soil water layer 1",
        "GRIB_shortName": "swvl1", "GRIB_totalNumber": np.int64(0), "GRIB_units": "m**3 m**-3",
        "long_name": "Volumetric soil water layer 1", "units": "m**3 m**-3",
        "standard_name": "unknown",
        "GRIB_surface": 0.0, "GRIB_topLevel": 0.0, "GRIB_bottomLevel": 7.0,
    }
    ds = xr.Dataset(
        {"swvl1": (("valid_time", "latitude", "longitude"), bitround(values), grib)},
        coords={
            "number": ((), np.int64(0), {"long_name": "ensemble member numerical id", "units": "1",
                                          "standard_name": "realization"}),
            "valid_time": ("valid_time", seconds, {"long_name": "time", "standard_name": "time",
                                                   "units": "seconds since 1970-01-01",
                                                   "calendar": "proleptic_gregorian"}),
            "latitude": ("latitude", lat_desc.astype(np.float64), {
                "units": "degrees_north", "standard_name": "latitude", "long_name": "latitude",
                "stored_direction": "decreasing"}),
            "longitude": ("longitude", lon.astype(np.float64), {
                "units": "degrees_east", "standard_name": "longitude", "long_name": "longitude"}),
            "expver": ("valid_time", np.array(["0001"] * 12, dtype=object)),
        },
        attrs={
            "GRIB_centre": "ecmf",
            "GRIB_centreDescription": "European Centre for Medium-Range Weather Forecasts",
            "GRIB_subCentre": np.int64(0),
            "Conventions": "CF-1.7",
            "institution": "European Centre for Medium-Range Weather Forecasts",
            "history": f"{_now()} GRIB to CDM+CF via cfgrib-0.9.15.1/ecCodes-2.41.0 with "
                       '{"source": "data.grib", "filter_by_keys": {"stream": ["moda"], '
                       '"stepType": ["avgua"]}, '
                       '"encode_cf": ["parameter", "time", "geography", "vertical"]}',
            "comment": SYNTHETIC_NOTE,
        },
    )
    encoding = {
        "swvl1": {"dtype": "float32", "_FillValue": np.float32(np.nan),
                  "chunksizes": (12, lat_desc.size, lon.size), **_COMPRESSION},
        "valid_time": {"dtype": "int64", "_FillValue": None},
        "latitude": {"_FillValue": np.nan}, "longitude": {"_FillValue": np.nan},
        "number": {"dtype": "int64", "_FillValue": None},
    }
    ds["swvl1"].attrs["coordinates"] = "number valid_time latitude longitude expver"
    ds["swvl1"].encoding["coordinates"] = ds["swvl1"].attrs.pop("coordinates")
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.to_netcdf(path, format="NETCDF4", engine="netcdf4", encoding=encoding)
    return path


def _month_times(y0: int, y1: int) -> tuple[np.ndarray, np.ndarray]:
    starts = pd.date_range(f"{y0:04d}-01-01", periods=(y1 - y0 + 1) * 12 + 1, freq="MS")
    s = starts.values
    return s[:-1] + (s[1:] - s[:-1]) / 2, np.stack([s[:-1], s[1:]], axis=1)


def write_truth(path: Path, values: np.ndarray, years: tuple[int, int], lat: np.ndarray,
                lon: np.ndarray, experiment: str, cfg: Config, seed: int) -> Path:
    """Write the synthetic truth of one experiment: ``ssm(time, lat, lon)`` in m3 m-3.

    ``values`` (time, lat ascending, lon) on the target grid, NaN over sea; time is
    mid-month (standard calendar) with ``time_bnds``; CF-1.8 via :func:`write_netcdf`.
    """
    mid, bnds = _month_times(*years)
    res = float(lat[1] - lat[0]) if lat.size > 1 else cfg.target.res
    ds = xr.Dataset(
        {
            "ssm": (("time", "lat", "lon"), bitround(values), {
                "standard_name": "volume_fraction_of_condensed_water_in_soil",
                "long_name": "synthetic true surface soil moisture (0-7 cm)",
                "units": "m3 m-3", "cell_methods": "area: mean time: mean",
                "comment": "the truth behind the demo inputs; NaN over sea (values over all land)",
            }),
            "time_bnds": (("time", "bnds"), bnds),
            "lat_bnds": (("lat", "bnds"), np.stack([lat - res / 2, lat + res / 2], axis=1)),
            "lon_bnds": (("lon", "bnds"), np.stack([lon - res / 2, lon + res / 2], axis=1)),
        },
        coords={
            "time": ("time", mid, {"bounds": "time_bnds"}),
            "lat": ("lat", lat, {"bounds": "lat_bnds"}),
            "lon": ("lon", lon, {"bounds": "lon_bnds"}),
        },
        attrs=provenance_attrs(f"smcore demo: synthetic truth, {experiment}",
                               config_json=cfg.to_json(), experiment_id=experiment,
                               demo_seed=seed, comment=SYNTHETIC_NOTE),
    )
    no_fill = {"_FillValue": None}
    enc = {"time": {"units": TIME_UNITS, "calendar": "standard", "dtype": "float64", **no_fill},
           "time_bnds": {"units": TIME_UNITS, "calendar": "standard", "dtype": "float64",
                         **no_fill},
           "lat_bnds": dict(no_fill), "lon_bnds": dict(no_fill)}
    return write_netcdf(ds, path, time_chunk=12, encoding=enc)


def write_planted_trends(path: Path, trends: np.ndarray, experiments: list[str], seasons: list[str],
                         lat: np.ndarray, lon: np.ndarray, cfg: Config, seed: int) -> Path:
    """Write the planted linear trends ``trend(experiment, season, lat, lon)``.

    Units m3 m-3 per decade; NaN over sea.
    """
    ds = xr.Dataset(
        {"trend": (("experiment", "season", "lat", "lon"), trends.astype(np.float32), {
            "long_name": "planted linear trend of the forced soil moisture signal, 2015-2100",
            "units": "m3 m-3 (10 year)-1",
            "comment": "least-squares slope of the deterministic forced signal (before weather and "
                       "before clipping to the physical range); NaN over sea"})},
        coords={"experiment": ("experiment", np.array(experiments, dtype=object)),
                "season": ("season", np.array(seasons, dtype=object)),
                "lat": ("lat", lat), "lon": ("lon", lon)},
        attrs=provenance_attrs("smcore demo: planted scenario trends", config_json=cfg.to_json(),
                               demo_seed=seed, comment=SYNTHETIC_NOTE),
    )
    return write_netcdf(ds, path)
