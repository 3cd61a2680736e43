"""Map building blocks: a lat/lon field as a GeoViews image with China's outlines on top.

Maps are drawn in the projection the sidebar selects (:mod:`dashboard.projection`):
latitude/longitude, or the Albers equal-area conic for China. A field is warped onto the
projected grid by the frame's nearest-cell index (computed once per grid), so the maps that
update in place (:class:`dashboard.live.LiveFigure`) only re-send their image. The outlines
(and, when projected, a 10° graticule) are added to the Bokeh figure once, by a plot hook,
rather than as HoloViews elements, for the same reason.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import Any

import geoviews as gv
import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401 - registers the bokeh backend for .opts
import numpy as np
import panel as pn
import xarray as xr
from bokeh.models import ColumnDataSource

from dashboard.config import (
    BOUNDARY_STYLES,
    GRATICULE_STYLE,
    MAP_WIDTH,
    PRESENTATION_FONTSCALE,
    RASTERIZE_ABOVE,
)
from dashboard.geo import OUTLINES, load_outlines
from dashboard.live import restyle
from dashboard.projection import DEFAULT_PROJECTION, MapFrame, graticule, map_frame

__all__ = [
    "field_extent",
    "field_frame",
    "outline_hook",
    "map_image",
    "map_points",
    "image_data",
    "present",
    "OUTLINE_PREFIX",
]


def _memoize_geoviews_extents() -> None:
    """Remember GeoViews' projected plot extents (a pure function of extents and CRSs).

    GeoViews projects each element's bounding box with cartopy's polygon projection, several
    times per map and again for every map of a page; the maps of one grid share one answer.
    """
    import geoviews.operation.projection as gv_operation
    import geoviews.plotting.plot as gv_plot
    from geoviews.util import project_extents

    @functools.lru_cache(maxsize=512)
    def cached(extents: tuple[float, ...], src: Any, dest: Any) -> tuple[float, ...]:
        return tuple(project_extents(extents, src, dest))

    def memoized(extents: Any, src: Any, dest: Any) -> Any:
        try:
            return cached(tuple(float(e) for e in extents), src, dest)
        except TypeError:  # unhashable CRS or non-numeric extents: compute as GeoViews does
            return project_extents(extents, src, dest)

    gv_plot.project_extents = memoized
    gv_operation.project_extents = memoized


_memoize_geoviews_extents()

OUTLINE_PREFIX = "outline:"
"""Name prefix of the Bokeh renderers drawing outlines (``outline:layers``, …)."""


def field_extent(da: xr.DataArray) -> tuple[float, float, float, float]:
    """Outer edges (lon0, lon1, lat0, lat1) of a regular (lat, lon) field, degrees."""
    lat = da["lat"].values
    lon = da["lon"].values
    dlat = float(np.abs(np.diff(lat)).mean()) if lat.size > 1 else 1.0
    dlon = float(np.abs(np.diff(lon)).mean()) if lon.size > 1 else 1.0
    return (
        float(lon.min() - dlon / 2),
        float(lon.max() + dlon / 2),
        float(lat.min() - dlat / 2),
        float(lat.max() + dlat / 2),
    )


def field_frame(da: xr.DataArray, projection: str = DEFAULT_PROJECTION) -> MapFrame:
    """The :class:`~dashboard.projection.MapFrame` of a (lat, lon) field's grid."""
    return map_frame(da["lat"].values, da["lon"].values, projection)


@functools.lru_cache(maxsize=16)
def _projected_outlines(
    frame: MapFrame, extent: tuple[float, float, float, float]
) -> dict[str, np.ndarray]:
    arrays = load_outlines(extent).arrays
    return {name: frame.project_lines(arr) for name, arr in arrays.items()}


