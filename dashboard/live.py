"""Maps that update in place: a HoloViews element rendered once to Bokeh, then only its data change.

Re-running HoloViews for every slider step costs a few tenths of a second per map (options,
ranges, model traversal). A :class:`LiveFigure` renders its element once per session and then
replaces just the image array, the dot positions and the title, which the browser receives as
a small patch: a scenario change redraws six maps in a fraction of a second. :class:`LiveSeries`
does the same for a set of time-series curves.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
from bokeh import events
from bokeh.core.properties import field
from bokeh.core.property.dataspec import DataSpec
from bokeh.core.property.vectorization import Field, Value
from bokeh.core.property.wrappers import PropertyValueContainer
from bokeh.model import Model
from bokeh.models import (
    Axis,
    ColorBar,
    ColumnDataSource,
    GlyphRenderer,
    GridPlot,
    Image,
    Legend,
    Line,
    Plot,
    Scatter,
    Title,
)
from bokeh.themes import Theme
from bokeh.util.serialization import make_id

from dashboard.projection import MapFrame

__all__ = [
    "LiveFigure", "LiveSeries", "link_ranges", "restyle", "render", "RenderCache", "RENDERS",
    "use_theme",
]

Element = hv.Element | Callable[[], hv.Element]
"""A HoloViews element, or a function making one (called only when it must be rendered)."""


class RenderCache:
    """Rendered Bokeh figures shared by every session of a server.

    Rendering a HoloViews map costs a few tenths of a second per map and session (options,
    ranges, plot classes). An entry keeps a private copy of the figure's Bokeh models
    (:func:`_template`); each session gets its own copy of those (a Bokeh model belongs to one
    document) with fresh ids (:func:`_clone`), so copies of one entry can live in one
    document. The key must name everything the figure depends on (the artifact's
    modification stamp, the selections, the projection, the presentation mode); the
    ``maxsize`` most recently used entries are kept.
    """

    def __init__(self, maxsize: int = 96) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[Hashable, list[Model]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every entry and the counts of hits and misses."""
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0

    def render(
        self,
        element: Element,
        key: Hashable | None = None,
        finish: Callable[[Model], object] | None = None,
    ) -> Model:
        """The Bokeh figure of ``element``: rendered now, or copied from the entry of ``key``.

        A figure rendered now is changed in place by ``finish`` before it is kept.
        """
        if key is None:
            return _render(element, finish)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self.hits += 1
        if entry is not None:
            return _clone(entry)[0]
        figure = _render(element, finish)
        with self._lock:
            self.misses += 1
            self._entries[key] = _template(figure)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
        return figure


def _column(spec: Any) -> str:
    """The data column a glyph's coordinate reads: its name, or the ``Field`` that a
    deserialized copy (:class:`RenderCache`) holds instead."""
    return spec if isinstance(spec, str) else str(spec.field)


_THEME: list[Theme] = []
"""The Bokeh theme the server's pages apply to every figure (:func:`use_theme`), if any."""


def use_theme(theme: Theme | None) -> None:
    """Apply ``theme`` to every figure as it is rendered (None: no theme).

    Panel applies its design's theme to every model of a figure a page shows; a figure that
    carries that theme's values already (the same :class:`~bokeh.themes.Theme` object, and so
    the same per-class dicts) is passed over, and so are its copies (:func:`_clone` shares
    them). Without it, each session re-computed every themed default of every model.
    """
    _THEME[:] = [] if theme is None else [theme]


def _render(element: Element, finish: Callable[[Model], object] | None = None) -> Model:
    """``element`` rendered to Bokeh, then changed in place by ``finish``.

    The glyphs' selected, unselected and muted looks are left to BokehJS (``"auto"``: the
    glyph itself, faded where it applies).

    HoloViews gives every glyph three copies of itself for these looks: about a sixth of a
    figure's models, each one built, walked, sent and re-created by the browser, for looks a
    map never shows (nothing selects its points) and a series shows alike.

    The theme of :func:`use_theme` is applied to every model.
    """
    figure = hv.render(element() if callable(element) else element, backend="bokeh")
    for renderer in figure.select({"type": GlyphRenderer}):
        renderer.update(selection_glyph="auto", nonselection_glyph="auto", muted_glyph="auto")
    if finish is not None:
        finish(figure)
    for theme in _THEME:
        for model in figure.references():
            theme.apply_to_model(model)
    return figure


