"""Static geography of the target grid (China mask, elevation) from :mod:`smcore.assets`."""

from __future__ import annotations

import importlib

import numpy as np

from smcore.config import GridSpec
from smcore.errors import SmcoreError

__all__ = ["china_and_elevation"]


def china_and_elevation(grid: GridSpec) -> tuple[np.ndarray, np.ndarray]:
    """``(inside_china bool(lat, lon), elevation float32(lat, lon) in m, 0 over sea)``."""
    try:
        assets = importlib.import_module("smcore.assets")
    except ImportError as exc:
        raise SmcoreError(f"cannot load the offline geography (smcore.assets): {exc}") from exc
    china = np.asarray(assets.china_mask(grid).values, dtype=bool)
    elev = np.asarray(assets.elevation(grid).values, dtype="float32")
    if china.shape != grid.shape or elev.shape != grid.shape:
        raise SmcoreError(
            f"smcore.assets returned shapes {china.shape}/{elev.shape}, expected {grid.shape}"
        )
    return china, np.nan_to_num(elev, nan=0.0).astype("float32")
