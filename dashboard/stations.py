"""ISMN stations on the maps (when ``evaluation/stations.nc`` exists), their series on a click.

:class:`StationLayer` belongs to one tab. It reads the station files written by ``smcore
evaluate --stations`` (:mod:`smcore.evaluation.stations`), draws the stations as triangles
on the tab's maps (:meth:`StationLayer.attach` on a Bokeh figure, or :meth:`points` as a
HoloViews element whose hook does the same) and, when a map is clicked near a station,
plots that station's monthly in-situ means against the products at its cell, with the
station's scores (``stations.csv``). It also remembers the maps it was attached to, so that
the box export (:mod:`dashboard.export`) knows the box a map shows.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import geoviews as gv
import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import xarray as xr
from bokeh import events
from bokeh.models import ColumnDataSource, HoverTool

from dashboard import loaders
from dashboard.config import PRODUCT_COLORS, SERIES_HEIGHT, product_label
from dashboard.contain import escape_markdown
from dashboard.projection import MapFrame
from smcore.workdir import artifact

__all__ = ["StationLayer", "figure_hook", "STATION_STYLE", "SERIES_PRODUCTS", "INSITU"]

STATION_STYLE = {"marker": "triangle", "size": 11, "fill_color": "#ffffff",
                 "line_color": "#6a3d9a", "line_width": 2}
"""How stations are drawn: open purple triangles (the ringed circle is the selected cell)."""

SERIES_PRODUCTS = ("CMIP6_DL", "ensemble_mean", "reference")
"""Products drawn against a station's in-situ series, when present."""

INSITU = "in situ"
TAP_TOLERANCE = 0.015
"""A click selects the nearest station within this share of the map's longitude span."""


def figure_hook(frame: MapFrame, *callbacks: Callable[[Any, MapFrame], None]) -> hv.Element:
    """An empty element that, overlaid on a HoloViews map, hands its Bokeh figure over.

    Each ``callback(figure, frame)`` runs when the map is rendered (a plot hook), as
    :meth:`StationLayer.attach` and :meth:`dashboard.export.BoxExport.track` need.
    """
    def hook(plot: Any, element: Any) -> None:
        for callback in callbacks:
            callback(plot.state, frame)

    kdims = ["lon", "lat"] if frame.geographic else ["x", "y"]
    return gv.Points(([], []), kdims=kdims, crs=frame.crs).opts(hooks=[hook], tools=[])


def _read(root: Path) -> tuple[xr.Dataset, pd.DataFrame] | None:
    """``stations.nc`` and ``stations.csv`` of the work directory (``None`` if absent)."""
    try:
        series = loaders.read_netcdf(root, artifact("stations_series").relative())
        scores = loaders.read_csv(root, artifact("stations").relative())
    except (OSError, loaders.ArtifactMissing, FileNotFoundError):
        return None
    except Exception:  # noqa: BLE001 - unreadable station files: no stations on the maps
        return None
    if series.sizes.get("station", 0) == 0:
        return None
    return series, scores


