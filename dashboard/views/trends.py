"""Future trends tab: SSMI Theil–Sen trend maps per season and scenario (Fig. 6–7).

Diverging colours centred on zero, Mann–Kendall significance stippled, and the share of land
drying and wetting beside the map.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import xarray as xr

from dashboard.compute import symmetric_limit
from dashboard.config import (
    MAP_WIDTH,
    SCENARIO_LABELS,
    SEASON_LABELS,
    SIGNIFICANCE,
    SMALL_MAP_WIDTH,
    STIPPLE_MAX_POINTS,
    TREND_CMAP,
)
from dashboard.live import LiveFigure, link_ranges
from dashboard.maps import image_data, map_image
from dashboard.views.base import View, csv_download, netcdf_download

__all__ = [
    "TrendsView",
    "stipple_coords",
    "stipple_points",
    "trend_map",
    "area_fraction_bars",
    "fraction_values",
    "TREND_LABEL",
]

TREND_LABEL = "SSMI trend (per decade)"
DRY, WET = "#a6611a", "#018571"


def stipple_coords(
    p_value: xr.DataArray, *, alpha: float = SIGNIFICANCE, max_points: int = STIPPLE_MAX_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """(lon, lat) of the cells where ``p_value`` (lat, lon) is below ``alpha``.

    Taken on a regular sub-grid of at most about ``max_points`` dots so the map stays readable.
    """
    with np.errstate(invalid="ignore"):
        sig = np.asarray(p_value.transpose("lat", "lon").values < alpha)
    stride = max(1, int(np.ceil(np.sqrt(sig.sum() / max_points)))) if sig.any() else 1
    sub = np.zeros_like(sig)
    sub[::stride, ::stride] = True
    ii, jj = np.nonzero(sig & sub)
    return p_value["lon"].values[jj].astype(float), p_value["lat"].values[ii].astype(float)


def stipple_points(
    p_value: xr.DataArray, *, alpha: float = SIGNIFICANCE, max_points: int = STIPPLE_MAX_POINTS
) -> hv.Points:
    """:func:`stipple_coords` as small dark dots."""
    lon, lat = stipple_coords(p_value, alpha=alpha, max_points=max_points)
    dense = lon.size > max_points / 4
    return hv.Points((lon, lat), kdims=["lon", "lat"], label=f"p < {alpha:g}").opts(
        color="#1a1a1a", size=1.6 if dense else 2.2, alpha=0.55, marker="circle", tools=[]
    )


def trend_map(
    trend: xr.DataArray,
    p_value: xr.DataArray,
    *,
    title: str,
    limit: float,
    width: int = MAP_WIDTH,
    alpha: float = SIGNIFICANCE,
    colorbar: bool = True,
    compact: bool = False,
) -> hv.Overlay:
    """Trend (lat, lon; per decade) on a diverging map centred on zero (±``limit``).

    Stippled where the Mann–Kendall ``p_value`` is below ``alpha``; ``compact``: no axes and a
    toolbar shown on hover.
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
    )
    return (img * stipple_points(p_value, alpha=alpha)).opts(show_legend=False)


def fraction_values(fractions: pd.DataFrame, experiment: str, season: str) -> tuple[float, float]:
    """(drying, wetting) share of land in percent, one scenario and season (area_fractions.csv)."""
    row = fractions[(fractions["experiment"] == experiment) & (fractions["season"] == season)]
    if row.empty:
        return (float("nan"), float("nan"))
    return (100 * float(row["drying"].iloc[0]), 100 * float(row["wetting"].iloc[0]))


def area_fraction_bars(
    fractions: pd.DataFrame, season: str, *, highlight: str | None = None
) -> hv.Overlay:
    """Share of land (percent, p < 0.05) wetting (up) and drying (down) per scenario."""
    sub = fractions[fractions["season"] == season]
    df = pd.DataFrame(
        {
            "scenario": [SCENARIO_LABELS.get(str(e), str(e)) for e in sub["experiment"]],
            "wetting": 100 * sub["wetting"].to_numpy(dtype=float),
            "drying": -100 * sub["drying"].to_numpy(dtype=float),
        }
    )
    ylabel = "% of land (drying < 0 < wetting)"
    style = dict(tools=["hover"], line_color="white", bar_width=0.6)
    wet = hv.Bars(df, "scenario", [("wetting", ylabel)], label="wetting").opts(color=WET, **style)
    dry = hv.Bars(df, "scenario", [("drying", ylabel)], label="drying").opts(color=DRY, **style)
    title = f"{SEASON_LABELS.get(season, season)}: land with a significant trend"
    return (wet * dry * hv.HLine(0).opts(color="#444444", line_width=1)).opts(
        title=title,
        frame_width=290,
        frame_height=190,
        xlabel="",
        ylabel="% of land",
        toolbar="above",
        show_legend=False,
        fontsize={"title": "10pt"},
    )