def _outline_columns(
    arrays: dict[str, np.ndarray], grid: np.ndarray | None
) -> dict[str, list[Any]]:
    """One row per outline layer (bottom to top) with its style, for one MultiLine glyph."""
    layers: list[tuple[str, np.ndarray, dict[str, Any]]] = []
    if grid is not None and grid.size:
        layers.append(("graticule", grid, GRATICULE_STYLE))
    layers += [(name, arrays[name], BOUNDARY_STYLES[name]) for name in OUTLINES if name in arrays]
    return {
        "xs": [arr[:, 0] for _, arr, _ in layers],
        "ys": [arr[:, 1] for _, arr, _ in layers],
        "layer": [name for name, _, _ in layers],
        "line_color": [str(style["color"]) for _, _, style in layers],
        "line_width": [float(style["line_width"]) for _, _, style in layers],  # type: ignore[arg-type]
        "line_dash": [str(style.get("line_dash", "solid")) for _, _, style in layers],
    }


# one outline source per session and grid: the maps of a page share it (sent once)
_SHARED_SOURCES: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], ColumnDataSource]] = (
    weakref.WeakKeyDictionary()
)


def _outline_source(key: tuple[Any, ...], columns: Callable[[], dict[str, list[Any]]]) -> Any:
    doc = pn.state.curdoc
    if doc is None or doc.session_context is None:
        return ColumnDataSource(columns())  # no session (tests, benchmarks): one per figure
    sources = _SHARED_SOURCES.setdefault(doc, {})
    if key not in sources:
        sources[key] = ColumnDataSource(columns())
    return sources[key]


def outline_hook(
    extent: tuple[float, float, float, float],
    frame: MapFrame | None = None,
    labels: bool = True,
) -> Callable[[Any, Any], None]:
    """A plot hook adding the outlines (clipped to ``extent`` + 1°) once per figure.

    Every layer of :data:`dashboard.geo.OUTLINES` is one row of a single MultiLine glyph
    (``outline:`` renderer); in a projected ``frame`` the lines are projected and a 10°
    graticule (labelled when ``labels``) is drawn beneath them. The maps of one served
    session share the glyph's data.
    """
    lon0, lon1, lat0, lat1 = extent
    clip = (round(lon0 - 1, 3), round(lon1 + 1, 3), round(lat0 - 1, 3), round(lat1 + 1, 3))
    if frame is None or frame.geographic:
        arrays = load_outlines(clip).arrays
        grid, grid_labels = None, []
    else:
        arrays = _projected_outlines(frame, clip)
        grid, grid_labels = graticule(frame)
    key = (id(frame), clip)

    def add_outlines(plot: Any, element: Any) -> None:
        if plot.handles.get("smcore_outlines"):
            return
        fig = plot.state
        source = _outline_source(key, lambda: _outline_columns(arrays, grid))
        if source.data["xs"]:
            fig.multi_line(
                xs="xs",
                ys="ys",
                line_color="line_color",
                line_width="line_width",
                line_dash="line_dash",
                source=source,
                name=OUTLINE_PREFIX + "layers",
            )
        if labels and grid_labels:
            xs, ys, texts, aligns = zip(*grid_labels, strict=True)
            fig.text(
                list(xs),
                list(ys),
                text=list(texts),
                text_align=list(aligns),
                name=OUTLINE_PREFIX + "graticule_labels",
                text_font_size="8pt",
                text_color="#777777",
                text_baseline="bottom",
                x_offset=2,
                y_offset=-2,
            )
        plot.handles["smcore_outlines"] = True

    return add_outlines


