"""The box export of the dashboard: the region a map shows, written by ``smcore export``.

:class:`BoxExport` remembers the maps of a tab (their Bokeh figures and frames). Its button
takes the x/y ranges the first map shows now (as panned and zoomed in the browser), maps
their outline back to longitude and latitude (maps may be in the Albers projection) and
writes that box through :func:`smcore.export.export_region`, the code of ``smcore export``:
the product of the tab's experiment and years, CF-1.8 with full provenance, downloaded as a
NetCDF file. The file is made in a temporary folder outside the work directory.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import panel as pn

from dashboard.projection import MapFrame
from smcore.export import Box

__all__ = ["BoxExport", "shown_box"]


def _edges(centres: np.ndarray) -> tuple[float, float]:
    c = np.asarray(centres, dtype=float)
    half = float(np.abs(np.diff(c)).mean()) / 2 if c.size > 1 else 0.5
    return float(c.min() - half), float(c.max() + half)


def shown_box(figure: Any, frame: MapFrame, samples: int = 25) -> Box:
    """The lon/lat box of what ``figure`` shows, within its grid (``frame``).

    The outline of the x/y ranges is sampled and projected back to degrees (a projected
    map's edges are curves in lon/lat); the box is clipped to the grid's extent.
    """
    lon0, lon1 = _edges(frame.lon)
    lat0, lat1 = _edges(frame.lat)
    xr_, yr = figure.x_range, figure.y_range
    if None in (xr_.start, xr_.end, yr.start, yr.end):
        return Box(lon0, lon1, lat0, lat1)
    x0, x1 = sorted((float(xr_.start), float(xr_.end)))
    y0, y1 = sorted((float(yr.start), float(yr.end)))
    t = np.linspace(0.0, 1.0, samples)
    xs = np.concatenate([x0 + (x1 - x0) * t, np.full(samples, x1), x1 - (x1 - x0) * t,
                         np.full(samples, x0)])
    ys = np.concatenate([np.full(samples, y0), y0 + (y1 - y0) * t, np.full(samples, y1),
                         y1 - (y1 - y0) * t])
    lon, lat = frame.inverse(xs, ys)
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not ok.any():
        return Box(lon0, lon1, lat0, lat1)
    b0, b1 = max(lon0, float(lon[ok].min())), min(lon1, float(lon[ok].max()))
    c0, c1 = max(lat0, float(lat[ok].min())), min(lat1, float(lat[ok].max()))
    if not (b0 < b1 and c0 < c1):  # panned off the grid: the whole grid
        return Box(lon0, lon1, lat0, lat1)
    return Box(round(b0, 4), round(b1, 4), round(c0, 4), round(c1, 4))


class BoxExport:
    """The maps of a tab and the button exporting the box the first one shows."""

    def __init__(
        self,
        root: Path,
        *,
        experiment: Callable[[], str],
        period: Callable[[], tuple[int, int] | None] = lambda: None,
        label: str = "Box (NetCDF)",
    ) -> None:
        self.root = Path(root)
        self.experiment = experiment
        self.period = period
        self.maps: list[tuple[Any, MapFrame]] = []
        self.last: Box | None = None
        self.button = pn.widgets.FileDownload(
            callback=self._callback, filename="smcore_box.nc", label=f"⬇ {label}",
            color="light", embed=False, width=190,
        )

    def reset(self) -> None:
        """Forget the maps (the tab draws new ones)."""
        self.maps.clear()

    def track(self, figure: Any, frame: MapFrame) -> None:
        """Remember a map (its Bokeh figure and frame); the first one defines the box."""
        if not any(f is figure for f, _ in self.maps):
            self.maps.append((figure, frame))

    def box(self) -> Box:
        """The box the first map shows now."""
        if not self.maps:
            raise LookupError("no map to take the box from")
        figure, frame = self.maps[0]
        return shown_box(figure, frame)

    def write(self) -> bytes:
        """The NetCDF export of the box shown now (``smcore export``'s code and output)."""
        from smcore.export import export_region

        box = self.box()
        self.last = box
        with tempfile.TemporaryDirectory(prefix="smcore-box-") as tmp:
            out = Path(tmp) / "box.nc"
            export_region(self.root, box, out, experiments=[self.experiment()],
                          period=self.period(), report=lambda message: None)
            data = out.read_bytes()
        self.button.filename = (
            f"smcore_{self.experiment()}_{box.lon0:g}_{box.lon1:g}E_{box.lat0:g}_{box.lat1:g}N.nc"
        )
        return data

    def _callback(self) -> io.BytesIO:
        try:
            return io.BytesIO(self.write())
        except Exception as exc:  # noqa: BLE001 - the file says why, the session goes on
            from dashboard.views.base import _failed_export

            return _failed_export(self.button.filename, exc)
