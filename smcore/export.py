"""``smcore export``: the merged product of a region, with its full provenance.

For a box ``LON0,LON1,LAT0,LAT1`` (degrees east/north) this writes one CF-1.8 NetCDF file or
Zarr store holding, for the chosen experiments and years:

- ``ssm(experiment, time, lat, lon)``: the merged 0.25° product ``CMIP6_DL`` of every cell
  that overlaps the box (NaN where an experiment has no month: historical and the SSPs share
  one time axis), with ``time_bnds``, ``lat_bnds``, ``lon_bnds``;
- any other field the products carry on their grid (uncertainty fields), likewise;
- where ``analysis/ssmi_trends.nc`` exists: ``ssmi_trend``, ``ssmi_trend_p_value`` and
  ``ssmi_trend_significant(experiment, season, lat, lon)`` of the box (NaN for historical);
- global attributes naming everything it came from: the models and members used, the
  files (or Zarr stores) and versions of every model input (``prepared/manifest.json``), the
  checkpoint's SHA-256, the products' files, the smcore version and the configuration.

The output is written atomically (a temporary beside it, renamed when complete). Every
problem (a box outside the grid, an experiment that was not prepared or has no product, a
period without months) is a one-line error before anything is written. The dashboard's box
export calls :func:`export_region` too.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from smcore.errors import ConfigError, InputError
from smcore.io.cmip6 import parse_filename
from smcore.io.esm import zarr_v2
from smcore.io.product import check_same_checkpoint, open_product
from smcore.workdir import WorkDir, artifact, hint_for
from smcore.io.nclock import open_netcdf

__all__ = ["FORMATS", "Box", "parse_bbox", "export_region", "region_dataset"]

FORMATS = ("netcdf", "zarr")

_TIME_UNITS = "days since 1850-01-01 00:00:00"


@dataclass(frozen=True)
class Box:
    """A longitude/latitude box (degrees east/north), west < east, south < north."""

    lon0: float
    lon1: float
    lat0: float
    lat1: float

    def __str__(self) -> str:
        return f"{self.lon0:g},{self.lon1:g},{self.lat0:g},{self.lat1:g}"


def parse_bbox(text: str | Sequence[float]) -> Box:
    """``"LON0,LON1,LAT0,LAT1"`` (or four numbers) → :class:`Box`; :class:`ConfigError` if bad."""
    try:
        parts = [float(x) for x in (text.split(",") if isinstance(text, str) else text)]
    except ValueError:
        parts = []
    if len(parts) != 4 or not all(np.isfinite(parts)):
        raise ConfigError(f"--bbox {text!r}: expected LON0,LON1,LAT0,LAT1 in degrees")
    lon0, lon1, lat0, lat1 = parts
    if not lon0 < lon1:
        raise ConfigError(f"--bbox {text!r}: LON0 must be west of LON1")
    if not lat0 < lat1:
        raise ConfigError(f"--bbox {text!r}: LAT0 must be south of LAT1")
    if not (-90.0 <= lat0 and lat1 <= 90.0):
        raise ConfigError(f"--bbox {text!r}: latitudes must lie in -90..90")
    return Box(lon0, lon1, lat0, lat1)


def _select(centres: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Indices of the cells (regular, ascending ``centres``) that overlap ``[lo, hi]``."""
    half = float(centres[1] - centres[0]) / 2 if centres.size > 1 else 0.125
    return np.flatnonzero((centres + half > lo) & (centres - half < hi))