def image_data(da: xr.DataArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lon, lat, values) of a (lat, lon) field, the fast gridded input of ``hv.Image``."""
    field = da.transpose("lat", "lon")
    return field["lon"].values, field["lat"].values, np.asarray(field.values, dtype=np.float32)


def _autohide_toolbar(plot: Any, element: Any) -> None:
    if plot.state.toolbar is not None:
        plot.state.toolbar.autohide = True


def present(element: Any, presentation: bool) -> Any:
    """``element`` with larger fonts and no tool bar when ``presentation`` (for a projector)."""
    if not presentation:
        return element
    hooks = list(element.opts.get("plot").kwargs.get("hooks", []))
    # the same in-place restyling the presentation switch applies to a drawn plot, so a plot
    # built in presentation mode and one switched to it look alike
    return element.opts(hooks=[*hooks, _present_hook])


def _present_hook(plot: Any, element: Any) -> None:
    restyle([plot.state], True, PRESENTATION_FONTSCALE)


def map_image(
    da: xr.DataArray,
    *,
    title: str,
    cmap: str | list[str],
    clim: tuple[float, float],
    clabel: str,
    width: int = MAP_WIDTH,
    colorbar: bool = True,
    outlines: bool = True,
    compact: bool = False,
    projection: str = DEFAULT_PROJECTION,
    presentation: bool = False,
) -> hv.Element:
    """A (lat, lon) field as a ``gv.Image``: colour bar titled ``clabel``, hover, outlines.

    Drawn in ``projection`` (a key of :data:`dashboard.projection.PROJECTIONS`); in a
    projected map the field is warped onto the frame's grid (nearest cell) and the axes give
    way to a graticule. ``compact`` (small multiples): no axes, a horizontal colour bar below,
    and the toolbar (PNG export, zoom) shows on hover only. ``presentation``: larger fonts,
    no toolbar.

    Latitude/longitude fields with more than :data:`dashboard.config.RASTERIZE_ABOVE` cells go
    through datashader's ``rasterize`` (a DynamicMap re-aggregated on zoom).
    """
    vname = str(da.name or "value")
    frame = field_frame(da, projection)
    vdim = hv.Dimension(vname, label=clabel)
    if frame.geographic:
        img = gv.Image(image_data(da), kdims=["lon", "lat"], vdims=[vdim], crs=frame.crs)
    else:
        values = frame.warp(image_data(da)[2])
        img = gv.Image((frame.x, frame.y, values), kdims=["x", "y"], vdims=[vdim], crs=frame.crs)
    hooks: list[Callable[[Any, Any], None]] = []
    if outlines:
        hooks.append(outline_hook(field_extent(da), frame, labels=not compact))
    if compact:
        hooks.append(_autohide_toolbar)
    opts: dict[str, Any] = dict(
        title=title,
        cmap=cmap,
        clim=clim,
        colorbar=colorbar,
        colorbar_opts={"title": clabel},
        frame_width=width,
        data_aspect=1,
        tools=["hover"],
        projection=frame.crs,
        clipping_colors={"NaN": (0, 0, 0, 0)},
        show_grid=False,
        toolbar="above",
        hooks=hooks,
    )
    if frame.geographic:
        opts.update(xlabel="Longitude (°E)", ylabel="Latitude (°N)")
    else:
        opts.update(hover_tooltips=[(clabel, "@image")])
    if compact:
        # explicit frame height: small maps beside taller plots were cropped with data_aspect
        opts.update(
            xaxis=None,
            yaxis=None,
            data_aspect=None,
            frame_height=int(round(width * frame.aspect)),
        )
        if colorbar:
            opts.update(
                colorbar_position="bottom",
                colorbar_opts={"title": clabel, "height": 8, "title_text_font_size": "8pt"},
            )
    if frame.geographic and da.sizes["lat"] * da.sizes["lon"] > RASTERIZE_ABOVE:
        from holoviews.operation.datashader import rasterize

        return present(rasterize(img, aggregator="mean").opts(**opts), presentation)
    return present(img.opts(**opts), presentation)


def map_points(
    lon: np.ndarray,
    lat: np.ndarray,
    frame: MapFrame,
    *,
    label: str | None = None,
) -> gv.Points:
    """Points given in degrees as a ``gv.Points`` in the frame's projection (style it after)."""
    x, y = frame.forward(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    kdims = ["lon", "lat"] if frame.geographic else ["x", "y"]
    params: dict[str, Any] = {"label": label} if label else {}
    return gv.Points((x, y), kdims=kdims, crs=frame.crs, **params)
