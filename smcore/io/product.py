"""Open a merged product (or a truth file in the same layout) with every check, in one place.

``smcore evaluate``, ``smcore analyse`` and the dashboard read ``product/CMIP6_DL_<exp>.nc``
and the demo's ``truth_<exp>.nc`` through :func:`open_product`, so the three refuse the same
bad files with the same one-line message naming the file. :func:`check_same_checkpoint`
refuses a set of products made from different checkpoints (their ``checkpoint_sha256``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from smcore.errors import InputError
from smcore.io.nclock import netcdf4_dataset, open_netcdf

__all__ = ["ACCEPTED_UNITS", "open_product", "checkpoint_of", "check_same_checkpoint"]

ACCEPTED_UNITS = frozenset({"m3 m-3", "m3/m3", "m^3 m^-3", "m**3 m**-3", "m3.m-3", "1"})
"""Spellings of a volume fraction accepted for ``ssm``."""


def open_product(
    path: str | Path,
    *,
    what: str = "product",
    hint: str = "",
    grid: tuple[np.ndarray, np.ndarray] | None = None,
    needs: Iterable[tuple[str, tuple[int, int]]] = (),
    chunks: dict[str, Any] | None = None,
) -> xr.DataArray:
    """``ssm(time, lat, lon)`` of a product or truth file, lazily opened and checked.

    Parameters
    ----------
    path : str or Path
        The NetCDF file.
    what : str
        What the file is, for messages ("network product", "truth").
    hint : str
        How to obtain a missing file (e.g. "run `smcore predict --workdir WD` first").
    grid : (lat, lon) arrays, optional
        Cell centres (degrees) the file must be on.
    needs : pairs (name, (first_year, last_year))
        Periods the file must cover entirely.
    chunks : dict or None
        Dask chunks (``{}``: the file's own chunks); ``None`` keeps the data lazily indexed
        without dask and uncached, so that reading a month or a cell reads only that.

    Returns
    -------
    DataArray ``ssm`` (time, lat, lon), m3 m-3, as stored (float32 for smcore products).

    Raises
    ------
    InputError naming the file and the problem: missing or unreadable file, no ``ssm``, other
    dims, units that are not a volume fraction, an undecodable, empty or non-monthly time axis,
    a period not covered, another grid.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, f"file not found ({what})" + (f"; {hint}" if hint else ""))
    try:
        ds = open_netcdf(path, chunks=chunks, cache=False if chunks is None else None)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad input file
        raise InputError(path, f"cannot read NetCDF: {str(exc).splitlines()[0]}") from exc
    if "ssm" not in ds:
        found = ", ".join(map(str, ds.data_vars)) or "none"
        raise InputError(path, f"no variable 'ssm' in this {what} (found: {found})")
    da = ds["ssm"]
    if set(da.dims) != {"time", "lat", "lon"}:
        raise InputError(path, f"'ssm' has dims {da.dims}, expected (time, lat, lon)")
    units = str(da.attrs.get("units", "")).strip()
    if units not in ACCEPTED_UNITS:
        raise InputError(path, f"'ssm' has units {units!r}, expected 'm3 m-3'")
    try:
        years = np.asarray(da["time"].dt.year.values)
        months = np.asarray(da["time"].dt.month.values)
    except (AttributeError, TypeError) as exc:
        raise InputError(path, f"time coordinate is not decodable as dates: {exc}") from exc
    if years.size == 0:
        raise InputError(path, "'ssm' has no time steps")
    if np.any(np.diff(years * 12 + months) <= 0):
        raise InputError(path, "time steps are not strictly increasing monthly values")
    present = set(years.tolist())
    for name, (y0, y1) in needs:
        missing = [y for y in range(y0, y1 + 1) if y not in present]
        if missing:
            raise InputError(
                path,
                f"covers {years.min()}-{years.max()} but {name} needs {y0}-{y1} "
                f"(missing {missing[0]}{'…' if len(missing) > 1 else ''})",
            )
    da = da.transpose("time", "lat", "lon")
    if grid is not None:
        lat, lon = (np.asarray(g, dtype=np.float64) for g in grid)
        if da.sizes["lat"] != lat.size or da.sizes["lon"] != lon.size:
            raise InputError(
                path,
                f"grid {da.sizes['lat']}x{da.sizes['lon']} differs from the target grid "
                f"{lat.size}x{lon.size}",
            )
        if not (
            np.allclose(da["lat"].values, lat, atol=1e-4)
            and np.allclose(da["lon"].values, lon, atol=1e-4)
        ):
            raise InputError(path, "lat/lon differ from the target grid of the prepared store")
    da.attrs["source_file"] = str(path)
    return da


def checkpoint_of(path: str | Path) -> str | None:
    """The ``checkpoint_sha256`` global attribute of a product (``None`` if absent or unreadable).

    Only the header is read; a file that cannot be read is left to :func:`open_product`.
    """
    try:
        with netcdf4_dataset(path) as nc:
            value = getattr(nc, "checkpoint_sha256", None)
    except (OSError, RuntimeError, ValueError):
        return None
    if value is None:
        return None
    return str(value).strip() or None


def check_same_checkpoint(paths: Iterable[str | Path], hint: str = "") -> str | None:
    """The checkpoint SHA-256 shared by the products at ``paths`` (missing files are skipped).

    Raises :class:`InputError` naming the files when they were made from different
    checkpoints (e.g. an interrupted ``smcore predict`` after a new training). Products
    without the attribute (not written by ``smcore predict``) are not compared.
    """
    groups: dict[str, list[Path]] = {}
    for p in paths:
        p = Path(p)
        if not p.is_file():
            continue
        sha = checkpoint_of(p)
        if sha is not None:
            groups.setdefault(sha, []).append(p)
    if len(groups) <= 1:
        return next(iter(groups), None)
    parts = [
        f"{', '.join(str(f) for f in files)} (checkpoint {sha[:12]}…)"
        for sha, files in groups.items()
    ]
    raise InputError(
        None,
        "products made from different checkpoints: " + "; ".join(parts)
        + (f"; {hint}" if hint else "; rerun `smcore predict` so that all come from one"),
    )
