"""Explorer tab: the merged product at one month beside an ESM or the ensemble mean.

Click a cell to see its full series (reference, CMIP6_DL, ensemble mean, selected ESM). The
data come from the store (:class:`dashboard.datastore.DataStore`), which reads them once per
change of the selection; this module only draws them.
"""

from __future__ import annotations

import holoviews as hv
import hvplot.pandas  # noqa: F401 - registers .hvplot on DataFrames
import numpy as np
import pandas as pd
import panel as pn
import xarray as xr

from dashboard import loaders
from dashboard.compute import robust_range
from dashboard.config import (
    PRODUCT_COLORS,
    SCENARIO_LABELS,
    SERIES_HEIGHT,
    SSM_CMAP,
    UNCERTAINTY_CMAP,
    product_label,
)
from dashboard.datastore import INTERVAL_COLUMNS, MonthMaps
from dashboard.export import BoxExport
from dashboard.live import LiveFigure, LiveSeries, link_ranges
from dashboard.maps import field_frame, image_data, map_image, map_points, present
from dashboard.projection import DEFAULT_PROJECTION, PROJECTION_NAMES, MapFrame
from dashboard.stations import StationLayer
from dashboard.views.base import View, csv_download, discrete_widget, netcdf_download
from dashboard.widgets import DiscreteSlider
from smcore.errors import InputError

__all__ = [
    "ExplorerView",
    "month_map",
    "marker_points",
    "pixel_series_plot",
    "series_slots",
    "compared_model",
    "ssm_limits",
    "uncertainty_limits",
    "SLOTS",
]

SSM_LABEL = "SSM (m³ m⁻³)"
UNCERTAINTY_LABEL = "m³ m⁻³"
INTERVAL_LABEL = "CMIP6_DL 90 % interval"


def uncertainty_limits(field: xr.DataArray) -> tuple[float, float]:
    """Colour range of an uncertainty map: 0 to its 99th percentile, rounded up to 0.01."""
    _, hi = robust_range(field, q=1.0)
    return (0.0, max(0.01, float(np.ceil(hi * 100) / 100)))


def ssm_limits(climatology: xr.DataArray | np.ndarray) -> tuple[float, float]:
    """Colour range of soil-moisture maps: 0 to the climatology's 99th percentile, rounded up."""
    _, hi = robust_range(climatology, q=1.0)
    return (0.0, float(np.ceil(hi * 20) / 20))


def month_map(
    field: xr.DataArray,
    *,
    title: str,
    clim: tuple[float, float],
    colorbar: bool = True,
    projection: str = DEFAULT_PROJECTION,
    presentation: bool = False,
) -> hv.Element:
    """A soil-moisture map (lat, lon; m3 m-3) with outlines and (optionally) a colour bar."""
    return map_image(
        field,
        title=title,
        cmap=SSM_CMAP,
        clim=clim,
        clabel=SSM_LABEL,
        colorbar=colorbar,
        projection=projection,
        presentation=presentation,
    )


def pixel_series_plot(df: pd.DataFrame, title: str = "", presentation: bool = False) -> hv.Overlay:
    """Curves of each column of ``df`` (index time, values m3 m-3) in product colours.

    One hvplot line per column, labelled with the product's name; CMIP6_DL drawn thicker, the
    ensemble mean dashed. The columns :data:`~dashboard.datastore.INTERVAL_COLUMNS` are not
    curves (the explorer draws them as a band: :class:`dashboard.live.LiveSeries`).
    """
    curves = []
    for col in df.columns:
        if col in INTERVAL_COLUMNS:
            continue
        series = df[col].rename("ssm").rename_axis("time").reset_index()
        curves.append(
            series.hvplot.line(
                x="time",
                y="ssm",
                label=product_label(str(col)),
                color=PRODUCT_COLORS.get(col, PRODUCT_COLORS["model"]),
                line_dash="dashed" if col == "ensemble_mean" else "solid",
                line_width=2 if col == "CMIP6_DL" else 1.4,
                responsive=True,
                height=SERIES_HEIGHT,
            ).redim.label(ssm=SSM_LABEL)
        )
    overlay = hv.Overlay(curves).opts(
        title=title,
        legend_position="top",
        responsive=True,
        height=SERIES_HEIGHT,
        xlabel="",
        show_grid=True,
        legend_cols=4,
    )
    return present(overlay, presentation)


