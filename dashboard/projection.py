"""Map projections of the dashboard: latitude/longitude and an equal-area conic for China.

Projection math only (cartopy's coordinate reference systems on PROJ): no feature, no tile,
nothing downloaded. A :class:`MapFrame` ties one regular (lat, lon) grid to one projection:
it carries the projected image grid, warps any field of the grid onto it (nearest cell, an
index computed once, so an in-place update costs one fancy index), projects points, and
maps a click on the projected map back to longitude and latitude.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import cartopy.crs as ccrs
import numpy as np

__all__ = [
    "PROJECTIONS",
    "PROJECTION_LABELS",
    "PROJECTION_NAMES",
    "DEFAULT_PROJECTION",
    "MapFrame",
    "map_frame",
    "graticule",
]

ALBERS_CHINA = ccrs.AlbersEqualArea(
    central_longitude=105.0, central_latitude=0.0, standard_parallels=(25.0, 47.0)
)
"""Albers equal-area conic for China: central meridian 105°E, standard parallels 25°N, 47°N."""

PROJECTIONS: dict[str, ccrs.Projection] = {
    "lonlat": ccrs.PlateCarree(),
    "albers": ALBERS_CHINA,
}
"""The projections offered in the sidebar, by key."""

PROJECTION_LABELS: dict[str, str] = {
    "Latitude / longitude": "lonlat",
    "Albers equal-area (China)": "albers",
}
"""Sidebar labels of :data:`PROJECTIONS`."""

PROJECTION_NAMES: dict[str, str] = {
    "lonlat": "latitude/longitude",
    "albers": "Albers equal-area conic, standard parallels 25°N and 47°N, centred on 105°E",
}
"""What each projection is, in words (captions)."""

DEFAULT_PROJECTION = "lonlat"

_GEODETIC = ccrs.PlateCarree()


def _edges(centres: np.ndarray) -> tuple[float, float, float]:
    """(first edge, last edge, step) of a regular axis of cell centres."""
    c = np.asarray(centres, dtype=float)
    step = float(np.abs(np.diff(c)).mean()) if c.size > 1 else 1.0
    return float(c.min() - step / 2), float(c.max() + step / 2), step


@dataclass(frozen=True, eq=False)
class MapFrame:
    """One regular (lat, lon) grid drawn in one projection.

    ``x`` and ``y`` are the centres of the image's pixels in the projection's coordinates
    (ascending); ``index`` gives, for each pixel (y, x), the flat index of the grid cell
    (lat, lon) it shows, or -1 outside the grid. In latitude/longitude the image is the grid
    itself and ``index`` is None.
    """

    key: str
    crs: ccrs.Projection
    lat: np.ndarray
    lon: np.ndarray
    x: np.ndarray
    y: np.ndarray
    index: np.ndarray | None = field(default=None, repr=False)

    @property
    def geographic(self) -> bool:
        """Whether the map is drawn in latitude/longitude."""
        return self.index is None

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """Outer edges (x0, x1, y0, y1) of the image, projection coordinates."""
        x0, x1, _ = _edges(self.x)
        y0, y1, _ = _edges(self.y)
        return x0, x1, y0, y1

    @property
    def aspect(self) -> float:
        """Height / width of the image (projection units)."""
        x0, x1, y0, y1 = self.extent
        return (y1 - y0) / (x1 - x0)

    def warp(self, values: np.ndarray) -> np.ndarray:
        """A (lat, lon) field of the grid as the image (y, x): the cell under each pixel."""
        values = np.asarray(values)
        if self.index is None:
            return values
        flat = values.reshape(-1)
        fill = np.nan if np.issubdtype(values.dtype, np.floating) else 0
        out = np.where(self.index >= 0, flat[np.clip(self.index, 0, None)], fill)
        return out.astype(values.dtype, copy=False)

    def forward(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Projected (x, y) of points given in degrees."""
        lon = np.asarray(lon, dtype=float)
        lat = np.asarray(lat, dtype=float)
        if self.geographic:
            return lon, lat
        xyz = self.crs.transform_points(_GEODETIC, lon.ravel(), lat.ravel())
        return xyz[:, 0].reshape(lon.shape), xyz[:, 1].reshape(lat.shape)

    def inverse(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lon, lat) in degrees of points given in projection coordinates."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        if self.geographic:
            return x, y
        xyz = _GEODETIC.transform_points(self.crs, x.ravel(), y.ravel())
        return xyz[:, 0].reshape(x.shape), xyz[:, 1].reshape(y.shape)

    def project_lines(self, arr: np.ndarray) -> np.ndarray:
        """NaN-separated (m, 2) lon/lat polylines in projection coordinates (NaN rows kept)."""
        if self.geographic or arr.size == 0:
            return arr
        x, y = self.forward(arr[:, 0], arr[:, 1])
        out = np.column_stack([x, y])
        out[~np.isfinite(arr).all(axis=1)] = np.nan
        return out


def _grid_key(lat: np.ndarray, lon: np.ndarray) -> tuple[float, float, int, float, float, int]:
    lat0, _, dlat = _edges(lat)
    lon0, _, dlon = _edges(lon)
    return (
        round(lat0, 9),
        round(dlat, 12),
        int(lat.size),
        round(lon0, 9),
        round(dlon, 12),
        int(lon.size),
    )


