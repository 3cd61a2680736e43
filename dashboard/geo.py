"""Map outlines (China, provinces, Tibetan Plateau, coastlines) from the offline ``assets/``.

Lines come from :func:`smcore.assets.boundary_lines` and are simplified and clipped once per
server (:func:`load_outlines`); :mod:`dashboard.maps` draws them. No ``geoviews.feature``, no
tiles, nothing downloaded. If the assets are missing the maps are drawn without outlines and
:meth:`Outlines.status` says why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import panel as pn

__all__ = ["OUTLINES", "Outlines", "load_outlines", "merge_lines"]

log = logging.getLogger(__name__)

OUTLINES = ("coastline", "china_provinces", "china_boundary", "tibetan_plateau")
"""Layers drawn on every map, bottom to top."""


@dataclass(frozen=True)
class Outlines:
    """Outline layers as NaN-separated (m, 2) lon/lat arrays, and why any layer is absent."""

    arrays: dict[str, np.ndarray]
    problems: dict[str, str]

    def status(self) -> str:
        """Empty when every layer loaded, else a one-line explanation."""
        if not self.problems:
            return ""
        return "Map outlines missing: " + "; ".join(f"{k}: {v}" for k, v in self.problems.items())


def merge_lines(
    lines: list[np.ndarray],
    extent: tuple[float, float, float, float] | None = None,
    tolerance: float = 0.0,
) -> np.ndarray:
    """Join polylines ((n, 2) lon/lat arrays) into one (m, 2) array, NaN rows between lines.

    With ``tolerance`` (degrees) each line is simplified (Douglas–Peucker); with ``extent``
    ``(lon0, lon1, lat0, lat1)`` vertices outside it become breaks.
    """
    parts: list[np.ndarray] = []
    for line in lines:
        arr = np.asarray(line, dtype=float)
        if arr.ndim != 2 or arr.shape[0] < 2:
            continue
        if tolerance > 0 and arr.shape[0] > 4:
            import shapely

            simple = shapely.LineString(arr[:, :2]).simplify(tolerance, preserve_topology=False)
            arr = np.asarray(simple.coords, dtype=float)
        if extent is not None:
            lon0, lon1, lat0, lat1 = extent
            out = (arr[:, 0] < lon0) | (arr[:, 0] > lon1) | (arr[:, 1] < lat0) | (arr[:, 1] > lat1)
            if out.all():
                continue
            arr = arr[:, :2].copy()
            arr[out] = np.nan
        parts.append(arr[:, :2])
        parts.append(np.full((1, 2), np.nan))
    if not parts:
        return np.empty((0, 2))
    return np.concatenate(parts[:-1])


@pn.cache(max_items=4)
def load_outlines(extent: tuple[float, float, float, float], tolerance: float = 0.02) -> Outlines:
    """Every outline layer clipped to ``extent`` (lon0, lon1, lat0, lat1), simplified (degrees)."""
    arrays: dict[str, np.ndarray] = {}
    problems: dict[str, str] = {}
    try:
        from smcore import assets
    except ImportError as exc:
        return Outlines(arrays, {"all": f"smcore.assets is not available ({exc})"})
    for name in OUTLINES:
        try:
            lines = assets.boundary_lines(name)
        except Exception as exc:  # noqa: BLE001 - a missing layer must not break the maps
            problems[name] = f"{type(exc).__name__}: {exc}"
            log.warning("map outline %s unavailable: %s", name, exc)
            continue
        merged = merge_lines(lines, extent=extent, tolerance=tolerance)
        if merged.size:
            arrays[name] = merged
    return Outlines(arrays, problems)