SLOTS = ("reference", "CMIP6_DL", "ensemble_mean", "model")
"""Curves of the explorer's series plot, in order (``model``: the selected ESM)."""


def compared_model(df: pd.DataFrame) -> str | None:
    """The ESM column of a cell's series (none when the ensemble mean is compared)."""
    extra = [c for c in df.columns if c not in SLOTS and c not in INTERVAL_COLUMNS]
    return str(extra[0]) if extra else None


def series_slots(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with exactly the columns of :data:`SLOTS` (absent ones NaN; an ESM → ``model``)."""
    out = pd.DataFrame(index=df.index)
    for slot in SLOTS[:3]:
        out[slot] = df[slot] if slot in df.columns else np.nan
    model = compared_model(df)
    out["model"] = df[model] if model else np.nan
    out.attrs = dict(df.attrs)
    return out


def marker_points(pixel: tuple[float, float], frame: MapFrame | None = None) -> hv.Points:
    """The clicked cell (lon, lat) as a ringed marker (projected into ``frame``)."""
    if frame is None:
        points = hv.Points([pixel], kdims=["lon", "lat"])
    else:
        points = map_points(np.array([pixel[0]]), np.array([pixel[1]]), frame)
    return points.opts(
        marker="circle_x", size=14, color="white", line_color="#d62728", line_width=2, tools=[]
    )


class ExplorerView(View):
    """CMIP6_DL beside the compared product at the selected month, and a clicked cell's series.

    The view draws what the store derives from the shared selections
    (:attr:`DataStore.month_maps`, :attr:`DataStore.cell_series`): the two maps and the series
    are rendered once, then updated in place (:class:`dashboard.live.LiveFigure`,
    :class:`dashboard.live.LiveSeries`) whenever the store changes them. The maps pan and zoom
    together, and a click on either sets the store's ``pixel``.
    """

    key = "explorer"
    title = "Explorer"
    artifacts = ("manifest", "product", "stations", "stations_series")

    def build(self) -> pn.viewable.Viewable:
        """Month controls, the two maps and the series of the selected cell."""
        store = self.store
        store.product_ssm("historical")
        loaders.open_store(store.root)
        self.clim = ssm_limits(loaders.static_field(store.root, "climatology"))
        if store.month_maps is None and not store.maps_error:
            store.read_month_maps()  # no month at all: the read says why (an error panel)
        # an unreadable month (a corrupted chunk) draws empty maps; the notice says why and the
        # month slider stays, to move to another month
        maps = store.month_maps or self._blank_maps()
        # ISMN stations on both maps (with evaluation/stations.nc) and the shown box's export
        self._stations = StationLayer(store.root, contained=self.contained,
                                      presentation=store.presentation)
        self._box = BoxExport(store.root, experiment=lambda: store.explorer_experiment)
        self._caption = pn.pane.Markdown(sizing_mode="stretch_width")
        self._maps_row = pn.Column(*self._arrange(self._make_maps(maps)))
        series = store.cell_series
        # drawn empty (a copy when another session drew it), the cell's curves shown just below
        self._series = LiveSeries(
            lambda: pixel_series_plot(
                series_slots(self._blank_series()), presentation=store.presentation
            ),
            band=(PRODUCT_COLORS["CMIP6_DL"], INTERVAL_LABEL),
            key=self.shared_key("cell series"),
            loading=store.param.series_loading,
            sizing_mode="stretch_width",
        )
        self._show_series(series, store.series_error)
        self._show_maps_error()
        self.watch(lambda e: self._show_maps(e.new), ["month_maps"])
        self.watch(lambda *_: self._show_maps_error(), ["maps_error"])
        self.watch(lambda e: self._show_marker(e.new), ["pixel"])
        self.watch(
            lambda *_: self._show_series(store.cell_series, store.series_error),
            ["cell_series", "series_error"],
        )
        slider = discrete_widget(
            DiscreteSlider,
            store.param.month,
            self._watchers,
            label="Month",
            sizing_mode="stretch_width",
        )
        player = discrete_widget(
            pn.widgets.DiscretePlayer,
            store.param.month,
            self._watchers,
            show_value=False,
            interval=800,
            loop_policy="loop",
            width=300,
            show_loop_controls=False,
            visible_buttons=["slower", "previous", "play", "pause", "next", "faster"],
        )
        downloads = pn.Row(
            netcdf_download(
                self.month_dataset,
                "smcore_explorer_month.nc",
                "smcore explorer maps",
                label="Maps (NetCDF)",
            ),
            csv_download(self.series_export, "smcore_pixel_series.csv", label="Series (CSV)"),
            self._box.button,
        )
        return pn.Column(
            self._caption,
            pn.Row(slider, player, sizing_mode="stretch_width"),
            self._maps_row,
            self._series.pane,
            self._stations.panel(),
            downloads,
            sizing_mode="stretch_width",
        )

    def _make_maps(self, maps: MonthMaps) -> list[pn.pane.Bokeh]:
        """The maps in the store's projection, zooming together, reporting clicks: CMIP6_DL,
        the compared model and, for a product with one, its uncertainty."""
        store = self.store
        frame = field_frame(maps.dl, store.projection)
        marker = marker_points(store.pixel, frame)
        style = dict(clim=self.clim, projection=store.projection, presentation=store.presentation)

        def key(role: str) -> tuple[object, ...] | None:
            """What the map shows (files, month, models, cell, projection, mode), so that
            another session's rendering of the same map is copied; blank maps are not shared."""
            if maps is not store.month_maps:
                return None
            return self.shared_key(role, maps.experiment, maps.month, maps.product,
                                   tuple(store.pixel))

        self._dl = LiveFigure(
            lambda: month_map(maps.dl, title=maps.dl_title, **style) * marker, frame, key=key("dl")
        )
        self._other = LiveFigure(
            lambda: month_map(maps.other, title=maps.other_title, **style) * marker, frame,
            key=key("other"),
        )
        figures = [self._dl, self._other]
        self._unc: LiveFigure | None = None
        if maps.uncertainty is not None:
            uncertainty = maps.uncertainty
            self._unc = LiveFigure(
                lambda: map_image(
                    uncertainty, title=maps.uncertainty_title, cmap=UNCERTAINTY_CMAP,
                    clim=uncertainty_limits(uncertainty), clabel=UNCERTAINTY_LABEL,
                    projection=store.projection, presentation=store.presentation,
                ) * marker,
                frame,
                key=key("uncertainty"),
            )
            figures.append(self._unc)
        link_ranges(figures)
        self._box.reset()
        for fig in figures:
            fig.on_tap(lambda x, y: self.contained("cell click", lambda: self._on_tap(x, y)))
            self._stations.attach(fig.figure, frame)
            self._box.track(fig.figure, frame)
        self._caption.object = (
            "Left: the merged 0.25° product; right: the compared model (bilinear from 2°)"
            + (
                "; below: how unsure the product is, "
                + ("the width of its 90 % predictive interval (light: sure, dark: unsure)"
                   if maps.uncertainty.name == "interval_width"
                   else "the spread of its ensemble of networks (not an interval)")
                if maps.uncertainty is not None else ""
            )
            + ". **Click a cell** on any map for its full series"
            + (", with the 90 % interval shaded" if maps.uncertainty is not None
               and maps.uncertainty.name == "interval_width" else "")
            + f". Maps: {PROJECTION_NAMES[store.projection]}."
        )
        return [fig.pane for fig in figures]

    @staticmethod
    def _arrange(panes: list[pn.pane.Bokeh]) -> list[pn.Row]:
        """The two maps side by side, the uncertainty map (if any) below the product's."""
        return [pn.Row(*panes[:2]), *([pn.Row(*panes[2:])] if len(panes) > 2 else [])]

    def reproject(self) -> None:
        """Only the two maps are drawn anew; the series and the controls stay."""
        maps = self.store.month_maps
        if self.missing or maps is None or not hasattr(self, "_maps_row"):
            self.rebuild()
            return
        self._maps_row.objects = self._arrange(self._make_maps(maps))

    # -- drawing what the store derives -----------------------------------
    def _on_tap(self, x: float, y: float) -> None:
        self.store.pixel = (x, y)

    def _show_maps(self, maps: MonthMaps | None) -> None:
        if maps is None:
            if not self.store.maps_error:
                return  # no month to show
            maps = self._blank_maps()  # unreadable: empty maps, the notice says why
        self._dl.set_image(image_data(maps.dl)[2])
        self._dl.set_title(maps.dl_title)
        self._other.set_image(image_data(maps.other)[2])
        self._other.set_title(maps.other_title)
        if self._unc is not None:
            if maps.uncertainty is None:  # unreadable month: empty
                self._unc.set_image(np.full_like(image_data(maps.dl)[2], np.nan))
            else:
                self._unc.set_image(image_data(maps.uncertainty)[2])
            self._unc.set_title(maps.uncertainty_title or f"uncertainty · {maps.month}")

    def _show_maps_error(self) -> None:
        self.report("read of the month's maps", self.store.maps_error or None)

    def _blank_maps(self) -> MonthMaps:
        """Empty (NaN) maps of the selected month on the product's grid: it cannot be read."""
        store = self.store
        ssm = store.product_ssm(store.explorer_experiment)
        empty = xr.DataArray(
            np.full((ssm.sizes["lat"], ssm.sizes["lon"]), np.nan, np.float32),
            dims=("lat", "lon"),
            coords={"lat": ssm["lat"].values, "lon": ssm["lon"].values},
            name="ssm",
        )
        month = f"{store.month} (unreadable)"
        return MonthMaps(store.explorer_experiment, month, store.product, empty, empty)

    def _blank_series(self) -> pd.DataFrame:
        """One empty month in the series plot's columns, to draw it before a series is read."""
        df = pd.DataFrame({c: [np.nan] for c in SLOTS}, index=pd.DatetimeIndex(["2000-01-01"]))
        df.index.name = "time"
        return df

    def _show_marker(self, pixel: tuple[float, float]) -> None:
        for fig in (self._dl, self._other, self._unc):
            if fig is not None:
                fig.set_points(np.array([pixel[0]]), np.array([pixel[1]]))

    def _show_series(self, df: pd.DataFrame | None, error: str = "") -> None:
        self.report("read of the cell's series", error or None)
        if df is None:
            self._series.figure.title.text = f"cannot read this cell: {error}"
            return
        entries = [(product_label(c), df[c]) if c in df.columns else None for c in SLOTS[:3]]
        model = compared_model(df)
        entries.append((model, df[model]) if model else None)
        experiment = str(df.attrs["experiment"])
        band = None
        if all(c in df.columns for c in INTERVAL_COLUMNS):
            band = (df[INTERVAL_COLUMNS[0]], df[INTERVAL_COLUMNS[1]])
        self._series.update(
            entries,
            title=f"Cell {df.attrs['lat']:.2f}°N {df.attrs['lon']:.2f}°E · "
            f"{SCENARIO_LABELS.get(experiment, experiment)}",
            band=band,
        )

    # -- exports ----------------------------------------------------------
    def series_frame(self) -> pd.DataFrame:
        """The selected cell's series shown in the plot (m3 m-3)."""
        if self.store.cell_series is None:
            raise InputError(None, self.store.series_error or "no cell series to show")
        return self.store.cell_series

    def series_export(self) -> pd.DataFrame:
        """:meth:`series_frame` with the cell's ``lon``, ``lat`` (degrees) and the experiment."""
        df = self.series_frame()
        return df.assign(
            lon=df.attrs["lon"], lat=df.attrs["lat"], experiment=df.attrs["experiment"]
        )

    def month_dataset(self) -> xr.Dataset:
        """Both maps of the selected month as a dataset (m3 m-3)."""
        return self.store.current_month_maps().to_dataset()
