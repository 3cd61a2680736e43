"""Explorer tab: the merged product at one month beside an ESM or the ensemble mean.

Click a cell to see its full series (reference, CMIP6_DL, ensemble mean, selected ESM).
"""

from __future__ import annotations

from concurrent.futures import Future

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
import xarray as xr
from panel.io.state import set_curdoc

from dashboard import loaders
from dashboard.compute import robust_range
from dashboard.config import (
    DEFAULT_PIXEL,
    PRODUCT_COLORS,
    SCENARIO_LABELS,
    SERIES_HEIGHT,
    SSM_CMAP,
    product_label,
)
from dashboard.live import LiveFigure, LiveSeries, link_ranges
from dashboard.maps import image_data, map_image
from dashboard.views.base import View, csv_download, netcdf_download
from smcore.errors import InputError

__all__ = [
    "ExplorerView",
    "month_map",
    "marker_points",
    "pixel_series_plot",
    "series_slots",
    "ssm_limits",
    "SLOTS",
]

SSM_LABEL = "SSM (m³ m⁻³)"


def ssm_limits(climatology: xr.DataArray | np.ndarray) -> tuple[float, float]:
    """Colour range of soil-moisture maps: 0 to the climatology's 99th percentile, rounded up."""
    _, hi = robust_range(climatology, q=1.0)
    return (0.0, float(np.ceil(hi * 20) / 20))


def month_map(
    field: xr.DataArray, *, title: str, clim: tuple[float, float], colorbar: bool = True
) -> hv.Element:
    """A soil-moisture map (lat, lon; m3 m-3) with outlines and (optionally) a colour bar."""
    return map_image(
        field, title=title, cmap=SSM_CMAP, clim=clim, clabel=SSM_LABEL, colorbar=colorbar
    )


def pixel_series_plot(df: pd.DataFrame, title: str = "") -> hv.Overlay:
    """Curves of each column of ``df`` (index time, values m3 m-3) in product colours."""
    curves = []
    for col in df.columns:
        color = PRODUCT_COLORS.get(col, PRODUCT_COLORS["model"])
        dash = "dashed" if col == "ensemble_mean" else "solid"
        series = df[col].rename("ssm").reset_index()
        curves.append(
            hv.Curve(
                series,
                kdims=["time"],
                vdims=[hv.Dimension("ssm", label=SSM_LABEL)],
                label=product_label(str(col)),
            ).opts(
                color=color,
                line_dash=dash,
                line_width=2 if col == "CMIP6_DL" else 1.4,
                tools=["hover"],
            )
        )
    return hv.Overlay(curves).opts(
        title=title,
        legend_position="top",
        responsive=True,
        height=SERIES_HEIGHT,
        xlabel="",
        show_grid=True,
        legend_cols=4,
    )


SLOTS = ("reference", "CMIP6_DL", "ensemble_mean", "model")
"""Curves of the explorer's series plot, in order (``model``: the selected ESM)."""