def _template(figure: Model) -> list[Model]:
    """A private copy of ``figure``'s models for the cache, root first (:func:`_clone`).

    Detached from any document and never shown, so that what its session does later to
    ``figure`` does not reach it.
    """
    return _clone([figure, *(m for m in figure.references() if m is not figure)])


_MODEL_STATE = frozenset(
    ("_id", "_document", "_temp_document", "_callbacks", "_event_callbacks", "_initialized")
)
_PROPERTY_STORES = ("_property_values", "_unstable_default_values", "_unstable_themed_values")
_THEMED = "__themed_values__"
"""Where :meth:`HasProps.apply_theme` keeps the theme's values: the theme's dict itself."""


def _clone(models: list[Model]) -> list[Model]:
    """New models equal to ``models``, in their order, each under a fresh id.

    ``models`` must be closed: every model they reference is among them (a figure and its
    ``references()``). No copy shares a mutable value (a list, a dict, an array) with them,
    nor their Python callbacks (like a copy through Bokeh's serialization).

    Bokeh's deserializer re-validates every property and re-computes every default of every
    model, which is most of the cost of a copy; the values here are already valid, so they
    are copied as they are: the property values, the defaults already computed and the
    presentation state, with references to ``models`` pointed at their twins.
    """
    twin: dict[int, Model] = {id(m): type(m).__new__(type(m), id=make_id()) for m in models}

    def copied(value: Any) -> Any:
        if isinstance(value, Model):
            return twin[id(value)]
        if isinstance(value, np.ndarray):
            return value.copy()
        if isinstance(value, dict):
            out: Any = {k: copied(v) for k, v in value.items()}
        elif isinstance(value, list):
            out = [copied(v) for v in value]
        elif isinstance(value, set):
            out = {copied(v) for v in value}
        elif type(value) is tuple:
            return tuple(copied(v) for v in value)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            changed = {
                f.name: copied(getattr(value, f.name))
                for f in dataclasses.fields(value)
                if f.init
            }
            return dataclasses.replace(value, **changed)
        else:
            return value  # immutable: numbers, strings, None, enums
        return type(value)(out) if isinstance(value, PropertyValueContainer) else out

    for model in models:
        new = twin[id(model)]
        state = new.__dict__
        state.update(_document=None, _temp_document=None, _callbacks={},
                     _event_callbacks=defaultdict(list))
        for store in _PROPERTY_STORES:
            values = {}
            for name, value in model.__dict__[store].items():
                values[name] = copied(value)
                if isinstance(value, PropertyValueContainer):
                    values[name]._register_owner(new, new.lookup(name))
            state[store] = values
        for name, value in model.__dict__.items():
            if name == _THEMED:  # a theme's own dict, shared and never changed (Bokeh's rule)
                state[name] = value
            elif name not in _MODEL_STATE and name not in _PROPERTY_STORES:
                state[name] = copied(value)
        state["_initialized"] = True
    return [twin[id(m)] for m in models]


RENDERS = RenderCache()
"""The server's shared rendered figures (module level: one per server process)."""


def render(
    element: Element,
    key: Hashable | None = None,
    finish: Callable[[Model], object] | None = None,
) -> Model:
    """``hv.render(element)``, then ``finish(figure)``.

    With a ``key``, through :data:`RENDERS` (:class:`RenderCache`).
    """
    return RENDERS.render(element, key, finish)


_LAYER = "layer"
"""The column of a merged Scatter glyph (:func:`merge_scatters`) naming each point's layer."""


def _constant(spec: Any) -> Any:
    """A glyph property's one value for every point, or ``None`` when it reads a column."""
    if isinstance(spec, Value):
        return spec.value
    if isinstance(spec, Field | dict):
        return None
    return spec


def _looks(layers: np.ndarray) -> int:
    """How many first rows of a merged glyph hold its layers' looks, from its ``layer`` column.

    One per layer, before the points (:func:`merge_scatters`).
    """
    return int(layers.max()) + 1


