"""Future trends tab: SSMI Theil–Sen trend maps per season and scenario (Fig. 6–7).

Diverging colours centred on zero, significant trends stippled (the ``significant`` mask of
``ssmi_trends.nc``: Mann–Kendall per pixel, Benjamini–Hochberg false discovery rate per map)
on a lattice of blocks a fixed number of screen pixels wide, so that the dots cover a small
share of any map whatever its size, and the share of land drying and wetting beside the map.
Where ``ssmi_trends.nc`` has the models' AR6 robustness classes, areas of no robust change
are hatched and conflicting signals crossed on the same kind of lattice (IPCC AR6 Atlas).
"""

from __future__ import annotations

import holoviews as hv
import hvplot.pandas  # noqa: F401 - registers .hvplot on DataFrames
import numpy as np
import pandas as pd
import panel as pn
import xarray as xr
from bokeh.model import Model

from dashboard.compute import symmetric_limit
from dashboard.config import (
    MAP_WIDTH,
    PRESENTATION_FONTSCALE,
    SCENARIO_LABELS,
    SEASON_LABELS,
    SIGNIFICANCE,
    SMALL_MAP_WIDTH,
    STIPPLE_MAX_POINTS,
    STIPPLE_SIZE_PX,
    STIPPLE_SPACING_PX,
    TREND_CMAP,
)
from dashboard.contain import escape_markdown
from dashboard.live import LiveFigure, link_ranges, render, restyle
from dashboard.maps import field_frame, image_data, map_image, map_points, present
from dashboard.projection import DEFAULT_PROJECTION, MapFrame
from dashboard.views.base import View, csv_download, netcdf_download
from smcore.analysis.robustness import AGREE_SHARE, CONFLICTING, NO_ROBUST_CHANGE, SIGNIFICANT_SHARE
from smcore.analysis.significance import significance_label

__all__ = [
    "TrendsView",
    "significance_mask",
    "significance_rule",
    "robustness_masks",
    "ROBUSTNESS_LEGEND",
    "stipple_coords",
    "stipple_points",
    "stipple_stride",
    "trend_map",
    "area_fraction_bars",
    "fraction_values",
    "TREND_LABEL",
]

TREND_LABEL = "SSMI trend (per decade)"
DRY, WET = "#a6611a", "#018571"


def significance_mask(trends: xr.Dataset) -> xr.DataArray:
    """Where ``trends`` (one scenario and season, or more) has a significant trend, bool.

    The ``significant`` flag of ``ssmi_trends.nc``; files written before it existed fall back
    to ``p_value < SIGNIFICANCE`` (what their ``area_fractions.csv`` used).
    """
    if "significant" in trends:
        return trends["significant"] == 1
    with np.errstate(invalid="ignore"):
        return trends["p_value"] < SIGNIFICANCE


NO_ROBUST_LABEL = f"hatched: no robust change (< {SIGNIFICANT_SHARE:.0%} of models significant)"
CONFLICTING_LABEL = (f"crosses: conflicting signals (>= {SIGNIFICANT_SHARE:.0%} significant, "
                     f"< {AGREE_SHARE:.0%} agree on the sign)")
ROBUSTNESS_LEGEND = (
    "**Hatching** (/): no robust change, fewer than "
    f"{SIGNIFICANT_SHARE:.0%} of the bias-corrected models have a significant trend; "
    f"**crosses** (×): conflicting signals, at least {SIGNIFICANT_SHARE:.0%} significant but "
    f"fewer than {AGREE_SHARE:.0%} agree on the sign of the multi-model median; plain colour: "
    "a robust signal (IPCC AR6 Atlas, advanced approach). One mark per block where most cells "
    "have the class."
)
"""The rule of the robustness marks, for the tab's text."""


def robustness_masks(trends: xr.Dataset) -> tuple[xr.DataArray, xr.DataArray] | None:
    """(no robust change, conflicting) bool masks of ``trends``, or None for a file without
    the models' ``robustness`` class (written before it existed)."""
    if "robustness" not in trends:
        return None
    cls = trends["robustness"]
    return cls == NO_ROBUST_CHANGE, cls == CONFLICTING


