"""intake-esm catalogs of the factory's CMIP6 files, and a bit-for-bit comparison of stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import zarr

from smcore.demo.catalog import netcdf_catalog, zarr_catalog

# attributes that record when or from which files something was made
PROVENANCE_ATTRS = {"history"}


def catalogs(tree: Path, root: Path) -> dict[str, Path]:
    """The CMIP6 tree ``tree`` as a Zarr-store catalog and as a NetCDF catalog, under ``root``."""
    return {
        "zarr": zarr_catalog(tree, root / "zarr", variable="mrsos"),
        "netcdf": netcdf_catalog(tree, root / "nc" / "catalog.json", variable="mrsos"),
    }


def _walk(group: Any, prefix: str, out: dict[str, Any]) -> None:
    for name, array in group.arrays():
        out[prefix + name] = array
    for name, sub in group.groups():
        out[prefix + name + "/"] = sub
        _walk(sub, prefix + name + "/", out)


def store_nodes(path: Path) -> dict[str, Any]:
    """Every array and group of a Zarr store, by path ('' is the root group)."""
    root = zarr.open_group(str(path), mode="r")
    out: dict[str, Any] = {"": root}
    _walk(root, "", out)
    return out


def store_differences(a: Path, b: Path) -> list[str]:
    """How two Zarr stores differ: arrays (dtype, shape, every value, NaN = NaN), attributes."""
    na, nb = store_nodes(a), store_nodes(b)
    diffs = [f"only in one store: {k}" for k in sorted(set(na) ^ set(nb))]
    for key in sorted(set(na) & set(nb)):
        x, y = na[key], nb[key]
        attrs_x = {k: v for k, v in x.attrs.items() if k not in PROVENANCE_ATTRS}
        attrs_y = {k: v for k, v in y.attrs.items() if k not in PROVENANCE_ATTRS}
        if attrs_x != attrs_y:
            diffs.append(f"attributes of {key or '/'}")
        if key.endswith("/") or key == "":
            continue
        vx, vy = x[...], y[...]
        if vx.dtype != vy.dtype or vx.shape != vy.shape:
            diffs.append(f"{key}: {vx.dtype}{vx.shape} vs {vy.dtype}{vy.shape}")
        elif vx.tobytes() != vy.tobytes():  # bit for bit (NaN payloads included)
            diffs.append(f"{key}: values differ")
    return diffs


def same_nan(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a, b, equal_nan=True))
