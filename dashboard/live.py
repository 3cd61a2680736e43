"""Maps that update in place: a HoloViews element rendered once to Bokeh, then only its data change.

Re-running HoloViews for every slider step costs a few tenths of a second per map (options,
ranges, model traversal). A :class:`LiveFigure` renders its element once per session and then
replaces just the image array, the dot positions and the title, which the browser receives as
a small patch: a scenario change redraws six maps in a fraction of a second. :class:`LiveSeries`
does the same for a set of time-series curves.
"""

from __future__ import annotations

from collections.abc import Callable

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
from bokeh import events
from bokeh.models import GlyphRenderer, Image, Line, Scatter

__all__ = ["LiveFigure", "LiveSeries", "link_ranges"]


class LiveFigure:
    """One map (``hv.Image``, optionally with ``hv.Points`` on top) as a Bokeh figure in a pane."""

    def __init__(self, element: hv.Element, **pane_params: object) -> None:
        self.figure = hv.render(element, backend="bokeh")
        self.pane = pn.pane.Bokeh(self.figure, **pane_params)

    def _renderer(self, glyph: type) -> GlyphRenderer:
        for r in self.figure.renderers:
            if isinstance(r, GlyphRenderer) and isinstance(r.glyph, glyph):
                return r
        raise LookupError(f"the figure has no {glyph.__name__} glyph")

    @property
    def image(self) -> np.ndarray:
        """The image values now shown, (lat, lon), south row first."""
        return np.asarray(self._renderer(Image).data_source.data["image"][0])

    def set_image(self, values: np.ndarray) -> None:
        """Show new values on the same grid ((lat, lon), south row first, as rendered)."""
        source = self._renderer(Image).data_source
        old = np.asarray(source.data["image"][0])
        values = np.asarray(values, dtype=old.dtype)
        if values.shape != old.shape:
            raise ValueError(f"image shape {values.shape} differs from the rendered {old.shape}")
        data = dict(source.data)
        data["image"] = [values]
        source.data = data

    def set_points(self, x: np.ndarray, y: np.ndarray) -> None:
        """Move the dots (the figure's Scatter glyph) to (x, y)."""
        renderer = self._renderer(Scatter)
        xname, yname = renderer.glyph.x, renderer.glyph.y
        renderer.data_source.data = {xname: np.asarray(x), yname: np.asarray(y)}

    @property
    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """The dots now shown, (x, y)."""
        renderer = self._renderer(Scatter)
        data = renderer.data_source.data
        return np.asarray(data[renderer.glyph.x]), np.asarray(data[renderer.glyph.y])

    def set_source(self, glyph: type, data: dict[str, object]) -> None:
        """Replace the data of the renderer drawing ``glyph`` (same columns as rendered)."""
        source = self._renderer(glyph).data_source
        if set(data) != set(source.data):
            raise ValueError(
                f"columns {sorted(data)} differ from the rendered {sorted(source.data)}"
            )
        source.data = {k: np.asarray(v) if not isinstance(v, list) else v for k, v in data.items()}

    def set_title(self, text: str) -> None:
        """Replace the figure's title."""
        self.figure.title.text = text

    def on_tap(self, callback: Callable[[float, float], None]) -> None:
        """Call ``callback(x, y)`` (data coordinates) when the map is clicked."""
        self.figure.on_event(events.Tap, lambda event: callback(float(event.x), float(event.y)))


def link_ranges(figures: list[LiveFigure]) -> None:
    """Pan and zoom the figures together (they share the first one's ranges)."""
    if not figures:
        return
    first = figures[0].figure
    for other in figures[1:]:
        other.figure.x_range = first.x_range
        other.figure.y_range = first.y_range


class LiveSeries:
    """Curves (an ``Overlay`` of ``hv.Curve``) rendered once, then updated in place.

    Each curve's data, its legend entry and the axis ranges are replaced. The overlay's curves
    are the slots, in order; a slot given no data is hidden.
    """

    def __init__(self, element: hv.Overlay, **pane_params: object) -> None:
        self.figure = hv.render(element, backend="bokeh")
        self.lines = [
            r
            for r in self.figure.renderers
            if isinstance(r, GlyphRenderer) and isinstance(r.glyph, Line)
        ]
        self.legend_items = list(self.figure.legend[0].items) if self.figure.legend else []
        self.pane = pn.pane.Bokeh(self.figure, **pane_params)

    def _item(self, renderer: GlyphRenderer):  # noqa: ANN202 - a Bokeh LegendItem or None
        for item in self.legend_items:
            if renderer in item.renderers:
                return item
        return None

    def update(self, series: list[tuple[str, pd.Series] | None], title: str | None = None) -> None:
        """Give each slot a (legend label, series indexed by time) or ``None`` to hide it."""
        if len(series) != len(self.lines):
            raise ValueError(f"{len(series)} series for {len(self.lines)} curves")
        lo, hi, t0, t1 = np.inf, -np.inf, None, None
        for renderer, entry in zip(self.lines, series, strict=True):
            item = self._item(renderer)
            if entry is None:
                renderer.visible = False
                if item is not None:
                    item.visible = False
                continue
            label, s = entry
            x = pd.DatetimeIndex(s.index).values
            y = np.asarray(s.values, dtype=float)
            renderer.data_source.data = {renderer.glyph.x: x, renderer.glyph.y: y}
            renderer.visible = True
            if item is not None:
                item.visible = True
                item.label = {"value": label}
            if np.isfinite(y).any():
                lo, hi = min(lo, float(np.nanmin(y))), max(hi, float(np.nanmax(y)))
            if len(x):
                t0 = x.min() if t0 is None else min(t0, x.min())
                t1 = x.max() if t1 is None else max(t1, x.max())
        if t0 is not None:
            self.figure.x_range.start, self.figure.x_range.end = pd.Timestamp(t0), pd.Timestamp(t1)
        if np.isfinite(lo):
            pad = 0.05 * (hi - lo) if hi > lo else 0.01
            self.figure.y_range.start, self.figure.y_range.end = lo - pad, hi + pad
        if title is not None:
            self.figure.title.text = title