def significance_rule(trends: xr.Dataset) -> str:
    """The rule of :func:`significance_mask` in words, for legends and captions."""
    if "significant" not in trends:
        return f"Mann–Kendall p < {SIGNIFICANCE:g}"
    attrs = trends["significant"].attrs
    if "mann_kendall_variant" not in attrs or "fdr_alpha" not in attrs:
        return "the trend file's significance flag"
    return significance_label(str(attrs["mann_kendall_variant"]), float(attrs["fdr_alpha"]))


def stipple_coords(
    significant: xr.DataArray,
    *,
    alpha: float = SIGNIFICANCE,
    max_points: int = STIPPLE_MAX_POINTS,
    stride: int | None = None,
    valid: xr.DataArray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(lon, lat) of the significance dots of ``significant`` (lat, lon).

    A boolean mask (:func:`significance_mask`) is used as is; p-values count where below
    ``alpha``. The grid is cut into blocks of ``stride`` × ``stride`` cells (by default the
    smallest stride giving at most about ``max_points`` dots); a block where at least half of
    the cells with a value (``valid``, lat/lon, bool; by default the finite p-values, or
    every cell of a boolean mask) are significant, and whose centre cell has a value, gets one
    dot at its centre. With a stride of 1 every significant cell gets a dot.
    """
    field = significant.transpose("lat", "lon")
    values = field.values
    with np.errstate(invalid="ignore"):
        sig = np.asarray(values if values.dtype == bool else values < alpha)
        if valid is not None:
            valid = np.asarray(valid.transpose("lat", "lon").values, dtype=bool)
        else:
            valid = np.ones_like(sig) if values.dtype == bool else np.isfinite(values)
    if stride is None:
        stride = max(1, int(np.ceil(np.sqrt(sig.sum() / max_points)))) if sig.any() else 1
    lat = field["lat"].values.astype(float)
    lon = field["lon"].values.astype(float)
    if stride == 1:
        ii, jj = np.nonzero(sig)
        return lon[jj], lat[ii]
    nlat, nlon = sig.shape
    pad = ((0, -nlat % stride), (0, -nlon % stride))
    blocks = (nlat + pad[0][1]) // stride, stride, (nlon + pad[1][1]) // stride, stride
    n_sig = np.pad(sig, pad).reshape(blocks).sum(axis=(1, 3))
    n_valid = np.pad(valid, pad).reshape(blocks).sum(axis=(1, 3))
    # the centre cell must have a value too: no dot over the sea beside a coast
    ci = np.minimum(np.arange(blocks[0]) * stride + (stride - 1) // 2, nlat - 1)
    cj = np.minimum(np.arange(blocks[2]) * stride + (stride - 1) // 2, nlon - 1)
    centre = valid[np.ix_(ci, cj)]
    bi, bj = np.nonzero((n_sig > 0) & (2 * n_sig >= n_valid) & centre)
    # block centres, in the grid's own spacing (a padded last block is centred as if full)
    dlat = float(np.diff(lat).mean()) if lat.size > 1 else 1.0
    dlon = float(np.diff(lon).mean()) if lon.size > 1 else 1.0
    return lon[0] + dlon * (bj * stride + (stride - 1) / 2), lat[0] + dlat * (
        bi * stride + (stride - 1) / 2
    )


def stipple_stride(frame: MapFrame, width: int) -> int:
    """Cells per block so that dots are about :data:`STIPPLE_SPACING_PX` apart on screen."""
    px_per_cell = width / max(frame.x.size, 1)
    return max(1, int(np.ceil(STIPPLE_SPACING_PX / px_per_cell)))


def stipple_points(
    significant: xr.DataArray,
    *,
    alpha: float = SIGNIFICANCE,
    max_points: int = STIPPLE_MAX_POINTS,
    label: str | None = None,
    frame: MapFrame | None = None,
    stride: int | None = None,
    valid: xr.DataArray | None = None,
) -> hv.Points:
    """:func:`stipple_coords` as small dark dots; ``label`` names the rule (legend).

    In ``frame`` (a projection) when given, else in longitude and latitude.
    """
    lon, lat = stipple_coords(
        significant, alpha=alpha, max_points=max_points, stride=stride, valid=valid
    )
    label = f"p < {alpha:g}" if label is None else label
    if frame is None:
        points = hv.Points((lon, lat), kdims=["lon", "lat"], label=label)
    else:
        points = map_points(lon, lat, frame, label=label)
    return points.opts(
        color="#111111",
        size=STIPPLE_SIZE_PX,
        alpha=0.85,
        line_alpha=0,
        marker="circle",
        tools=[],
    )


def trend_map(
    trend: xr.DataArray,
    significant: xr.DataArray,
    *,
    title: str,
    limit: float,
    width: int = MAP_WIDTH,
    alpha: float = SIGNIFICANCE,
    colorbar: bool = True,
    compact: bool = False,
    rule: str | None = None,
    projection: str = DEFAULT_PROJECTION,
    presentation: bool = False,
    legend: bool = False,
    robustness: tuple[xr.DataArray, xr.DataArray] | None = None,
) -> hv.Overlay:
    """Trend (lat, lon; per decade) on a diverging map centred on zero (±``limit``).

    Dotted where most cells of a block are significant (``significant``, lat/lon, is a
    :func:`significance_mask`; p-values count below ``alpha``), one dot per block of cells
    about :data:`STIPPLE_SPACING_PX` screen pixels wide, so that the dots never hide the
    colours; ``rule`` names the rule in the dots' label, shown as a legend below the map when
    ``legend``. ``compact``: no axes, a colour bar below and a toolbar shown on hover.
    ``robustness`` (no robust change, conflicting; :func:`robustness_masks`) adds hatch
    marks and crosses on the same lattice (empty layers without it, so that the layers of a
    live map are always dots, hatches, crosses).
    """
    img = map_image(
        trend.rename("trend"),
        title=title,
        cmap=TREND_CMAP,
        clim=(-limit, limit),
        clabel=TREND_LABEL,
        width=width,
        colorbar=colorbar,
        compact=compact,
        projection=projection,
        presentation=presentation,
    )
    frame = field_frame(trend, projection)
    label = f"significant in most cells of the dot's block:\n{rule}" if rule else None
    dots = stipple_points(
        significant,
        alpha=alpha,
        label=label,
        frame=frame,
        stride=stipple_stride(frame, width),
        valid=trend.notnull(),
    )
    stride = stipple_stride(frame, width)
    nothing = xr.zeros_like(trend, dtype=bool)
    no_robust, conflicting = robustness if robustness is not None else (nothing, nothing)
    named = robustness is not None
    marks = dict(frame=frame, stride=stride, valid=trend.notnull())
    hatches = stipple_points(
        no_robust, label=NO_ROBUST_LABEL if named else "", **marks
    ).opts(marker="dash", angle=45, size=STIPPLE_SIZE_PX * 3, line_width=1,
           line_color="#333333", line_alpha=0.8, color="#333333", alpha=0.8)
    crosses = stipple_points(
        conflicting, label=CONFLICTING_LABEL if named else "", **marks
    ).opts(marker="x", size=STIPPLE_SIZE_PX * 2.5, line_width=1, line_color="#7a0177",
           line_alpha=0.9, color="#7a0177", alpha=0.9)
    overlay = img * dots * hatches * crosses
    if legend:
        return overlay.opts(show_legend=True, legend_position="bottom", legend_cols=1)
    return overlay.opts(show_legend=False)


def fraction_values(fractions: pd.DataFrame, experiment: str, season: str) -> tuple[float, float]:
    """(drying, wetting) share of land in percent, one scenario and season (area_fractions.csv)."""
    row = fractions[(fractions["experiment"] == experiment) & (fractions["season"] == season)]
    if row.empty:
        return (float("nan"), float("nan"))
    return (100 * float(row["drying"].iloc[0]), 100 * float(row["wetting"].iloc[0]))


def area_fraction_bars(
    fractions: pd.DataFrame,
    season: str,
    *,
    highlight: str | None = None,
    presentation: bool = False,
) -> hv.Element:
    """Share of land with a significant trend wetting (up) and drying (down) per scenario.

    In percent, from ``area_fractions.csv``; stacked bars drawn by hvplot.
    """
    sub = fractions[fractions["season"] == season]
    df = pd.DataFrame(
        {
            "scenario": [SCENARIO_LABELS.get(str(e), str(e)) for e in sub["experiment"]],
            "wetting": 100 * sub["wetting"].to_numpy(dtype=float),
            "drying": -100 * sub["drying"].to_numpy(dtype=float),
        }
    )
    title = f"{SEASON_LABELS.get(season, season)}: land with a significant trend"
    bars = df.hvplot.bar(
        x="scenario",
        y=["wetting", "drying"],
        stacked=True,
        color=[WET, DRY],
        line_color="white",
        bar_width=0.6,
        title=title,
        frame_width=290,
        frame_height=190,
        xlabel="",
        ylabel="% of land",
        legend=False,
    ).opts(toolbar="above", fontsize={"title": "10pt"})
    return present(bars, presentation)


class TrendsView(View):
    """The selected scenario and season large, all five seasons small, drying/wetting shares."""

    key = "trends"
    title = "Future trends"
    artifacts = ("trends", "area_fractions")

    def build(self) -> pn.viewable.Viewable:
        """Main map, land shares, the season maps and exports."""
        store = self.store
        trends = store.trends()
        fractions = store.area_fractions()
        self.limit = symmetric_limit(trends["trend"].values)
        self._trends = trends
        self._rule = significance_rule(trends)
        self._main_row = pn.Row(sizing_mode="stretch_width")
        self._small_row = pn.Row()
        # the maps drawn in each projection (frame, main, small, presentation): switching back
        # to a projection re-shows them with the current values instead of rendering anew,
        # also when the tab is rebuilt on the same trends (shown again after a projection change)
        if getattr(self, "_drawn_for", None) is not trends:
            self._drawn: dict[str, tuple[MapFrame, LiveFigure, dict[str, LiveFigure], bool]] = {}
            self._drawn_for = trends
        self._make_maps()
        self.watch(self._refresh, ["scenario", "season"])
        big = "40pt" if store.presentation else "32pt"
        drying = pn.indicators.Number(
            label="Drying", format="{value:.1f} %", font_size=big, title_size="12pt",
            default_color=DRY,
        )  # fmt: skip
        wetting = pn.indicators.Number(
            label="Wetting", format="{value:.1f} %", font_size=big, title_size="12pt",
            default_color=WET,
        )  # fmt: skip

        def update_numbers(*_: object) -> None:
            dry, wet = fraction_values(fractions, str(store.scenario), str(store.season))
            drying.value, wetting.value = dry, wet

        update_numbers()
        self.watch(update_numbers, ["scenario", "season"])
        def bars_figure() -> Model:
            season, presentation = str(store.season), bool(store.presentation)
            return render(
                lambda: area_fraction_bars(fractions, season, presentation=presentation),
                key=self.shared_key("land shares", season),
            )

        bars = pn.pane.Bokeh(bars_figure())

        def update_bars(*_: object) -> None:
            bars.object = bars_figure()

        self.watch(update_bars, ["season"])
        side = pn.Column(
            pn.pane.Markdown(
                f"**Share of land with a significant trend** ({escape_markdown(self._rule)}), "
                "selected scenario and season:"
            ),
            pn.Row(drying, wetting),
            bars,
            width=380,
        )
        self._main_row.objects = [self._main.pane, side]
        downloads = pn.Row(
            netcdf_download(
                self.scenario_dataset,
                "ssmi_trends_scenario.nc",
                "smcore SSMI trends",
                label="Trends (NetCDF)",
            ),
            csv_download(lambda: fractions, "area_fractions.csv", label="Land shares (CSV)"),
        )
        return pn.Column(
            pn.pane.Markdown(
                "Theil–Sen trend of the standardised soil-moisture index (SSMI) over the "
                "future period, per decade; brown = drying, green = wetting. **Dots**: "
                f"significant trend ({escape_markdown(self._rule)}) in at least half of the "
                "cells of the "
                "dot's block (one dot per block about "
                f"{STIPPLE_SPACING_PX} screen pixels wide, so the colours stay visible). "
                "Move the **scenario** slider in the sidebar."
                + (" " + ROBUSTNESS_LEGEND if robustness_masks(trends) is not None else ""),
                sizing_mode="stretch_width",
            ),
            self._main_row,
            "#### All seasons of the selected scenario (Fig. 7); they pan and zoom together",
            self._small_row,
            downloads,
            sizing_mode="stretch_width",
        )

    def _make_maps(self) -> None:
        """The main map and the season maps in the store's projection."""
        store = self.store
        projection, presentation = str(store.projection), bool(store.presentation)
        if self._drawn:  # the maps on display: remember the presentation mode they show now
            frame, main, small, _ = self._drawn[self._frame.key]
            self._drawn[self._frame.key] = (frame, main, small, self._presented)
        if projection in self._drawn:
            self._frame, self._main, self._small, shown = self._drawn[projection]
            self._refresh()  # the current scenario and season
            if shown != presentation:
                figures = [self._main.figure, *(fig.figure for fig in self._small.values())]
                restyle(figures, presentation, PRESENTATION_FONTSCALE)
        else:
            self._frame = field_frame(self._trends["trend"], projection)
            scenario = str(store.scenario)
            self._main = self._figure(scenario, str(store.season))
            self._small = {
                str(season): self._figure(scenario, str(season), small=True)
                for season in self._trends["season"].values
            }
            link_ranges(list(self._small.values()))
        self._presented = presentation
        self._drawn[projection] = (self._frame, self._main, self._small, presentation)
        self._small_row.objects = [fig.pane for fig in self._small.values()]

    def restyle(self) -> bool:
        """Follow the presentation mode in place; the maps drawn now remember it."""
        done = super().restyle()
        if done and hasattr(self, "_presented"):
            self._presented = bool(self.store.presentation)
        return done

    def reproject(self) -> None:
        """Only the maps are drawn anew; the land shares and the exports stay."""
        if self.missing or not hasattr(self, "_main_row"):
            self.rebuild()
            return
        self._make_maps()
        self._main_row.objects = [self._main.pane, *self._main_row.objects[1:]]

    def _figure(self, scenario: str, season: str, small: bool = False) -> LiveFigure:
        """The map of ``scenario`` and ``season`` rendered, or copied from another session's
        (the same trends file, selections, projection and presentation mode)."""
        key = self.shared_key("trend map", scenario, season, small)
        # the dots, hatches and crosses drawn by one glyph: a third of the tab's renderers
        return LiveFigure(
            lambda: self._map(scenario, season, small=small), self._frame, key=key, merge=True
        )

    def _map(self, scenario: str, season: str, small: bool = False) -> hv.Overlay:
        sel = self._trends.sel(experiment=scenario, season=season)
        style = dict(
            limit=self.limit,
            rule=self._rule,
            projection=self.store.projection,
            presentation=self.store.presentation,
            robustness=robustness_masks(sel),
        )
        if small:
            return trend_map(
                sel["trend"],
                significance_mask(sel),
                title=SEASON_LABELS.get(season, season),
                width=SMALL_MAP_WIDTH,
                compact=True,
                **style,
            )
        return trend_map(
            sel["trend"],
            significance_mask(sel),
            title=self._title(scenario, season),
            legend=True,
            **style,
        )

    @staticmethod
    def _title(scenario: str, season: str) -> str:
        scenario_label = SCENARIO_LABELS.get(scenario, scenario)
        return f"SSMI trend · {scenario_label} · {SEASON_LABELS.get(season, season)}"

    def _refresh(self, *_: object) -> None:
        scenario, season = str(self.store.scenario), str(self.store.season)
        targets = [(self._main, season, MAP_WIDTH)] + [
            (fig, s, SMALL_MAP_WIDTH) for s, fig in self._small.items()
        ]
        for fig, s, width in targets:
            sel = self._trends.sel(experiment=scenario, season=s)
            fig.set_image(image_data(sel["trend"])[2])
            stride, valid = stipple_stride(self._frame, width), sel["trend"].notnull()
            masks = [significance_mask(sel), *(robustness_masks(sel) or ())]
            # dots, then hatches and crosses (layers 1 and 2) when the models' robustness is known
            fig.set_layers([stipple_coords(m, stride=stride, valid=valid) for m in masks])
        self._main.set_title(self._title(scenario, season))

    def scenario_dataset(self) -> xr.Dataset:
        """Trend, p-value and significance of the selected scenario, every season."""
        return self._trends.sel(experiment=[self.store.scenario])