@functools.lru_cache(maxsize=32)
def _frame(key: str, grid: tuple[float, float, int, float, float, int]) -> MapFrame:
    lat0, dlat, nlat, lon0, dlon, nlon = grid
    lat1, lon1 = lat0 + dlat * nlat, lon0 + dlon * nlon
    lat = lat0 + dlat * (np.arange(nlat) + 0.5)
    lon = lon0 + dlon * (np.arange(nlon) + 0.5)
    crs = PROJECTIONS[key]
    if key == "lonlat":
        return MapFrame(key, crs, lat, lon, lon, lat)
    # the grid's outline, densely sampled, gives the projected extent
    n = 200
    ring_lon = np.concatenate(
        [np.linspace(lon0, lon1, n), np.full(n, lon1), np.linspace(lon1, lon0, n), np.full(n, lon0)]
    )
    ring_lat = np.concatenate(
        [np.full(n, lat0), np.linspace(lat0, lat1, n), np.full(n, lat1), np.linspace(lat1, lat0, n)]
    )
    xyz = crs.transform_points(_GEODETIC, ring_lon, ring_lat)
    x0, x1 = float(xyz[:, 0].min()), float(xyz[:, 0].max())
    y0, y1 = float(xyz[:, 1].min()), float(xyz[:, 1].max())
    # about as many pixels across as the grid has columns: no detail lost, none invented
    size = (x1 - x0) / nlon
    nx = nlon
    ny = int(np.ceil((y1 - y0) / size))
    x = x0 + size * (np.arange(nx) + 0.5)
    y = y0 + size * (np.arange(ny) + 0.5)
    xx, yy = np.meshgrid(x, y)
    geo = _GEODETIC.transform_points(crs, xx.ravel(), yy.ravel())
    plon, plat = geo[:, 0].reshape(xx.shape), geo[:, 1].reshape(yy.shape)
    with np.errstate(invalid="ignore"):
        j = np.floor((plon - lon0) / dlon).astype(np.int64, copy=False)
        i = np.floor((plat - lat0) / dlat).astype(np.int64, copy=False)
    inside = np.isfinite(plon) & np.isfinite(plat) & (i >= 0) & (i < nlat) & (j >= 0) & (j < nlon)
    index = np.where(inside, i * nlon + j, -1)
    return MapFrame(key, crs, lat, lon, x, y, index)


def map_frame(lat: np.ndarray, lon: np.ndarray, projection: str = DEFAULT_PROJECTION) -> MapFrame:
    """The frame of the regular grid (``lat``, ``lon`` centres, ascending) in ``projection``.

    Cached: every map of one grid and projection shares one frame.
    """
    if projection not in PROJECTIONS:
        raise ValueError(f"unknown projection {projection!r}; known: {', '.join(PROJECTIONS)}")
    lat = np.sort(np.asarray(lat, dtype=float))
    lon = np.sort(np.asarray(lon, dtype=float))
    return _frame(projection, _grid_key(lat, lon))


@functools.lru_cache(maxsize=8)
def _graticule(
    frame_key: str, extent: tuple[float, float, float, float], step: float
) -> np.ndarray:
    lon0, lon1, lat0, lat1 = extent
    lines = []
    n = 60
    for lon in np.arange(np.ceil(lon0 / step) * step, lon1 + 1e-9, step):
        lines.append(np.column_stack([np.full(n, lon), np.linspace(lat0, lat1, n)]))
    for lat in np.arange(np.ceil(lat0 / step) * step, lat1 + 1e-9, step):
        lines.append(np.column_stack([np.linspace(lon0, lon1, n), np.full(n, lat)]))
    parts = []
    for line in lines:
        parts += [line, np.full((1, 2), np.nan)]
    return np.concatenate(parts[:-1]) if parts else np.empty((0, 2))


def graticule(
    frame: MapFrame, step: float = 10.0
) -> tuple[np.ndarray, list[tuple[float, float, str, str]]]:
    """Meridians and parallels every ``step`` degrees over the frame's grid, projected.

    Returns the NaN-separated (m, 2) lines and labels ``(x, y, text, align)`` where the
    meridians meet the grid's southern edge and the parallels its western edge (drawn just
    inside the map).
    """
    lon0, lon1, _ = _edges(frame.lon)
    lat0, lat1, _ = _edges(frame.lat)
    extent = (round(lon0, 6), round(lon1, 6), round(lat0, 6), round(lat1, 6))
    lines = frame.project_lines(_graticule(frame.key, extent, step))
    labels: list[tuple[float, float, str, str]] = []
    for lon in np.arange(np.ceil(lon0 / step) * step, lon1 + 1e-9, step):
        x, y = frame.forward(np.array([lon]), np.array([lat0]))
        labels.append((float(x[0]), float(y[0]), f"{lon:g}°E", "center"))
    for lat in np.arange(np.ceil(lat0 / step) * step, lat1 + 1e-9, step):
        x, y = frame.forward(np.array([lon0]), np.array([lat]))
        labels.append((float(x[0]), float(y[0]), f"{lat:g}°N", "left"))
    return lines, labels
