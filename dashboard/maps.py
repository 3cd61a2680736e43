"""Map building blocks: a lat/lon field as an image with China's outlines drawn on top.

The outlines are added to the Bokeh figure once, by a plot hook, rather than as HoloViews
elements: a map that updates (new month, new scenario) then only re-sends its image, which
keeps interactions well under a second.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401 - registers the bokeh backend for .opts
import numpy as np
import xarray as xr

from dashboard.config import BOUNDARY_STYLES, MAP_WIDTH, RASTERIZE_ABOVE
from dashboard.geo import load_outlines

__all__ = ["field_extent", "outline_hook", "map_image", "image_data", "OUTLINE_PREFIX"]

OUTLINE_PREFIX = "outline:"
"""Name prefix of the Bokeh renderers drawing outlines (``outline:china_boundary``, …)."""


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


def outline_hook(extent: tuple[float, float, float, float]) -> Callable[[Any, Any], None]:
    """A plot hook adding the outline layers (clipped to ``extent`` + 1°) once per figure."""
    lon0, lon1, lat0, lat1 = extent
    arrays = load_outlines(
        (round(lon0 - 1, 3), round(lon1 + 1, 3), round(lat0 - 1, 3), round(lat1 + 1, 3))
    ).arrays

    def add_outlines(plot: Any, element: Any) -> None:
        if plot.handles.get("smcore_outlines"):
            return
        fig = plot.state
        for name, arr in arrays.items():
            fig.multi_line(
                [arr[:, 0]], [arr[:, 1]], name=OUTLINE_PREFIX + name, **BOUNDARY_STYLES[name]
            )
        plot.handles["smcore_outlines"] = True

    return add_outlines


def image_data(da: xr.DataArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lon, lat, values) of a (lat, lon) field, the fast gridded input of ``hv.Image``."""
    field = da.transpose("lat", "lon")
    return field["lon"].values, field["lat"].values, np.asarray(field.values, dtype=np.float32)


def _autohide_toolbar(plot: Any, element: Any) -> None:
    plot.state.toolbar.autohide = True


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
) -> hv.Element:
    """A (lat, lon) field as an ``hv.Image``: colour bar, hover readout, outlines of China on top.

    ``compact`` (small multiples): no axes, and the toolbar (PNG export, zoom) shows on hover only.

    Fields with more than :data:`dashboard.config.RASTERIZE_ABOVE` cells go through
    datashader's ``rasterize`` (a DynamicMap re-aggregated on zoom).
    """
    vname = str(da.name or "value")
    img = hv.Image(image_data(da), kdims=["lon", "lat"], vdims=[hv.Dimension(vname, label=clabel)])
    opts: dict[str, Any] = dict(
        title=title,
        cmap=cmap,
        clim=clim,
        colorbar=colorbar,
        frame_width=width,
        data_aspect=1,
        tools=["hover"],
        xlabel="Longitude (°E)",
        ylabel="Latitude (°N)",
        clipping_colors={"NaN": (0, 0, 0, 0)},
        show_grid=False,
        toolbar="above",
        hooks=([outline_hook(field_extent(da))] if outlines else [])
        + ([_autohide_toolbar] if compact else []),
    )
    if compact:
        # explicit frame height: small maps beside taller plots were cropped with data_aspect
        lon0, lon1, lat0, lat1 = field_extent(da)
        opts.update(
            xaxis=None,
            yaxis=None,
            data_aspect=None,
            frame_height=int(round(width * (lat1 - lat0) / (lon1 - lon0))),
        )
    if da.sizes["lat"] * da.sizes["lon"] > RASTERIZE_ABOVE:
        from holoviews.operation.datashader import rasterize

        return rasterize(img, aggregator="mean").opts(**opts)
    return img.opts(**opts)
