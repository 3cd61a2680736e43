"""How each synthetic model's files look: native grid, longitude/latitude conventions,
regional or global extent, how a dataset is split into files, version, time axis.

The variety mirrors what users download from ESGF, so the demo exercises every branch
of the loaders: 0…360 and −180…180 longitudes, ascending and descending latitudes,
global and regional files, datasets in one file, in 50-year pieces or yearly, and all
the calendars of Table 1 (from :class:`smcore.config.ModelSpec`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import cftime
import numpy as np

from smcore import assets
from smcore.config import ModelSpec

__all__ = [
    "REGION",
    "TIME_UNITS",
    "FileLayout",
    "NativeGrid",
    "layout_for",
    "native_grid",
    "file_pieces",
    "month_axis",
    "drs_version",
    "nominal_resolution",
]

REGION = (10.0, 60.0, 60.0, 145.0)
"""lat_min, lat_max, lon_min, lon_max (degrees) of the regional cut of most model files."""

TIME_UNITS = "days since 1850-01-01"


@dataclass(frozen=True)
class FileLayout:
    """File conventions of one model's dataset.

    ``lon_convention`` is ``"0_360"`` or ``"-180_180"``; ``split`` is ``"single"``,
    ``"50y"`` (historical 1950–1999 + 2000–2014, SSPs 2015–2064 + 2065–2100) or
    ``"yearly"``.
    """

    lon_convention: str = "0_360"
    lat_descending: bool = False
    global_extent: bool = False
    split: str = "single"


_LAYOUTS: dict[str, FileLayout] = {
    "CanESM5": FileLayout(global_extent=True),
    "MIROC-ES2L": FileLayout(global_extent=True, split="50y"),
    "GISS-E2-1-G": FileLayout(lon_convention="-180_180", global_extent=True, split="50y"),
    "FGOALS-g3": FileLayout(lat_descending=True),
    "KACE-1-0-G": FileLayout(lat_descending=True, split="50y"),
    "EC-Earth3-Veg": FileLayout(split="yearly"),
    "EC-Earth3-Veg-LR": FileLayout(split="yearly"),
    "CESM2": FileLayout(split="50y"),
    "CESM2-WACCM": FileLayout(split="50y"),
    "UKESM1-0-LL": FileLayout(split="50y"),
}


def layout_for(source_id: str) -> FileLayout:
    """The file layout of a model (regional, 0…360, ascending, one file unless listed)."""
    return _LAYOUTS.get(source_id, FileLayout())


@dataclass(frozen=True)
class NativeGrid:
    """A model's native grid as written: centres (lat ascending here), bounds, land.

    ``lon`` is in the file's convention; ``land`` is True where at least half the cell
    is land (the model's own land/sea mask).
    """

    lat: np.ndarray
    lon: np.ndarray
    lat_bounds: np.ndarray
    lon_bounds: np.ndarray
    land: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return (self.lat.size, self.lon.size)


def native_grid(spec: ModelSpec, layout: FileLayout) -> NativeGrid:
    """The regular grid of ``spec`` (dlat × dlon), cut to :data:`REGION` unless global.

    Latitudes are cell centres ``-90 + (j + 0.5) · 180/n``; longitudes start at 0 (0…360)
    or at ``-180 + half a cell`` (−180…180).
    """
    nlat = int(round(180.0 / spec.dlat))
    nlon = int(round(360.0 / spec.dlon))
    dy, dx = 180.0 / nlat, 360.0 / nlon
    lat = -90.0 + (np.arange(nlat) + 0.5) * dy
    if layout.lon_convention == "-180_180":
        lon = -180.0 + (np.arange(nlon) + 0.5) * dx
    elif layout.lon_convention == "0_360":
        lon = np.arange(nlon) * dx
    else:
        raise ValueError(f"unknown longitude convention {layout.lon_convention!r}")
    if not layout.global_extent:
        lat0, lat1, lon0, lon1 = REGION
        lat = lat[(lat >= lat0) & (lat <= lat1)]
        lon = lon[(lon >= lon0) & (lon <= lon1)]
    lat = np.round(lat, 6)
    lon = np.round(lon, 6)
    lat_b = np.stack([lat - dy / 2, lat + dy / 2], axis=1).clip(-90.0, 90.0)
    lon_b = np.stack([lon - dx / 2, lon + dx / 2], axis=1)
    land = assets.land_fraction(lat_b, lon_b) >= 0.5
    return NativeGrid(lat=lat, lon=lon, lat_bounds=lat_b, lon_bounds=lon_b, land=land)


def file_pieces(layout: FileLayout, experiment: str, y0: int, y1: int) -> list[tuple[int, int]]:
    """Year ranges (inclusive) of the files one dataset is split into."""
    if layout.split == "yearly":
        return [(y, y) for y in range(y0, y1 + 1)]
    if layout.split == "50y":
        cut = 2000 if experiment == "historical" else 2065
        pieces = [(y0, min(y1, cut - 1)), (max(y0, cut), y1)]
        return [(a, b) for a, b in pieces if a <= b]
    if layout.split == "single":
        return [(y0, y1)]
    raise ValueError(f"unknown split {layout.split!r}")


def month_axis(calendar: str, y0: int, y1: int) -> tuple[np.ndarray, np.ndarray]:
    """Mid-month times (n,) and bounds (n, 2) in :data:`TIME_UNITS` for a calendar.

    Bounds are the first instants of the month and of the next month; the time is
    their midpoint (day 15 of a 360-day month, 15.5 of January, …).
    """
    starts = [cftime.datetime(y, m, 1, calendar=calendar)
              for y in range(y0, y1 + 1) for m in range(1, 13)]
    starts.append(cftime.datetime(y1 + 1, 1, 1, calendar=calendar))
    edges = np.asarray(cftime.date2num(starts, TIME_UNITS, calendar=calendar), dtype=np.float64)
    bounds = np.stack([edges[:-1], edges[1:]], axis=1)
    return bounds.mean(axis=1), bounds


def drs_version(source_id: str, experiment: str) -> str:
    """A plausible, reproducible ESGF version label (``vYYYYMMDD``) of a dataset."""
    h = zlib.crc32(f"{source_id}/{experiment}".encode())
    year = 2019 + h % 3
    month = 1 + (h >> 4) % 12
    day = 1 + (h >> 8) % 28
    return f"v{year}{month:02d}{day:02d}"


def nominal_resolution(spec: ModelSpec) -> str:
    """CMIP6 ``nominal_resolution`` of a grid (``100 km``, ``250 km``, …)."""
    km = float(np.sqrt(spec.dlat * spec.dlon)) * 111.0
    options = np.array([50.0, 100.0, 250.0, 500.0])
    best = options[np.argmin(np.abs(np.log(options / km)))]
    return f"{int(best)} km"
