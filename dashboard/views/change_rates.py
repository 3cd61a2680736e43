"""Change rates tab: period × time-scale heat maps of the SSM change rate (Fig. 8).

Rates relative to the historical baseline, north and south of 35°N, east of 100°E; the hover
gives the models' 5–95 % range of each rate. Below, where the spread of the projections comes
from (``uncertainty_partition.csv``): stacked shares per region over the projection years.
"""

from __future__ import annotations

import holoviews as hv
import hvplot.pandas  # noqa: F401 - registers .hvplot on DataFrames
import pandas as pd
import panel as pn
from bokeh.models import Rect, Text

from dashboard.compute import order_timescales, symmetric_limit
from dashboard.config import REGION_LABELS, SCENARIO_LABELS, TREND_CMAP
from dashboard.contain import escape_markdown
from dashboard.live import LiveFigure, render
from dashboard.maps import present
from dashboard.views.base import View, csv_download
from smcore.analysis.partition import PARTITION_FRACTIONS

__all__ = ["ChangeRatesView", "change_rate_table", "change_rate_heatmap", "partition_plot"]

RANGE_COLUMNS = ("model_p05", "model_p95")
"""The models' range of a rate (``smcore analyse`` writes them; older files lack them)."""
PARTITION_COLOURS = {"internal_fraction": "#fdb863", "model_fraction": "#5e3c99",
                     "scenario_fraction": "#1b9e77"}
PARTITION_LABELS = {"internal_fraction": "internal variability", "model_fraction": "model",
                    "scenario_fraction": "scenario"}


def _title(experiment: str, region: str) -> str:
    return f"{REGION_LABELS.get(region, region)} · {SCENARIO_LABELS.get(experiment, experiment)}"


def _cell_text(value: float) -> str:
    return f"{value:.1f}"


def change_rate_table(rates: pd.DataFrame, experiment: str, region: str) -> pd.DataFrame:
    """Rows of ``change_rates.csv`` for one scenario and region, with ordered time scales."""
    sub = rates[(rates["experiment"] == experiment) & (rates["region"] == region)].copy()
    sub["timescale"] = sub["timescale"].astype(str)
    sub["period"] = sub["period"].astype(str)
    ranges = [c for c in RANGE_COLUMNS if c in sub.columns]
    return sub[["period", "timescale", "value", *ranges]]


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
        vdims=[hv.Dimension("value", label="Change rate (%)")]
        + [hv.Dimension(c, label=f"models' {c[-3:-1]} % quantile (%)")
           for c in RANGE_COLUMNS if c in sub.columns],
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


def partition_plot(partition: pd.DataFrame, region: str, *, presentation: bool = False) -> hv.Area:
    """Stacked shares (0–1) of internal variability, model and scenario uncertainty over the
    years of one region (Hawkins and Sutton 2009)."""
    sub = partition[partition["region"].astype(str) == region].sort_values("year")
    wide = sub.set_index("year")[list(PARTITION_FRACTIONS)].rename(columns=PARTITION_LABELS)
    plot = wide.hvplot.area(
        stacked=True, ylim=(0, 1), xlabel="Year", ylabel="Share of the variance",
        color=[PARTITION_COLOURS[c] for c in PARTITION_FRACTIONS], line_width=0,
        title=REGION_LABELS.get(region, region.replace("_", " ")), frame_width=260,
        frame_height=150, legend="bottom_right", tools=["hover"], toolbar="above",
    )
    return present(plot, presentation)


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
            r: self._heatmap(str(store.scenario), r) for r in regions
        }
        self.watch(self._refresh, ["scenario"])
        panes = [fig.pane for fig in self._figs.values()]
        ranged = all(c in rates.columns for c in RANGE_COLUMNS)
        return pn.Column(
            pn.pane.Markdown(
                "Change of mean SSM relative to the historical baseline "
                f"({escape_markdown(store.configured_years('baseline'))}), in percent, per period "
                "and time scale. North and south have their own colour ranges, as in Fig. 8."
                + (" Hover a cell for the 5–95 % range of the same rate over the bias-corrected "
                   "models." if ranged else ""),
                sizing_mode="stretch_width",
            ),
            *panes,
            csv_download(
                lambda: rates[rates["experiment"] == store.scenario],
                "change_rates_scenario.csv",
                label="Change rates (CSV)",
            ),
            self._partition_section(),
            sizing_mode="stretch_width",
        )

    def _heatmap(self, scenario: str, region: str) -> LiveFigure:
        """The heat map of ``scenario`` and ``region``, rendered or copied from another
        session's (:class:`dashboard.live.RenderCache`)."""
        presentation = bool(self.store.presentation)
        return LiveFigure(
            lambda: change_rate_heatmap(self._rates, scenario, region,
                                        limit=self._limits[region], presentation=presentation),
            key=self.shared_key("heat map", scenario, region),
        )

    def _partition_section(self) -> pn.viewable.Viewable:
        """Where the spread comes from, per region; a line saying why when it cannot be shown."""
        store = self.store
        try:
            partition = store.uncertainty_partition()
        except Exception as exc:  # noqa: BLE001 - the rest of the tab stands without it
            return pn.pane.Markdown(
                f"*Where the spread comes from: not available ({escape_markdown(str(exc))}).*"
            )
        regions = list(dict.fromkeys(partition["region"].astype(str)))
        presentation = bool(store.presentation)
        plots = [
            pn.pane.Bokeh(render(
                lambda r=r: partition_plot(partition, r, presentation=presentation),
                key=self.shared_key("partition", r),
            ))
            for r in regions
        ]
        return pn.Column(
            "#### Where the spread of the projections comes from",
            pn.pane.Markdown(
                "Shares of the variance of the regional annual mean across the bias-corrected "
                "models and the scenarios (Hawkins and Sutton 2009): **internal variability** "
                "(year-to-year departures from each model's smooth response), **model** "
                "(the models' different responses) and **scenario** (the scenarios' different "
                "multi-model responses).",
                sizing_mode="stretch_width",
            ),
            pn.FlexBox(*plots),
            csv_download(lambda: partition, "uncertainty_partition.csv",
                         label="Uncertainty partition (CSV)"),
            sizing_mode="stretch_width",
        )

    def _refresh(self, *_: object) -> None:
        scenario = str(self.store.scenario)
        for region, fig in self._figs.items():
            sub = change_rate_table(self._rates, scenario, region)
            keys = {"timescale": sub["timescale"].tolist(), "period": sub["period"].tolist()}
            values = sub["value"].to_numpy(dtype=float)
            ranges = {c: sub[c].to_numpy(dtype=float) for c in RANGE_COLUMNS if c in sub.columns}
            fig.set_source(Rect, {**keys, "zvalues": values, "value": [f"{v:g}" for v in values],
                                  **ranges})
            fig.set_source(Text, {**keys, "text": [_cell_text(v) for v in values]})
            fig.set_title(_title(scenario, region))