def merge_scatters(figure: Model) -> None:
    """Draw the Scatter layers of ``figure`` (a ``Plot``) with one glyph, in place.

    Each layer (a renderer of its own from HoloViews, with a source, a view and a selection)
    becomes rows of the first layer's source: a :data:`_LAYER` column numbers them, and the
    properties that differ between the layers (marker, size, angle, colours, alphas) become
    columns. The first rows, one per layer at NaN coordinates (never drawn), keep each layer's
    look for its legend entry (``LegendItem.index``) and for points set later
    (:meth:`LiveFigure.set_points`). Layers are drawn in their order, as before. A figure with
    fewer than two Scatter layers, or a layer that reads a column, stays as it is.
    """
    layers = [
        r for r in figure.renderers
        if isinstance(r, GlyphRenderer) and isinstance(r.glyph, Scatter)
    ]
    if len(layers) < 2:
        return
    first = layers[0].glyph
    xname, yname = _column(first.x), _column(first.y)
    names = sorted({
        name
        for r in layers
        for name in r.glyph.properties_with_values(include_defaults=False)
        if name not in ("x", "y", "tags", "name") and isinstance(
            r.glyph.lookup(name).property, DataSpec
        )
    })
    looks = []
    for r in layers:
        look = {name: _constant(getattr(r.glyph, name)) for name in names}
        if any(v is None for v in look.values()):
            return  # a property read from a column: the layers stay apart
        looks.append(look)
    data: dict[str, list[Any]] = {xname: [], yname: [], _LAYER: [], **{n: [] for n in names}}
    rows = [(np.full(1, np.nan), np.full(1, np.nan)) for _ in layers]  # the looks' rows
    rows += [
        (np.asarray(r.data_source.data[_column(r.glyph.x)], dtype=float),
         np.asarray(r.data_source.data[_column(r.glyph.y)], dtype=float))
        for r in layers
    ]
    for i, (x, y) in enumerate(rows):
        layer = i % len(layers)
        data[xname].extend(x.tolist())
        data[yname].extend(y.tolist())
        data[_LAYER].extend([layer] * x.size)
        for name in names:
            data[name].extend([looks[layer][name]] * x.size)
    columns = {k: np.asarray(v) for k, v in data.items()}
    layers[0].data_source.data = {  # numbers as arrays (sent as binary), text as lists
        k: v if v.dtype.kind in "biuf" else data[k] for k, v in columns.items()
    }
    first.update(**{name: field(name) for name in names})
    gone = {r.id for r in layers[1:]}
    figure.renderers = [r for r in figure.renderers if r.id not in gone]
    for legend in figure.select({"type": Legend}):
        for item in legend.items:
            for layer, r in enumerate(layers):
                if any(x.id == r.id for x in item.renderers):
                    item.update(renderers=[layers[0]], index=layer)
    for tool in figure.toolbar.tools:
        if "renderers" in tool.properties() and isinstance(tool.renderers, list):
            tool.renderers = [r for r in tool.renderers if r.id not in gone]


