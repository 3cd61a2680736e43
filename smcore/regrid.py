"""Pure functions that put gridded fields on the study grids.

All functions take and return xarray objects with 1-D ``lat``/``lon`` coordinates
(degrees north / east) and stay lazy on dask-backed data. The order of use is
:func:`standard_lat_lon` → :func:`wrap_longitude` → :func:`ascending_latitude` →
:func:`cut_domain` → (:func:`fill_nearest`) → :func:`bilinear_to_grid`.

Bilinear interpolation is :meth:`xarray.DataArray.interp` (``method="linear"``,
separable in latitude and longitude), made NaN-aware by normalised convolution:
the interpolated values of ``where(valid, x, 0)`` are divided by the interpolated
validity ``valid`` (1/0). Where all four neighbours are valid this is exactly the
bilinear value; near a coastline it is the bilinear mean of the valid neighbours,
kept where the validity weight is at least ``min_weight``.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import xarray as xr
from scipy import ndimage

from smcore.config import GridSpec
from smcore.io.netcdf import CF_COORD_ATTRS

__all__ = [
    "GridError",
    "linear_weights",
    "standard_lat_lon",
    "wrap_longitude",
    "ascending_latitude",
    "cut_domain",
    "select_domain",
    "domain_coverage",
    "fill_nearest",
    "bilinear_to_grid",
    "grid_coords",
]

T = TypeVar("T", xr.DataArray, xr.Dataset)

_LAT_NAMES = ("lat", "latitude", "nav_lat")
_LON_NAMES = ("lon", "longitude", "nav_lon")


class GridError(ValueError):
    """A grid that cannot be used (no 1-D lat/lon, no overlap with the domain)."""


def standard_lat_lon(obj: T) -> T:
    """Rename latitude/longitude coordinates (and their dims) to ``lat``/``lon``.

    Recognises ``lat``/``latitude``/``nav_lat`` (and ``standard_name`` latitude),
    likewise for longitude. Raises :class:`GridError` when a coordinate is missing or
    is not 1-D (curvilinear and unstructured grids must be regridded beforehand).
    """
    rename: dict[str, str] = {}
    for names, std, sname in ((_LAT_NAMES, "lat", "latitude"), (_LON_NAMES, "lon", "longitude")):
        found = next(
            (n for n in names if n in obj.coords or n in getattr(obj, "variables", {})), None
        )
        if found is None:
            found = next(
                (str(n) for n, v in obj.coords.items() if v.attrs.get("standard_name") == sname),
                None,
            )
        if found is None:
            raise GridError(f"no {sname} coordinate")
        coord = obj[found]
        if coord.ndim != 1:
            raise GridError(
                f"{found} is {coord.ndim}-D (curvilinear or unstructured grid): "
                "regrid it to a regular lat/lon grid first (e.g. `cdo remapbil`)"
            )
        dim = str(coord.dims[0])
        if found != std:
            rename[found] = std
        if dim not in (found, std):
            rename[dim] = std
    return obj.rename(rename) if rename else obj


def wrap_longitude(obj: T, center: float) -> T:
    """Express longitudes in ``[center - 180, center + 180)`` and sort them ascending.

    Works for 0…360 and −180…180 inputs alike; a repeated cyclic column (0 and 360)
    is dropped.
    """
    lon = obj["lon"].values.astype("float64")
    new = (lon - center + 180.0) % 360.0 - 180.0 + center
    out = obj.assign_coords(lon=("lon", new, obj["lon"].attrs))
    if not np.all(np.diff(new) > 0):
        out = out.sortby("lon")
        _, first = np.unique(out["lon"].values, return_index=True)
        if first.size != out.sizes["lon"]:
            out = out.isel(lon=np.sort(first))
    return out


def ascending_latitude(obj: T) -> T:
    """Sort latitudes ascending (south to north) if they are not already."""
    lat = obj["lat"].values
    if lat.size > 1 and lat[0] > lat[-1]:
        return obj.isel(lat=slice(None, None, -1))
    if lat.size > 1 and not np.all(np.diff(lat) > 0):
        return obj.sortby("lat")
    return obj


def cut_domain(obj: T, grid: GridSpec, margin_deg: float) -> T:
    """Keep the points within ``margin_deg`` degrees of the grid's outer edges.

    Expects ascending ``lat`` and longitudes wrapped around the grid (see
    :func:`wrap_longitude`). Raises :class:`GridError` when fewer than two points
    remain in either direction (the source grid does not overlap the domain).
    """
    lon0, lon1, lat0, lat1 = grid.extent()
    lat = obj["lat"].values
    lon = obj["lon"].values
    ilat = np.flatnonzero((lat >= lat0 - margin_deg) & (lat <= lat1 + margin_deg))
    ilon = np.flatnonzero((lon >= lon0 - margin_deg) & (lon <= lon1 + margin_deg))
    if ilat.size < 2 or ilon.size < 2:
        raise GridError(
            f"grid (lat {lat.min():.2f}..{lat.max():.2f}, lon {lon.min():.2f}..{lon.max():.2f}) "
            f"does not overlap the domain (lat {lat0:.2f}..{lat1:.2f}, lon {lon0:.2f}..{lon1:.2f})"
        )
    return obj.isel(lat=slice(ilat[0], ilat[-1] + 1), lon=slice(ilon[0], ilon[-1] + 1))


def _as_slice(idx: np.ndarray) -> slice | np.ndarray:
    """A contiguous run of indices as a slice (so file readers fetch one hyperslab)."""
    if idx.size > 1:
        step = np.diff(idx)
        if np.all(step == 1):
            return slice(int(idx[0]), int(idx[-1]) + 1)
        if np.all(step == -1):
            stop = int(idx[-1]) - 1
            return slice(int(idx[0]), stop if stop >= 0 else None, -1)
    return idx


def select_domain(obj: T, grid: GridSpec, margin_deg: float) -> T:
    """:func:`wrap_longitude`, :func:`ascending_latitude` and :func:`cut_domain` in one step.

    Uses a single ``isel`` with slices wherever the kept points are contiguous in the
    source, so that on a lazily opened file only the domain is ever read. Raises
    :class:`GridError` when the grid does not overlap the domain.
    """
    lat = obj["lat"].values.astype("float64")
    lon = obj["lon"].values.astype("float64")
    center = float(np.mean(grid.lon))
    wrapped = (lon - center + 180.0) % 360.0 - 180.0 + center
    lon0, lon1, lat0, lat1 = grid.extent()
    ilat = np.flatnonzero((lat >= lat0 - margin_deg) & (lat <= lat1 + margin_deg))
    ilat = ilat[np.argsort(lat[ilat], kind="stable")]
    ilon = np.flatnonzero((wrapped >= lon0 - margin_deg) & (wrapped <= lon1 + margin_deg))
    ilon = ilon[np.argsort(wrapped[ilon], kind="stable")]
    if ilon.size:
        _, first = np.unique(wrapped[ilon], return_index=True)
        ilon = ilon[np.sort(first)]
    if ilat.size < 2 or ilon.size < 2:
        raise GridError(
            f"grid (lat {lat.min():.2f}..{lat.max():.2f}, lon {lon.min():.2f}..{lon.max():.2f}) "
            f"does not overlap the domain (lat {lat0:.2f}..{lat1:.2f}, lon {lon0:.2f}..{lon1:.2f})"
        )
    out = obj.isel(lat=_as_slice(ilat), lon=_as_slice(ilon))
    return out.assign_coords(lon=("lon", wrapped[ilon], obj["lon"].attrs))


def domain_coverage(obj: xr.DataArray | xr.Dataset, grid: GridSpec) -> float:
    """Fraction of the grid's cell centres that lie inside the source grid's span."""
    lat, lon = obj["lat"].values, obj["lon"].values
    inside_lat = (grid.lat >= lat.min()) & (grid.lat <= lat.max())
    inside_lon = (grid.lon >= lon.min()) & (grid.lon <= lon.max())
    return float(inside_lat.mean() * inside_lon.mean())


def _fill_nearest_np(a: np.ndarray) -> np.ndarray:
    """Fill NaNs of ``a[..., y, x]`` with the nearest finite value of the same 2-D slice."""
    out = np.array(a, copy=True)
    flat = out.reshape((-1,) + out.shape[-2:])
    invalid = ~np.isfinite(flat)
    if not invalid.any():
        return out
    # slices usually share one NaN pattern (the ocean): solve each pattern once
    todo = np.ones(flat.shape[0], dtype=bool)
    while todo.any():
        i = int(np.flatnonzero(todo)[0])
        mask = invalid[i]
        same = todo & (invalid == mask).all(axis=(1, 2))
        todo &= ~same
        if not mask.any() or mask.all():
            continue
        iy, ix = ndimage.distance_transform_edt(mask, return_distances=False, return_indices=True)
        members = np.flatnonzero(same)
        flat[members] = flat[members][:, iy, ix]
    return out


def fill_nearest(da: xr.DataArray) -> xr.DataArray:
    """Fill NaN cells with the value of the nearest finite cell (per 2-D lat/lon slice).

    Used on model data before bilinear regridding, so that ocean (NaN) cells do not
    poison coastal land cells: land values are extrapolated over the sea. Distances
    are counted in grid cells. A slice with no finite value stays NaN. Lazy on dask.
    """
    return xr.apply_ufunc(
        _fill_nearest_np,
        da,
        input_core_dims=[["lat", "lon"]],
        output_core_dims=[["lat", "lon"]],
        dask="parallelized",
        output_dtypes=[da.dtype],
        keep_attrs=True,
    ).transpose(*da.dims)


def grid_coords(grid: GridSpec, names: tuple[str, str] = ("lat", "lon")) -> dict[str, xr.DataArray]:
    """CF coordinate variables of a grid, named ``names`` (e.g. ``("clat", "clon")``)."""
    lat_name, lon_name = names
    return {
        lat_name: xr.DataArray(grid.lat, dims=lat_name, attrs=dict(CF_COORD_ATTRS["lat"])),
        lon_name: xr.DataArray(grid.lon, dims=lon_name, attrs=dict(CF_COORD_ATTRS["lon"])),
    }


def _node_indices(src: np.ndarray, dst: np.ndarray) -> np.ndarray | None:
    """Indices of ``dst`` points in ascending ``src`` if every one is a node (else ``None``)."""
    i = np.clip(np.searchsorted(src, dst), 0, src.size - 1)
    j = np.clip(i - 1, 0, src.size - 1)
    i = np.where(np.abs(src[j] - dst) < np.abs(src[i] - dst), j, i)
    return i if np.all(np.abs(src[i] - dst) < 1e-6) else None


def bilinear_to_grid(
    da: xr.DataArray,
    grid: GridSpec,
    names: tuple[str, str] = ("lat", "lon"),
    min_weight: float = 0.5,
    skipna: bool = True,
) -> xr.DataArray:
    """NaN-aware bilinear interpolation of ``da(..., lat, lon)`` to the centres of ``grid``.

    Returns a float32 DataArray with the spatial dims renamed to ``names``; values keep
    their units. Target points outside the source grid, or whose valid-neighbour
    weight is below ``min_weight``, are NaN. On a field linear in lat and lon the
    result is exact wherever the four neighbours are valid. When every target point
    is a source node (0.25° ERA5-Land onto the 0.25° grid) the values are taken as
    they are, which is what the interpolation gives there. ``skipna=False`` skips the
    normalisation for inputs known to be NaN-free (NaN then spreads to its neighbours).
    """
    src = da.chunk({"lat": -1, "lon": -1}) if da.chunks is not None else da
    tlat, tlon = grid.lat.astype("float64"), grid.lon.astype("float64")
    ilat = _node_indices(src["lat"].values.astype("float64"), tlat)
    ilon = _node_indices(src["lon"].values.astype("float64"), tlon)
    if ilat is not None and ilon is not None:
        out = src.isel(lat=ilat, lon=ilon)
    elif not skipna:
        out = src.astype("float64").interp({"lat": tlat, "lon": tlon}, method="linear")
    else:
        valid = np.isfinite(src)
        num_i = (
            src.where(valid, 0.0)
            .astype("float64")
            .interp({"lat": tlat, "lon": tlon}, method="linear")
        )
        den_i = valid.astype("float64").interp({"lat": tlat, "lon": tlon}, method="linear")
        out = (num_i / den_i.where(den_i > 0)).where(den_i >= min_weight - 1e-9)
    out = out.astype("float32").drop_vars(["lat", "lon"])
    coords = grid_coords(grid, names)
    out = out.rename({"lat": names[0], "lon": names[1]}) if names != ("lat", "lon") else out
    out = out.assign_coords({names[0]: coords[names[0]], names[1]: coords[names[1]]})
    out.attrs = dict(da.attrs)
    out.name = da.name
    return out


def linear_weights(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """1-D linear-interpolation weights from ascending centres ``src`` to points ``dst``.

    Points outside ``[src[0], src[-1]]`` are clamped to the nearest end (constant
    extrapolation), so a value is never extrapolated beyond the range of its neighbours.

    Returns
    -------
    numpy.ndarray
        Shape ``(len(dst), len(src))``, rows summing to 1.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.ndim != 1 or src.size < 1 or np.any(np.diff(src) <= 0):
        raise ValueError("source coordinates must be 1-D and strictly ascending")
    w = np.zeros((dst.size, src.size))
    if src.size == 1:
        w[:, 0] = 1.0
        return w
    x = np.clip(dst, src[0], src[-1])
    hi = np.clip(np.searchsorted(src, x, side="right"), 1, src.size - 1)
    lo = hi - 1
    t = (x - src[lo]) / (src[hi] - src[lo])
    rows = np.arange(dst.size)
    w[rows, lo] += 1.0 - t
    w[rows, hi] += t
    return w
