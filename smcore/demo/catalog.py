"""A CMIP6 file tree as an intake-esm catalog: Zarr stores (Pangeo layout) or NetCDF files.

``smcore demo-data --layout zarr-catalog`` writes the models this way: one Zarr store per
dataset under ``CMIP6/<activity>/<institution>/<source>/<experiment>/<member>/<table>/
<variable>/<grid>/<version>/`` (Zarr v2, consolidated metadata, the NetCDF files' values,
attributes and raw time axis unchanged), listed in ``catalog.csv`` and described by
``catalog.json`` as Pangeo's CMIP6 catalogue is. :func:`netcdf_catalog` lists the files of
a tree as they are (an ESM collection of NetCDF assets). Asset paths are written relative
to the catalog (smcore resolves them there), or as absolute ``file://`` URIs, which
intake-esm itself needs to open local Zarr stores.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from smcore.config import activity_for
from smcore.io.catalog import CMIP6Dataset, scan
from smcore.io.esm import PANGEO_COLUMNS, write_catalog, zarr_v2

__all__ = ["CATALOG_NAME", "zarr_catalog", "netcdf_catalog", "write_zarr_store"]

CATALOG_NAME = "catalog.json"
"""File name of the catalog's JSON (its CSV is ``catalog.csv``)."""

_FILL = np.float32(1.0e20)


def _row(d: CMIP6Dataset, activity: str | None) -> dict[str, Any]:
    return {
        "activity_id": activity or activity_for(d.experiment_id or ""),
        "institution_id": d.institution_id,
        "source_id": d.source_id,
        "experiment_id": d.experiment_id,
        "member_id": d.member_id,
        "table_id": d.table_id,
        "variable_id": d.variable_id,
        "grid_label": d.grid_label,
        "dcpp_init_year": None,
        "version": (d.version or "").lstrip("v") or None,
    }


def _usable(datasets: list[CMIP6Dataset]) -> list[CMIP6Dataset]:
    return [d for d in datasets if d.files and not d.blocking() and d.source_id is not None]


def write_zarr_store(files: list[Path], variable: str, store: Path) -> Path:
    """Concatenate one dataset's NetCDF ``files`` (time order) into a Zarr v2 store.

    Values, attributes and the raw time axis (with its units and calendar) are kept; the
    data variable is chunked by 120 months with the CMIP6 fill value 1e20.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parts = [xr.open_dataset(f, decode_times=False) for f in files]
        ds = parts[0] if len(parts) == 1 else xr.concat(
            parts, dim="time", data_vars="minimal", coords="minimal", compat="override",
            join="exact",
        )
        ds = ds.load()
        for p in parts:
            p.close()
    for name in ds.variables:
        ds[name].encoding = {}
    ny, nx = ds[variable].shape[1:]
    encoding: dict[str, dict[str, Any]] = {
        str(n): {"_FillValue": None} for n in ds.variables if n != variable
    }
    encoding[variable] = {
        "_FillValue": _FILL, "dtype": "float32", "chunks": (min(120, ds.sizes["time"]), ny, nx),
    }
    store.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(store, mode="w", consolidated=True, encoding=encoding, **zarr_v2())
    return store


def zarr_catalog(
    tree: str | Path,
    out: str | Path,
    variable: str | None = None,
    location: str | Path | None = None,
) -> Path:
    """Write every usable dataset of the CMIP6 tree ``tree`` as a Zarr store under ``out``.

    Returns ``out/catalog.json`` (with ``out/catalog.csv``); ``out`` may not be ``tree``.
    The ``zstore`` column holds paths relative to the catalog, or with ``location`` (the
    absolute folder ``out`` will be found at) ``file://`` URIs there: intake-esm opens
    local Zarr stores by URI only.
    """
    tree, out = Path(tree), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for d in _usable(scan(tree, variable=variable)):
        row = _row(d, _activity(d))
        rel = Path(
            "CMIP6", row["activity_id"], d.institution_id or "unknown", d.source_id or "",
            d.experiment_id or "", d.member_id or "", d.table_id or "", d.variable_id or "",
            d.grid_label or "", d.version or "v1",
        )
        write_zarr_store([f.path for f in d.files], d.variable_id or "", out / rel)
        where = rel.as_posix() if location is None else (Path(location).resolve() / rel).as_uri()
        rows.append({**row, "zstore": where})
    return write_catalog(out / CATALOG_NAME, rows, asset_column="zstore", format="zarr",
                         description="CMIP6 mrsos as Zarr stores (Pangeo CMIP6 layout)")


def netcdf_catalog(tree: str | Path, json_path: str | Path, variable: str | None = None) -> Path:
    """An ESM collection listing the NetCDF files of ``tree`` as they are (``path`` column)."""
    tree, json_path = Path(tree), Path(json_path)
    base = json_path.resolve().parent
    rows = []
    for d in _usable(scan(tree, variable=variable)):
        row = _row(d, _activity(d))
        for f in d.files:
            rows.append({**row, "path": os.path.relpath(f.path.resolve(), base)})
    columns = [c for c in PANGEO_COLUMNS if c != "zstore"] + ["path"]
    return write_catalog(json_path, rows, asset_column="path", format="netcdf", columns=columns,
                         description="CMIP6 NetCDF files")


def _activity(d: CMIP6Dataset) -> str | None:
    """The ``activity_id`` global attribute of a dataset's first file, if any."""
    import netCDF4

    try:
        with netCDF4.Dataset(d.files[0].path) as nc:
            value = getattr(nc, "activity_id", None)
    except (OSError, RuntimeError):
        return None
    return str(value).strip() or None if value is not None else None