class LiveFigure:
    """One map (an image, optionally with points on top) as a Bokeh figure in a pane.

    ``element`` may be a function making it; with a ``key`` the figure is copied from the
    server's shared renders when another session drew the same (:class:`RenderCache`).
    ``merge``: its Scatter layers are drawn by one glyph (:func:`merge_scatters`); the layers
    are set and read by number as before.
    With a ``frame`` (:class:`dashboard.projection.MapFrame`, the map's grid and projection)
    new fields are given on the grid, (lat, lon), and warped onto the drawn image; points are
    given in degrees and projected; a click reports degrees. Without one, values and
    coordinates are used as drawn (heat maps, lat/lon maps).
    """

    def __init__(
        self,
        element: Element,
        frame: MapFrame | None = None,
        *,
        key: Hashable | None = None,
        merge: bool = False,
        **pane_params: object,
    ) -> None:
        self.frame = frame
        self.figure = render(element, key, merge_scatters if merge else None)
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
        if self.frame is not None:
            values = self.frame.warp(np.asarray(values))
        values = np.asarray(values, dtype=old.dtype)
        if values.shape != old.shape:
            raise ValueError(f"image shape {values.shape} differs from the rendered {old.shape}")
        data = dict(source.data)
        data["image"] = [values]
        source.data = data

    def _scatter(self, index: int) -> GlyphRenderer:
        scatters = [
            r
            for r in self.figure.renderers
            if isinstance(r, GlyphRenderer) and isinstance(r.glyph, Scatter)
        ]
        if not scatters:
            raise LookupError("the figure has no Scatter glyph")
        return scatters[index]

    def set_points(self, x: np.ndarray, y: np.ndarray, layer: int = 0) -> None:
        """Move the dots of the ``layer``-th Scatter layer to (x, y) (degrees with a frame)."""
        if not self._merged:
            renderer = self._scatter(layer)
            x, y = self._drawn(x, y)
            xname, yname = _column(renderer.glyph.x), _column(renderer.glyph.y)
            renderer.data_source.data = {xname: x, yname: y}
            return
        points: list[tuple[np.ndarray, np.ndarray] | None] = [None] * (layer + 1)
        points[layer] = (x, y)
        self.set_layers(points)

    def set_layers(self, points: Sequence[tuple[np.ndarray, np.ndarray] | None]) -> None:
        """Move the dots of the first ``len(points)`` Scatter layers at once.

        Layer ``k`` goes to ``points[k]`` = (x, y) (degrees with a frame), or stays as it is
        for ``None``. A merged map (:func:`merge_scatters`) sends its one source once, not
        once per layer.
        """
        if not self._merged:
            for layer, xy in enumerate(points):
                if xy is not None:
                    self.set_points(*xy, layer=layer)
            return
        renderer = self._scatter(0)
        old = renderer.data_source.data
        xname, yname = _column(renderer.glyph.x), _column(renderer.glyph.y)
        which = np.asarray(old[_LAYER])
        n = _looks(which)
        if len(points) > n:
            raise IndexError(f"{len(points)} layers of marks for a map with {n}")
        body = np.arange(n, which.size)
        # the looks first, then the layers in their order (the drawing order); a new point
        # takes its layer's look
        drawn_x, drawn_y = np.asarray(old[xname], float), np.asarray(old[yname], float)
        rows, xs, ys = [np.arange(n)], [drawn_x[:n]], [drawn_y[:n]]
        for layer in range(n):
            xy = points[layer] if layer < len(points) else None
            if xy is None:
                kept = body[which[body] == layer]
                rows.append(kept)
                xs.append(drawn_x[kept])
                ys.append(drawn_y[kept])
            else:
                x, y = self._drawn(*xy)
                rows.append(np.full(x.size, layer))
                xs.append(x)
                ys.append(y)
        order = np.concatenate(rows)
        new = {}
        for name, column in old.items():
            values = np.asarray(column)
            taken = values[order]
            new[name] = taken if values.dtype.kind in "biuf" else taken.tolist()
        new[xname], new[yname] = np.concatenate(xs), np.concatenate(ys)
        renderer.data_source.data = new

    def _drawn(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Points (degrees with a frame) as drawn: float arrays, projected with a frame."""
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        if self.frame is not None:
            x, y = self.frame.forward(x, y)
        return np.asarray(x), np.asarray(y)

    def points_at(self, layer: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The dots of the ``layer``-th Scatter layer, (x, y) (degrees with a frame)."""
        renderer = self._scatter(0 if self._merged else layer)
        data = renderer.data_source.data
        glyph = renderer.glyph
        x, y = np.asarray(data[_column(glyph.x)]), np.asarray(data[_column(glyph.y)])
        if self._merged:
            which = np.asarray(data[_LAYER])
            mine = (which == layer) & (np.arange(which.size) >= _looks(which))
            x, y = x[mine], y[mine]
        if self.frame is not None:
            return self.frame.inverse(x, y)
        return x, y

    @property
    def _merged(self) -> bool:
        try:
            return _LAYER in self._scatter(0).data_source.data
        except LookupError:
            return False

    @property
    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """The dots of the first Scatter glyph now shown, (x, y) (degrees with a frame)."""
        return self.points_at(0)

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
        """Call ``callback(x, y)`` when the map is clicked (lon, lat in degrees with a frame)."""

        def tapped(event: events.Tap) -> None:
            if event.x is None or event.y is None:
                return  # a click without a point (not from a browser): nothing to select
            x, y = float(event.x), float(event.y)
            if self.frame is not None:
                lon, lat = self.frame.inverse(np.array([x]), np.array([y]))
                x, y = float(lon[0]), float(lat[0])
            if np.isfinite(x) and np.isfinite(y):
                callback(x, y)

        self.figure.on_event(events.Tap, tapped)


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
    are the slots, in order; a slot given no data is hidden. With ``band`` = (colour, legend
    label) a shaded band (an interval) is drawn under the curves, hidden until given bounds.
    With a ``key`` the figure comes through the server's shared renders (:func:`render`): give
    an element whose curves the caller replaces at once, since a copy shows another session's.
    """

    def __init__(
        self,
        element: Element,
        band: tuple[str, str] | None = None,
        key: Hashable | None = None,
        **pane_params: object,
    ) -> None:
        self.figure = render(element, key)
        self.lines = [
            r
            for r in self.figure.renderers
            if isinstance(r, GlyphRenderer) and isinstance(r.glyph, Line)
        ]
        self.band: GlyphRenderer | None = None
        if band is not None:
            color, label = band
            source = ColumnDataSource({"x": np.array([], dtype="datetime64[ns]"),
                                       "lower": np.array([]), "upper": np.array([])})
            self.band = self.figure.varea(
                x="x", y1="lower", y2="upper", source=source, fill_color=color, fill_alpha=0.22,
                legend_label=label, visible=False,
            )
            # under the curves
            others = [r for r in self.figure.renderers if r is not self.band]
            self.figure.renderers = [self.band, *others]
        self.legend_items = list(self.figure.legend[0].items) if self.figure.legend else []
        if self.band is not None and (item := self._item(self.band)) is not None:
            item.visible = False
        self.pane = pn.pane.Bokeh(self.figure, **pane_params)

    def _show_band(self, bounds: tuple[pd.Series, pd.Series] | None) -> tuple[float, float]:
        """Draw the band between ``bounds`` (or hide it); returns its finite value range."""
        if self.band is None:
            return np.inf, -np.inf
        item = self._item(self.band)
        if bounds is None:
            self.band.visible = False
            if item is not None:
                item.visible = False
            return np.inf, -np.inf
        lower, upper = bounds
        lo = np.asarray(lower.values, dtype=float)
        hi = np.asarray(upper.values, dtype=float)
        self.band.data_source.data = {
            "x": pd.DatetimeIndex(lower.index).values, "lower": lo, "upper": hi,
        }
        self.band.visible = True
        if item is not None:
            item.visible = True
        ok = np.isfinite(lo) & np.isfinite(hi)
        if not ok.any():
            return np.inf, -np.inf
        return float(lo[ok].min()), float(hi[ok].max())

    def _item(self, renderer: GlyphRenderer):  # noqa: ANN202 - a Bokeh LegendItem or None
        for item in self.legend_items:
            if renderer in item.renderers:
                return item
        return None

    def update(
        self,
        series: list[tuple[str, pd.Series] | None],
        title: str | None = None,
        band: tuple[pd.Series, pd.Series] | None = None,
    ) -> None:
        """Give each slot a (legend label, series indexed by time) or ``None`` to hide it, and
        the band its (lower, upper) bounds or ``None`` to hide it."""
        if len(series) != len(self.lines):
            raise ValueError(f"{len(series)} series for {len(self.lines)} curves")
        lo, hi = self._show_band(band)
        t0, t1 = None, None
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
            renderer.data_source.data = {_column(renderer.glyph.x): x, _column(renderer.glyph.y): y}
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


_FONT_PROPS: dict[type, tuple[str, ...]] = {
    Title: ("text_font_size",),
    Axis: ("axis_label_text_font_size", "major_label_text_font_size"),
    ColorBar: ("title_text_font_size", "major_label_text_font_size"),
    Legend: ("label_text_font_size", "title_text_font_size"),
}


def _scaled(size: object, factor: float) -> object:
    """``"12pt"`` × ``factor`` (px, pt and em sizes; anything else unchanged)."""
    if isinstance(size, dict) and "value" in size:
        return {**size, "value": _scaled(size["value"], factor)}
    if not isinstance(size, str):
        return size
    for unit in ("pt", "px", "em"):
        if size.endswith(unit):
            try:
                return f"{float(size[: -len(unit)]) * factor:.4g}{unit}"
            except ValueError:
                return size
    return size


def restyle(roots: list[Model], presentation: bool, scale: float) -> int:
    """Presentation mode on the Bokeh plots under ``roots``, in place; returns how many changed.

    On: fonts × ``scale`` and no tool bar; off: back. A plot remembers its mode (plots built
    while the mode was on already have large fonts); each one is changed once per switch.
    """
    changed = 0
    seen: set[str] = set()
    for root in roots:
        for plot in [*root.select({"type": Plot}), *root.select({"type": GridPlot})]:
            if plot.id in seen:
                continue
            seen.add(plot.id)
            state = plot.__dict__.setdefault("_smcore_presentation", {"on": not presentation})
            if state["on"] == presentation:
                continue
            state["on"] = presentation
            if presentation:
                state["toolbar"] = plot.toolbar_location
                plot.toolbar_location = None
            else:
                plot.toolbar_location = state.get("toolbar", "above")
            if isinstance(plot, Plot):
                factor = scale if presentation else 1 / scale
                for model in plot.select({"type": Model}):
                    for cls, props in _FONT_PROPS.items():
                        if isinstance(model, cls):
                            for prop in props:
                                setattr(model, prop, _scaled(getattr(model, prop), factor))
            changed += 1
    return changed
