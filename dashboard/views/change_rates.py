"""Change rates tab: period × time-scale heat maps of the SSM change rate (Fig. 8).

Rates relative to the historical baseline, north and south of 35°N, east of 100°E.
"""

from __future__ import annotations

import holoviews as hv
import pandas as pd
import panel as pn
from bokeh.models import Rect, Text

from dashboard.compute import order_timescales, symmetric_limit
from dashboard.config import REGION_LABELS, SCENARIO_LABELS, TREND_CMAP
from dashboard.contain import escape_markdown
from dashboard.live import LiveFigure
from dashboard.maps import present
from dashboard.views.base import View, csv_download

__all__ = ["ChangeRatesView", "change_rate_table", "change_rate_heatmap"]


def _title(experiment: str, region: str) -> str:
    return f"{REGION_LABELS.get(region, region)} · {SCENARIO_LABELS.get(experiment, experiment)}"


def _cell_text(value: float) -> str:
    return f"{value:.1f}"


def change_rate_table(rates: pd.DataFrame, experiment: str, region: str) -> pd.DataFrame:
    """Rows of ``change_rates.csv`` for one scenario and region, with ordered time scales."""
    sub = rates[(rates["experiment"] == experiment) & (rates["region"] == region)].copy()
    sub["timescale"] = sub["timescale"].astype(str)
    sub["period"] = sub["period"].astype(str)
    return sub[["period", "timescale", "value"]]


def change_rate_heatmap(
    rates: pd.DataFrame,
    experiment: str,
    region: str,
    *,
    limit: float | None = None,
    presentation: bool = False,
) -> hv.Overlay:
    """Heat map (period × time scale) of the change rate in percent, values in each cell.

    Diverging colours centred on zero (±``limit``, default: the region's largest magnitude).
    """
    sub = change_rate_table(rates, experiment, region)
    if limit is None:
        limit = symmetric_limit(rates.loc[rates["region"] == region, "value"].to_numpy(), q=100)
    xorder = order_timescales(rates["timescale"].astype(str))
    yorder = sorted(rates["period"].astype(str).unique())[::-1]
    heat = hv.HeatMap(
        sub,
        kdims=[
            hv.Dimension("timescale", label="Time scale", values=xorder),
            hv.Dimension("period", label="Period", values=yorder),
        ],
        vdims=[hv.Dimension("value", label="Change rate (%)")],
    )
    heat = heat.opts(
        cmap=TREND_CMAP,
        clim=(-limit, limit),
        colorbar=True,
        tools=["hover"],
        frame_width=640,
        frame_height=40 * max(len(yorder), 1) + 20,
        xrotation=0,
        toolbar="above",
        colorbar_opts={"title": "%"},
        title=_title(experiment, region),
    )
    labels = hv.Labels(
        sub.assign(text=sub["value"].map(_cell_text)), kdims=["timescale", "period"], vdims=["text"]
    ).opts(text_font_size="11pt" if presentation else "8pt", text_color="#202020")
    return present(heat * labels, presentation)


class ChangeRatesView(View):
    """North and south heat maps of the selected scenario, each with its own colour range."""

    key = "change_rates"
    title = "Change rates"
    artifacts = ("change_rates",)

    def build(self) -> pn.viewable.Viewable:
        """North and south heat maps following the scenario."""
        store = self.store
        rates = store.change_rates()
        regions = [r for r in ("north", "south") if r in set(rates["region"].astype(str))]
        regions += sorted(set(rates["region"].astype(str)) - set(regions))
        self._rates = rates
        self._limits = {
            r: symmetric_limit(rates.loc[rates["region"] == r, "value"].to_numpy(), q=100)
            for r in regions
        }
        self._figs = {
            r: LiveFigure(
                change_rate_heatmap(
                    rates,
                    str(store.scenario),
                    r,
                    limit=self._limits[r],
                    presentation=store.presentation,
                )
            )
            for r in regions
        }
        self.watch(self._refresh, ["scenario"])
        panes = [fig.pane for fig in self._figs.values()]
        return pn.Column(
            pn.pane.Markdown(
                "Change of mean SSM relative to the historical baseline "
                f"({escape_markdown(store.configured_years('baseline'))}), in percent, per period "
                "and time scale. North and south have their own colour ranges, as in Fig. 8.",
                sizing_mode="stretch_width",
            ),
            *panes,
            csv_download(
                lambda: rates[rates["experiment"] == store.scenario],
                "change_rates_scenario.csv",
                label="Change rates (CSV)",
            ),
            sizing_mode="stretch_width",
        )

    def _refresh(self, *_: object) -> None:
        scenario = str(self.store.scenario)
        for region, fig in self._figs.items():
            sub = change_rate_table(self._rates, scenario, region)
            keys = {"timescale": sub["timescale"].tolist(), "period": sub["period"].tolist()}
            values = sub["value"].to_numpy(dtype=float)
            fig.set_source(Rect, {**keys, "zvalues": values, "value": [f"{v:g}" for v in values]})
            fig.set_source(Text, {**keys, "text": [_cell_text(v) for v in values]})
            fig.set_title(_title(scenario, region))