def series_slots(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with exactly the columns of :data:`SLOTS` (absent ones NaN; an ESM → ``model``)."""
    out = pd.DataFrame(index=df.index)
    for slot in SLOTS[:3]:
        out[slot] = df[slot] if slot in df.columns else np.nan
    extra = [c for c in df.columns if c not in SLOTS]
    out["model"] = df[extra[0]] if extra else np.nan
    out.attrs = dict(df.attrs)
    return out


def marker_points(pixel: tuple[float, float]) -> hv.Points:
    """The clicked cell (lon, lat) as a ringed marker."""
    return hv.Points([pixel], kdims=["lon", "lat"]).opts(
        marker="circle_x", size=14, color="white", line_color="#d62728", line_width=2, tools=[]
    )


class ExplorerView(View):
    """CMIP6_DL beside the compared product at the selected month, and a clicked cell's series.

    The two maps are rendered once and then updated in place (:class:`dashboard.live.LiveFigure`);
    they pan and zoom together, and a click on either selects the cell whose series is drawn.
    """

    key = "explorer"
    title = "Explorer"

    pixel = param.NumericTuple(default=DEFAULT_PIXEL, length=2, doc="Clicked (lon, lat).")

    _maps_key: tuple | None = None
    _series_key: tuple | None = None

    pending: Future | None = None
    """The series read in flight on the loader thread, if any (served sessions only)."""

    def build(self) -> pn.viewable.Viewable:
        """Month controls, the two maps and the series of the selected cell."""
        store = self.store
        store.product_dataset("historical")
        loaders.open_store(store.root)
        self.clim = ssm_limits(loaders.static_field(store.root, "climatology"))
        self._snap_pixel()
        dl, other, dl_title, other_title = self._fields()
        self._dl = LiveFigure(
            month_map(dl, title=dl_title, clim=self.clim, colorbar=False)
            * marker_points(self.pixel)
        )
        self._other = LiveFigure(
            month_map(other, title=other_title, clim=self.clim) * marker_points(self.pixel)
        )
        self._maps_key = (store.explorer_experiment, store.month, store.product)
        link_ranges([self._dl, self._other])
        for fig in (self._dl, self._other):
            fig.on_tap(self._on_tap)
        store.param.watch(self._refresh_maps, ["month", "period", "scenario", "product"])
        self.param.watch(self._refresh_marker, ["pixel"])
        slider = pn.widgets.DiscreteSlider.from_param(
            store.param.month, name="Month", sizing_mode="stretch_width"
        )
        self._series = LiveSeries(
            pixel_series_plot(series_slots(self.series_frame())), sizing_mode="stretch_width"
        )
        self._refresh_series()
        self.param.watch(self._refresh_series, ["pixel"])
        store.param.watch(self._refresh_series, ["period", "scenario", "product"])
        downloads = pn.Row(
            netcdf_download(
                self.month_dataset,
                "smcore_explorer_month.nc",
                "smcore explorer maps",
                label="Maps (NetCDF)",
            ),
            csv_download(self.series_export, "smcore_pixel_series.csv", label="Series (CSV)"),
        )
        return pn.Column(
            pn.pane.Markdown(
                "Left: the merged 0.25° product; right: the compared model (bilinear "
                "from 2°). **Click a cell** on either map for its full series.",
                sizing_mode="stretch_width",
            ),
            pn.Row(slider, self._player(), sizing_mode="stretch_width"),
            pn.Row(self._dl.pane, self._other.pane),
            self._series.pane,
            downloads,
            sizing_mode="stretch_width",
        )

    # -- callbacks --------------------------------------------------------
    def _player(self) -> pn.widgets.DiscretePlayer:
        """A player over the months, kept in sync with ``store.month`` both ways."""
        store = self.store
        player = pn.widgets.DiscretePlayer(
            options=list(store.param.month.objects),
            value=store.month,
            show_value=False,
            interval=800,
            loop_policy="loop",
            width=300,
            show_loop_controls=False,
            visible_buttons=["slower", "previous", "play", "pause", "next", "faster"],
        )

        def to_player(event: param.parameterized.Event) -> None:
            if event.what == "objects":
                player.param.update(options=list(event.new), value=store.month)
            elif event.new in player.options and player.value != event.new:
                player.value = event.new

        store.param.watch(to_player, ["month"], what="objects")
        store.param.watch(to_player, ["month"])
        player.param.watch(
            lambda e: setattr(store, "month", e.new) if e.new != store.month else None, "value"
        )
        return player

    def _snap_pixel(self) -> None:
        exp = self.store.explorer_experiment
        ds = self.store.product_dataset(exp)
        i, j = self.store.pixel_index(exp, *self.pixel)
        if not np.isfinite(ds["ssm"].isel(time=0, lat=i, lon=j).values):
            land = np.argwhere(np.isfinite(ds["ssm"].isel(time=0).values))
            if land.size:
                k = np.argmin(((land - [i, j]) ** 2).sum(axis=1))
                i, j = land[k]
        self.pixel = (float(ds["lon"].values[j]), float(ds["lat"].values[i]))

    def _on_tap(self, x: float, y: float) -> None:
        self.pixel = (x, y)

    def _label(self) -> str:
        exp = self.store.explorer_experiment
        return SCENARIO_LABELS.get(exp, exp)

    def _fields(self) -> tuple[xr.DataArray, xr.DataArray, str, str]:
        store = self.store
        exp, month, product = store.explorer_experiment, store.month, store.product
        dl = store.product_month(exp, month)
        other = store.comparison_month(exp, month, product, like=dl)
        return (
            dl,
            other,
            f"CMIP6_DL · {month} · {self._label()}",
            f"{product_label(product)} · {month} · {self._label()}",
        )

    def _refresh_maps(self, *_: object) -> None:
        store = self.store
        key = (store.explorer_experiment, store.month, store.product)
        if store.month is None or key == self._maps_key:
            return  # e.g. a new scenario while the explorer shows the historical period
        self._maps_key = key
        dl, other, dl_title, other_title = self._fields()
        self._dl.set_image(image_data(dl)[2])
        self._dl.set_title(dl_title)
        self._other.set_image(image_data(other)[2])
        self._other.set_title(other_title)

    def _refresh_marker(self, *_: object) -> None:
        for fig in (self._dl, self._other):
            fig.set_points(np.array([self.pixel[0]]), np.array([self.pixel[1]]))

    def _refresh_series(self, *_: object) -> None:
        """Redraw the series of the selected cell.

        In a served session the data are read on the loader thread, so the page stays
        responsive while a new cell's full record is read from disk.
        """
        args = (self.store.explorer_experiment, *self.pixel, self.store.product)
        if args == self._series_key:
            return
        self._series_key = args
        doc = pn.state.curdoc
        if doc is None or doc.session_context is None:
            self._show_series(self.store.pixel_series(*args))
            return
        self._series.pane.loading = True
        future = loaders.background().submit(self.store.pixel_series, *args)
        self.pending = future

        def apply(result: Future) -> None:
            if self._series_key != args:
                return  # a newer request superseded this one
            with set_curdoc(doc):
                self._series.pane.loading = False
                try:
                    self._show_series(result.result())
                except InputError as exc:
                    self._series.figure.title.text = f"cannot read this cell: {exc}"

        future.add_done_callback(lambda f: doc.add_next_tick_callback(lambda: apply(f)))

    def _show_series(self, df: pd.DataFrame) -> None:
        entries = [(product_label(c), df[c]) if c in df.columns else None for c in SLOTS[:3]]
        model = [c for c in df.columns if c not in SLOTS]
        entries.append((model[0], df[model[0]]) if model else None)
        self._series.update(
            entries, title=f"Cell {df.attrs['lat']:.2f}°N {df.attrs['lon']:.2f}°E · {self._label()}"
        )

    # -- exports ----------------------------------------------------------
    def series_frame(self) -> pd.DataFrame:
        """The clicked cell's series shown in the plot (m3 m-3)."""
        return self.store.pixel_series(
            self.store.explorer_experiment, *self.pixel, self.store.product
        )

    def series_export(self) -> pd.DataFrame:
        """:meth:`series_frame` with the cell's ``lon``, ``lat`` (degrees) and the experiment."""
        df = self.series_frame()
        return df.assign(
            lon=df.attrs["lon"], lat=df.attrs["lat"], experiment=df.attrs["experiment"]
        )

    def month_dataset(self) -> xr.Dataset:
        """Both maps of the selected month as a dataset (m3 m-3)."""
        exp, month, product = self.store.explorer_experiment, self.store.month, self.store.product
        dl = self.store.product_month(exp, month)
        other = self.store.comparison_month(exp, month, product, like=dl)
        attrs = {"units": "m3 m-3", "standard_name": "volume_fraction_of_condensed_water_in_soil"}
        return xr.Dataset(
            {
                "CMIP6_DL": dl.drop_vars("time", errors="ignore").assign_attrs(attrs),
                product: other.assign_attrs(attrs, comment="bilinear from the 2° model grid"),
            },
            attrs={"experiment": exp, "month": str(month)},
        )