def _box_cells(box: Box, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the grid cells overlapping ``box``; InputError if none."""
    rows = _select(lat, box.lat0, box.lat1)
    lon0, lon1 = box.lon0, box.lon1
    if lon1 < lon[0] and lon0 + 360.0 <= lon[-1] + 1:  # a box given in -180..180 east of 180
        lon0, lon1 = lon0 + 360.0, lon1 + 360.0
    cols = _select(lon, lon0, lon1)
    if rows.size == 0 or cols.size == 0:
        raise InputError(
            None,
            f"--bbox {box}: the box is outside the product grid "
            f"(lon {lon[0]:g}..{lon[-1]:g}, lat {lat[0]:g}..{lat[-1]:g}, 0.25 degree cell centres)",
        )
    return rows, cols


def _months(da: xr.DataArray) -> np.ndarray:
    t = da["time"]
    return np.asarray(t.dt.year.values, np.int64) * 12 + np.asarray(t.dt.month.values) - 1


def _datasets_record(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """What each model input was read from: the manifest's ``datasets``, or its ``inputs``."""
    if manifest.get("datasets"):
        return [
            {**d, "files": [Path(f).name if Path(f).suffix in (".nc", ".nc4") else f
                            for f in d.get("files", [])]}
            for d in manifest["datasets"]
        ]
    out = []  # a manifest of an older smcore: derive from the DRS names of the inputs
    for rec in manifest.get("inputs", []):
        name = parse_filename(rec["path"])
        if name is None:
            continue
        version = next((p for p in reversed(Path(rec["path"]).parts) if p.startswith("v")
                        and p[1:].isdigit()), None)
        out.append({"source_id": name.source_id, "experiment_id": name.experiment_id,
                    "member_id": name.member_id, "version": version,
                    "files": [Path(rec["path"]).name]})
    return out


def region_dataset(
    wd: WorkDir,
    box: Box,
    experiments: Sequence[str] | None = None,
    period: tuple[int, int] | None = None,
    command: str | None = None,
) -> xr.Dataset:
    """The export of ``box`` as a dataset (lazy where the products are), before writing."""
    prepared = wd.experiments()
    wanted = wd.experiments(experiments) if experiments is not None else prepared
    paths = {e: wd.product(e) for e in wanted}
    hint = f"run `{hint_for(artifact('product').relative('historical'), wd.root)}` first"
    if experiments is not None:
        for e, p in paths.items():
            if not p.is_file():
                raise InputError(p, f"no product for {e}; {hint}")
    else:
        paths = {e: p for e, p in paths.items() if p.is_file()}
        if not paths:
            raise InputError(wd.product_dir, f"no product here; {hint}")
    sha = check_same_checkpoint(list(paths.values()))
    products = {e: open_product(p, what="product", chunks={}) for e, p in paths.items()}
    first = next(iter(products.values()))
    lat = np.asarray(first["lat"].values, np.float64)
    lon = np.asarray(first["lon"].values, np.float64)
    rows, cols = _box_cells(box, lat, lon)
    keys: dict[str, np.ndarray] = {}
    for e, da in products.items():
        k = _months(da)
        if period is not None:
            k = k[(k >= period[0] * 12) & (k <= period[1] * 12 + 11)]
        keys[e] = k
    if period is not None:
        empty = [e for e, k in keys.items() if k.size == 0]
        if experiments is not None and empty:
            e = empty[0]
            y = _months(products[e]) // 12
            raise InputError(
                paths[e], f"{e} has no month in {period[0]}-{period[1]} (it covers "
                f"{y.min()}-{y.max()})"
            )
        keys = {e: k for e, k in keys.items() if k.size}
        if not keys:
            raise InputError(
                None, f"--period {period[0]}-{period[1]}: no product has a month in it"
            )
    exps = list(keys)
    all_keys = np.unique(np.concatenate([keys[e] for e in exps]))
    sub_lat, sub_lon = lat[rows], lon[cols]
    fields: dict[str, list[xr.DataArray]] = {}
    for e in exps:
        ds = open_netcdf(paths[e], chunks={})
        ds = ds.isel(lat=slice(int(rows[0]), int(rows[-1]) + 1),
                     lon=slice(int(cols[0]), int(cols[-1]) + 1))
        have = _months(ds["ssm"])
        pos = np.searchsorted(have, keys[e])
        for name, var in ds.data_vars.items():
            if name.endswith("_bnds") or not {"lat", "lon"} <= set(var.dims):
                continue
            if "time" in var.dims:
                v = var.isel(time=pos).assign_coords(time=keys[e]).rename(time="month")
                v = v.reindex(month=all_keys)
            else:
                v = var
            fields.setdefault(str(name), []).append(v.drop_vars(
                [c for c in v.coords if c not in ("month", "lat", "lon")]))
    out = xr.Dataset()
    for name, parts in fields.items():
        da = xr.concat(parts, dim=pd.Index(exps, name="experiment"), join="outer")
        attrs = dict(parts[0].attrs)
        dims = ["experiment", *(["month"] if "month" in da.dims else []), "lat", "lon"]
        out[name] = da.transpose(*dims).astype(np.float32)
        out[name].attrs = attrs
    out = out.rename(month="time") if "month" in out.dims else out
    starts = _month_starts(all_keys)
    ends = _month_starts(all_keys + 1)
    out = out.assign_coords(
        time=("time", starts + (ends - starts) / 2,
              {"standard_name": "time", "long_name": "time", "axis": "T", "bounds": "time_bnds"}),
        lat=("lat", sub_lat, {"standard_name": "latitude", "long_name": "latitude",
                              "units": "degrees_north", "axis": "Y", "bounds": "lat_bnds"}),
        lon=("lon", sub_lon, {"standard_name": "longitude", "long_name": "longitude",
                              "units": "degrees_east", "axis": "X", "bounds": "lon_bnds"}),
        experiment=("experiment", np.array(exps, dtype=object),
                    {"long_name": "CMIP6 experiment_id"}),
    )
    out["time_bnds"] = (("time", "bnds"), np.stack([starts, ends], axis=1))
    half = 0.125 if sub_lat.size < 2 else float(sub_lat[1] - sub_lat[0]) / 2
    out["lat_bnds"] = (("lat", "bnds"), np.stack([sub_lat - half, sub_lat + half], axis=1))
    half = 0.125 if sub_lon.size < 2 else float(sub_lon[1] - sub_lon[0]) / 2
    out["lon_bnds"] = (("lon", "bnds"), np.stack([sub_lon - half, sub_lon + half], axis=1))
    for name in ("time", "time_bnds"):
        out[name].encoding.update(units=_TIME_UNITS, calendar="standard", dtype="float64")
    trends = _add_trends(out, wd, exps, rows, cols)
    out.attrs = _provenance(wd, first, box, exps, paths, period, sha, command, all_keys,
                            sub_lat, sub_lon)
    if trends is not None:
        out.attrs["trends_source"] = str(trends)
    return out


def _month_starts(keys: np.ndarray) -> np.ndarray:
    k = np.asarray(keys, dtype=np.int64) - 1970 * 12
    return k.astype("datetime64[M]").astype("datetime64[ns]")


def _add_trends(out: xr.Dataset, wd: WorkDir, exps: list[str], rows: np.ndarray,
                cols: np.ndarray) -> Path | None:
    """The SSMI trend maps of the box, when ``analysis/ssmi_trends.nc`` exists (its path)."""
    path = wd.path("trends")
    if not path.is_file():
        return None
    with open_netcdf(path) as tr:
        tr = tr.isel(lat=slice(int(rows[0]), int(rows[-1]) + 1),
                     lon=slice(int(cols[0]), int(cols[-1]) + 1)).load()
    if not (np.allclose(tr["lat"].values, out["lat"].values, atol=1e-4)
            and np.allclose(tr["lon"].values, out["lon"].values, atol=1e-4)):
        return None  # another grid: not the product's trends
    tr = tr.reindex(experiment=np.array(exps, dtype=object))
    names = {"trend": "ssmi_trend", "p_value": "ssmi_trend_p_value",
             "significant": "ssmi_trend_significant"}
    out.coords["season"] = ("season", np.asarray(tr["season"].values, dtype=object),
                            dict(tr["season"].attrs))
    for src, dst in names.items():
        if src not in tr:
            continue
        v = tr[src].transpose("experiment", "season", "lat", "lon")
        data = np.asarray(v.values)
        if src == "significant":
            data = np.where(np.isfinite(data), data, -1).astype(np.int8)
            attrs = dict(tr[src].attrs, _FillValue=np.int8(-1))
        else:
            data = data.astype(np.float32)
            attrs = dict(tr[src].attrs)
        out[dst] = (("experiment", "season", "lat", "lon"), data, attrs)
    return path


def _provenance(
    wd: WorkDir, first: xr.DataArray, box: Box, exps: list[str], paths: dict[str, Path],
    period: tuple[int, int] | None, sha: str | None, command: str | None,
    keys: np.ndarray, lat: np.ndarray, lon: np.ndarray,
) -> dict[str, Any]:
    from smcore.io.netcdf import provenance_attrs

    with open_netcdf(paths[exps[0]]) as head:
        product_attrs = dict(head.attrs)
    try:
        manifest = json.loads(wd.manifest.read_text())
    except (OSError, ValueError):
        manifest = {}
    members = manifest.get("members", {})
    channels = manifest.get("channels") or str(product_attrs.get("models_used", "")).split(",")
    config_json = product_attrs.get("smcore_config") or json.dumps(manifest.get("config", {}))
    first_key, last_key = int(keys[0]), int(keys[-1])
    # half a cell (degrees): the bounds of the outer cells (0.25 degree grid: 0.125)
    hlat = float(lat[1] - lat[0]) / 2 if lat.size > 1 else 0.125
    hlon = float(lon[1] - lon[0]) / 2 if lon.size > 1 else 0.125
    attrs = provenance_attrs(
        "CMIP6_DL merged and downscaled surface soil moisture, region export (smcore)",
        config_json=config_json,
        product="CMIP6_DL",
        experiments=",".join(exps),
        bbox=str(box),
        period=f"{period[0]}-{period[1]}" if period else "all",
        models_used=",".join(channels),
        members_used=",".join(f"{m}={members.get(m, '?')}" for m in channels),
        input_datasets=json.dumps(_datasets_record(manifest)),
        checkpoint_sha256=sha or str(product_attrs.get("checkpoint_sha256", "")),
        checkpoint_epoch=str(product_attrs.get("checkpoint_epoch", "")),
        prepared_fingerprint=str(manifest.get("fingerprint", "")),
        source_products=",".join(p.name for p in paths.values()),
        source_smcore_version=str(product_attrs.get("smcore_version", "")),
        geospatial_lat_min=f"{lat[0] - hlat:g}",
        geospatial_lat_max=f"{lat[-1] + hlat:g}",
        geospatial_lon_min=f"{lon[0] - hlon:g}",
        geospatial_lon_max=f"{lon[-1] + hlon:g}",
        time_coverage_start=f"{first_key // 12:04d}-{first_key % 12 + 1:02d}",
        time_coverage_end=f"{last_key // 12:04d}-{last_key % 12 + 1:02d}",
    )
    if command:
        attrs["history"] = f"{attrs['history']}; {command}"
    attrs["comment"] = (
        "Subset of the smcore product files named in source_products: every 0.25 degree cell "
        "overlapping bbox (LON0,LON1,LAT0,LAT1), NaN outside the study land and where an "
        "experiment has no month. input_datasets lists, per model and experiment, the member, "
        "version and files (or Zarr stores) the network's inputs were read from."
    )
    return attrs


def export_region(
    workdir: str | Path | WorkDir,
    bbox: Box | str | Sequence[float],
    out: str | Path,
    *,
    experiments: Sequence[str] | None = None,
    period: tuple[int, int] | None = None,
    format: str = "netcdf",
    report: Callable[[str], None] = print,
) -> Path:
    """Write the export of ``bbox`` to ``out`` (NetCDF file or Zarr store), atomically.

    ``experiments`` (default: every prepared experiment that has a product) and ``period``
    (years, inclusive) restrict it. Returns ``out``. One-line :class:`InputError` or
    :class:`ConfigError` on bad arguments, before anything is written.
    """
    from smcore.io.atomic import atomic_dir
    from smcore.io.netcdf import write_netcdf

    wd = workdir if isinstance(workdir, WorkDir) else WorkDir(workdir)
    box = bbox if isinstance(bbox, Box) else parse_bbox(bbox)
    if format not in FORMATS:
        raise ConfigError(f"--format {format!r}: expected one of {', '.join(FORMATS)}")
    out = Path(out).expanduser()
    if out.is_dir() and format == "netcdf":
        raise InputError(out, "is a folder; give the NetCDF file to write")
    if out.is_dir() and any(out.iterdir()) and not (
        (out / ".zgroup").exists() or (out / "zarr.json").exists()
    ):
        raise InputError(out, "exists, is not empty and is not a Zarr store; choose a new path")
    if out.exists() and not out.is_dir() and format == "zarr":
        raise InputError(out, "is a file; give the folder of the Zarr store to write")
    if not out.parent.is_dir():
        raise InputError(out.parent, "no such folder")
    command = "smcore export --workdir {} --bbox {}{}{} --format {} --out {}".format(
        shlex.quote(str(wd.root)), box,
        f" --experiments {','.join(experiments)}" if experiments else "",
        f" --period {period[0]}-{period[1]}" if period else "", format, shlex.quote(str(out)),
    )
    ds = region_dataset(wd, box, experiments, period, command=command)
    if format == "netcdf":
        time = {"units": _TIME_UNITS, "calendar": "standard", "dtype": "float64",
                "_FillValue": None}
        enc: dict[str, dict[str, Any]] = {
            "time": time, "time_bnds": time, "lat_bnds": {"_FillValue": None},
            "lon_bnds": {"_FillValue": None},
        }
        if "ssmi_trend_significant" in ds:
            enc["ssmi_trend_significant"] = {"_FillValue": np.int8(-1)}
            ds["ssmi_trend_significant"].attrs.pop("_FillValue", None)
        write_netcdf(ds, out, time_chunk=12, encoding=enc)
    else:
        if "ssmi_trend_significant" in ds:
            ds["ssmi_trend_significant"].attrs.pop("_FillValue", None)
            ds["ssmi_trend_significant"].encoding["_FillValue"] = np.int8(-1)
        for name in ds.data_vars:
            if ds[name].dtype.kind == "f":
                ds[name].encoding.setdefault("_FillValue", np.float32(np.nan))
        with atomic_dir(out) as tmp:
            ds.to_zarr(tmp, mode="w", consolidated=True, **zarr_v2())
    n_exp, n_t = ds.sizes["experiment"], ds.sizes["time"]
    report(
        f"wrote {out}: {n_exp} experiment(s) x {n_t} months x {ds.sizes['lat']}x"
        f"{ds.sizes['lon']} cells ({ds.attrs['time_coverage_start']}.."
        f"{ds.attrs['time_coverage_end']})"
    )
    return out