class TrendsView(View):
    """The selected scenario and season large, all five seasons small, drying/wetting shares."""

    key = "trends"
    title = "Future trends"

    def build(self) -> pn.viewable.Viewable:
        """Main map, land shares, the season maps and exports."""
        store = self.store
        trends = store.trends()
        fractions = store.area_fractions()
        self.limit = symmetric_limit(trends["trend"].values)
        self._trends = trends
        self._main = LiveFigure(self._map(str(store.scenario), str(store.season)))
        self._small = {
            str(season): LiveFigure(self._map(str(store.scenario), str(season), small=True))
            for season in trends["season"].values
        }
        link_ranges(list(self._small.values()))
        store.param.watch(self._refresh, ["scenario", "season"])
        drying = pn.indicators.Number(
            label="Drying",
            format="{value:.1f} %",
            font_size="32pt",
            title_size="12pt",
            default_color=DRY,
        )
        wetting = pn.indicators.Number(
            label="Wetting",
            format="{value:.1f} %",
            font_size="32pt",
            title_size="12pt",
            default_color=WET,
        )

        def update_numbers(*_: object) -> None:
            dry, wet = fraction_values(fractions, str(store.scenario), str(store.season))
            drying.value, wetting.value = dry, wet

        update_numbers()
        store.param.watch(update_numbers, ["scenario", "season"])
        bars = pn.pane.HoloViews(
            pn.bind(lambda season: area_fraction_bars(fractions, season), store.param.season),
            linked_axes=False,
        )
        side = pn.Column(
            pn.pane.Markdown(
                f"**Share of land with a significant trend** (Mann–Kendall p < {SIGNIFICANCE:g}), "
                "selected scenario and season:"
            ),
            pn.Row(drying, wetting),
            bars,
            width=380,
        )
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
                "future period; brown = drying, green = wetting; dots = significant. "
                "Move the **scenario** slider in the sidebar.",
                sizing_mode="stretch_width",
            ),
            pn.Row(self._main.pane, side, sizing_mode="stretch_width"),
            "#### All seasons of the selected scenario (Fig. 7); they pan and zoom together",
            pn.Row(*(fig.pane for fig in self._small.values())),
            downloads,
            sizing_mode="stretch_width",
        )

    def _map(self, scenario: str, season: str, small: bool = False) -> hv.Overlay:
        sel = self._trends.sel(experiment=scenario, season=season)
        if small:
            return trend_map(
                sel["trend"],
                sel["p_value"],
                title=SEASON_LABELS.get(season, season),
                limit=self.limit,
                width=SMALL_MAP_WIDTH,
                colorbar=False,
                compact=True,
            )
        return trend_map(
            sel["trend"], sel["p_value"], title=self._title(scenario, season), limit=self.limit
        )

    @staticmethod
    def _title(scenario: str, season: str) -> str:
        scenario_label = SCENARIO_LABELS.get(scenario, scenario)
        return f"SSMI trend · {scenario_label} · {SEASON_LABELS.get(season, season)}"

    def _refresh(self, *_: object) -> None:
        scenario, season = str(self.store.scenario), str(self.store.season)
        targets = [(self._main, season)] + [(fig, s) for s, fig in self._small.items()]
        for fig, s in targets:
            sel = self._trends.sel(experiment=scenario, season=s)
            fig.set_image(image_data(sel["trend"])[2])
            fig.set_points(*stipple_coords(sel["p_value"]))
        self._main.set_title(self._title(scenario, season))

    def scenario_dataset(self) -> xr.Dataset:
        """Trend and p-value of the selected scenario, every season."""
        return self._trends.sel(experiment=[self.store.scenario])