class StationLayer:
    """The stations of one tab: points on its maps, the clicked station's series and scores."""

    def __init__(self, root: Path, *, contained: Callable[[str, Callable[[], Any]], Any],
                 presentation: bool = False) -> None:
        self.root = Path(root)
        self.contained = contained
        self.presentation = presentation
        data = _read(self.root)
        self.series, self.scores = data if data is not None else (None, None)
        self.selected: int | None = None
        self.maps: list[tuple[Any, MapFrame]] = []
        """``(bokeh figure, frame)`` of every map the stations were drawn on, in order."""
        self.caption = pn.pane.Markdown(
            "**Stations** (△, ISMN): click one on a map for its monthly series against the "
            "products at its 0.25° cell.",
            sizing_mode="stretch_width",
        )
        self.plot = pn.pane.HoloViews(self._blank(), sizing_mode="stretch_width",
                                      linked_axes=False)

    @property
    def available(self) -> bool:
        """Whether the work directory has station results to show."""
        return self.series is not None

    @property
    def lon(self) -> np.ndarray:
        """Longitude of each station (degrees east)."""
        return np.asarray(self.series["lon"].values, dtype=float) if self.available else np.zeros(0)

    @property
    def lat(self) -> np.ndarray:
        """Latitude of each station (degrees north)."""
        return np.asarray(self.series["lat"].values, dtype=float) if self.available else np.zeros(0)

    def names(self) -> list[str]:
        """``network/station`` of each station, in file order."""
        if not self.available:
            return []
        return [f"{n}/{s}" for n, s in zip(self.series["network"].values,
                                            self.series["station_name"].values, strict=True)]

    # -- drawing ---------------------------------------------------------------------
    def attach(self, figure: Any, frame: MapFrame) -> None:
        """Draw the stations on a Bokeh map figure and select the one a click lands near."""
        if not self.available or figure.__dict__.get("_smcore_stations"):
            return
        figure.__dict__["_smcore_stations"] = True
        x, y = frame.forward(self.lon, self.lat)
        source = ColumnDataSource({"x": x, "y": y, "name": self.names(),
                                   "lat": self.lat, "lon": self.lon})
        renderer = figure.scatter("x", "y", source=source, name="stations", **STATION_STYLE)
        figure.add_tools(HoverTool(renderers=[renderer], tooltips=[
            ("station", "@name"), ("lat, lon", "@lat{0.00}, @lon{0.00}")]))
        self.maps.append((figure, frame))

        def tapped(event: events.Tap) -> None:
            if event.x is None or event.y is None:
                return
            lon, lat = frame.inverse(np.array([float(event.x)]), np.array([float(event.y)]))
            span = float(frame.lon.max() - frame.lon.min()) or 1.0
            self.contained("station click",
                           lambda: self.select_near(float(lon[0]), float(lat[0]),
                                                    TAP_TOLERANCE * span))

        figure.on_event(events.Tap, tapped)

    def points(self, frame: MapFrame) -> hv.Element:
        """The stations as an element to overlay on a HoloViews map (see :func:`figure_hook`)."""
        return figure_hook(frame, self.attach)

    # -- selection -------------------------------------------------------------------
    def nearest(self, lon: float, lat: float, tolerance: float) -> int | None:
        """Index of the station nearest (lon, lat) within ``tolerance`` degrees, or ``None``."""
        if not self.available:
            return None
        d = np.hypot((self.lon - lon) * np.cos(np.deg2rad(lat)), self.lat - lat)
        k = int(np.argmin(d))
        return k if d[k] <= tolerance else None

    def select_near(self, lon: float, lat: float, tolerance: float) -> int | None:
        """Select the station a click at (lon, lat) designates, if any; returns its index."""
        k = self.nearest(lon, lat, tolerance)
        if k is not None:
            self.select(k)
        return k

    def station_frame(self, k: int) -> pd.DataFrame:
        """Monthly series of station ``k`` (m3 m-3): in situ, then the products at its cell."""
        s = self.series.isel(station=k)
        df = pd.DataFrame({INSITU: s["sm_insitu"].values}, index=pd.DatetimeIndex(
            s["time"].values, name="time"))
        products = [str(p) for p in s["product"].values]
        for p in SERIES_PRODUCTS:
            if p in products:
                df[p] = s["ssm"].sel(product=p).values
        return df

    def select(self, k: int) -> None:
        """Show station ``k``: its series against the products and its scores."""
        self.selected = k
        name = self.names()[k]
        df = self.station_frame(k)
        months = int(np.isfinite(df[INSITU]).sum())
        network, station = name.split("/", 1)
        rows = self.scores[(self.scores["network"] == network)
                           & (self.scores["station"] == station)]
        dl = rows[rows["product"] == "CMIP6_DL"]
        score = ""
        if not dl.empty:
            r = dl.iloc[0]
            score = (f" CMIP6_DL: bias {r['bias']:+.3f}, ubRMSD {r['ubRMSD']:.3f} m³ m⁻³, "
                     f"r {r['r']:.2f}, anomaly r {r['anomaly_r']:.2f}.")
        s = self.series.isel(station=k)
        self.caption.object = (
            f"**Station {escape_markdown(name)}** ({float(s['lat']):.2f}°N "
            f"{float(s['lon']):.2f}°E, sensors "
            f"{float(s['depth_from']):g}–{float(s['depth_to']):g} m): {months} complete "
            f"months against the products at its cell.{score}"
        )
        self.plot.object = self._plot(df, f"Station {name}")

    def _plot(self, df: pd.DataFrame, title: str) -> hv.Overlay:
        curves = []
        for col in df.columns:
            colour = PRODUCT_COLORS.get(col, "#6a3d9a" if col == INSITU else "#7f7f7f")
            data = pd.DataFrame({"time": df.index, "ssm": df[col].values})
            label = INSITU if col == INSITU else product_label(col)
            curve = hv.Curve(data, "time", "ssm", label=label).opts(
                color=colour, line_width=2 if col in (INSITU, "CMIP6_DL") else 1.4,
            )
            curves.append(curve)
            if col == INSITU:
                curves.append(hv.Scatter(data, "time", "ssm", label=label).opts(
                    color=colour, size=5))
        overlay = hv.Overlay(curves).opts(
            title=title, responsive=True, height=SERIES_HEIGHT, legend_position="top",
            ylabel="SSM (m³ m⁻³)", xlabel="", show_grid=True,
            fontscale=1.6 if self.presentation else 1.0,
        )
        return overlay

    def _blank(self) -> hv.Overlay:
        empty = pd.DataFrame({"time": pd.DatetimeIndex([]), "ssm": []})
        opts: dict[str, Any] = {}
        if self.series is not None and self.series.sizes.get("time", 0) > 1:
            # the stations' months, not an empty axis at 1970 in microseconds
            times = pd.DatetimeIndex(self.series["time"].values)
            opts["xlim"] = (times.min(), times.max())
        return hv.Overlay([hv.Curve(empty, "time", "ssm")]).opts(
            title="Click a station (△) on a map", responsive=True, height=SERIES_HEIGHT,
            xlabel="", ylabel="SSM (m³ m⁻³)", **opts,
        )

    def panel(self) -> pn.viewable.Viewable:
        """The caption and the series plot (nothing when there are no stations)."""
        if not self.available:
            return pn.Column(sizing_mode="stretch_width", visible=False)
        return pn.Column(self.caption, self.plot, sizing_mode="stretch_width")
