"""Evaluation tab: metrics (Table 2 and baselines), Taylor diagram (Fig. 5), error maps (Fig. 3).

The MAE and correlation maps of CMIP6_DL and a chosen product pan and zoom together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import xarray as xr
from bokeh.models.widgets.tables import NumberFormatter

from dashboard.compute import product_kind, robust_range
from dashboard.config import CORR_CMAP, ERROR_CMAP, KIND_COLORS, MAP_WIDTH, product_label
from dashboard.contain import escape_markdown
from dashboard.export import BoxExport
from dashboard.live import LiveFigure, link_ranges, render
from dashboard.maps import field_frame, map_image, present
from dashboard.projection import DEFAULT_PROJECTION
from dashboard.stations import StationLayer
from dashboard.views.base import View, csv_download, netcdf_download

__all__ = [
    "EvaluationView", "metrics_table", "taylor_diagram", "metric_map", "metric_maps",
    "METRIC_LABELS",
]

METRIC_LABELS = {
    "mae": ("MAE (m³ m⁻³)", ERROR_CMAP),
    "r": ("Correlation r", CORR_CMAP),
}
_KIND_ORDER = ["CMIP6_DL", "ensemble mean", "baseline", "ESM", "reference"]
TAYLOR_HELP = (
    "**Reading the diagram.** Distance from the origin is the standard deviation relative to the "
    "reference; the angle is the correlation (rays); dotted green arcs are the centred RMS "
    "difference around the reference star. The closer a point is to the star, the better. "
    "Hover a point for its name."
)


def _with_kind(df: pd.DataFrame, models: Iterable[str]) -> pd.DataFrame:
    models = list(models)
    out = df.copy()
    out.insert(1, "kind", [product_kind(str(p), models) for p in out["product"]])
    return out


def metrics_table(metrics: pd.DataFrame, models: Iterable[str]) -> pn.widgets.Tabulator:
    """The metrics of every product (``metrics.csv``), sortable, with its role (DL, ESM, baseline…).

    Rows are ordered CMIP6_DL, ensemble mean, baselines, then ESMs by MAE; click a header to sort.
    """
    df = _with_kind(metrics, models)
    order = {k: i for i, k in enumerate(_KIND_ORDER)}
    sort_cols = ["_o"] + (["MAE"] if "MAE" in df.columns else [])
    df = (
        df.assign(_o=df["kind"].map(order))
        .sort_values(sort_cols)
        .drop(columns="_o")
        .reset_index(drop=True)
    )
    numeric = [
        c
        for c in df.columns
        if c not in ("product", "kind") and pd.api.types.is_numeric_dtype(df[c])
    ]
    return pn.widgets.Tabulator(
        df,
        show_index=False,
        disabled=True,
        sortable=True,
        layout="fit_data_table",
        formatters={c: NumberFormatter(format="0.0000") for c in numeric},
        frozen_columns=["product"],
        height=min(40 + 31 * len(df), 430),
        sizing_mode="stretch_width",
        header_filters=False,
        selectable=False,
    )


def _arc(
    radius: float,
    theta0: float,
    theta1: float,
    centre: tuple[float, float] = (0.0, 0.0),
    n: int = 90,
) -> np.ndarray:
    t = np.linspace(theta0, theta1, n)
    return np.column_stack([centre[0] + radius * np.cos(t), centre[1] + radius * np.sin(t)])


def taylor_diagram(taylor: pd.DataFrame, models: Iterable[str], *, width: int = 460) -> hv.Overlay:
    """Normalised Taylor diagram: radius = std / std_ref, angle = arccos(r), arcs = centred RMS.

    ``taylor`` has columns ``product, std_norm, corr, crmsd_norm`` (``taylor.csv``); the
    reference sits at (1, 0). Hover shows each product's name and statistics.
    """
    df = _with_kind(taylor, models)
    corr = df["corr"].clip(-1, 1).to_numpy(dtype=float)
    std = df["std_norm"].to_numpy(dtype=float)
    theta = np.arccos(corr)
    df = df.assign(
        x=std * np.cos(theta),
        y=std * np.sin(theta),
        label=[product_label(p) for p in df["product"]],
    )
    smax = float(max(1.5, np.ceil(np.nanmax(std) * 1.1 * 4) / 4)) if np.isfinite(std).any() else 1.5
    tmax = np.pi if (corr < 0).any() else np.pi / 2
    grid = []
    # standard-deviation arcs (the outer one is the frame)
    for r in np.arange(0.5, smax + 1e-9, 0.5):
        grid.append(_arc(r, 0, tmax))
    grid.append(_arc(smax, 0, tmax))
    # correlation rays
    ticks = [0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.99] + (
        [-0.2, -0.4, -0.6, -0.8] if tmax > np.pi / 2 else []
    )
    for c in ticks:
        a = np.arccos(c)
        grid.append(np.array([[0, 0], [smax * np.cos(a), smax * np.sin(a)]]))
    grid.append(
        np.array([[0, 0], [smax, 0]]) if tmax <= np.pi / 2 else np.array([[-smax, 0], [smax, 0]])
    )
    grid.append(np.array([[0, 0], [0, smax]]))
    rays_text = hv.Labels(
        [
            (1.06 * smax * np.cos(np.arccos(c)), 1.06 * smax * np.sin(np.arccos(c)), f"{c:g}")
            for c in ticks
        ],
        kdims=["x", "y"],
        vdims=["text"],
    ).opts(text_font_size="8pt", text_color="#555555")
    # centred-RMS arcs around the reference, kept inside the frame
    crms = []
    crms_text = []
    for r in np.arange(0.25, smax + 1e-9, 0.25):
        pts = _arc(r, 0, np.pi, centre=(1.0, 0.0), n=120)
        inside = np.hypot(pts[:, 0], pts[:, 1]) <= smax
        if (np.arctan2(pts[:, 1], pts[:, 0]) > tmax).any():
            inside &= np.arctan2(pts[:, 1], pts[:, 0]) <= tmax
        pts = np.where(inside[:, None], pts, np.nan)
        if np.isfinite(pts).any():
            crms.append(pts)
            k = int(np.nanargmax(np.where(inside, pts[:, 1], np.nan)) * 0.6)
            if inside[k]:
                crms_text.append((pts[k, 0], pts[k, 1], f"{r:g}"))
    frame = hv.Path(grid, kdims=["x", "y"]).opts(color="#bbbbbb", line_width=0.8)
    crms_paths = hv.Path(crms, kdims=["x", "y"]).opts(
        color="#4daf4a", line_dash="dotted", line_width=1
    )
    crms_labels = hv.Labels(crms_text, kdims=["x", "y"], vdims=["text"]).opts(
        text_font_size="7pt", text_color="#4daf4a"
    )
    vdims = ["product", "label", "kind", "std_norm", "corr", "crmsd_norm"]
    points = []
    for kind in _KIND_ORDER:
        sub = df[df["kind"] == kind]
        if sub.empty:
            continue
        size = (
            20
            if kind == "reference"
            else 14
            if kind == "CMIP6_DL"
            else 11
            if kind == "ensemble mean"
            else 8
        )
        marker = "star" if kind == "reference" else "circle"
        points.append(
            hv.Points(sub, kdims=["x", "y"], vdims=vdims, label=kind).opts(
                color=KIND_COLORS[kind],
                size=size,
                marker=marker,
                line_color="white",
                tools=["hover"],
                hover_tooltips=[
                    ("product", "@label"),
                    ("σ / σ_ref", "@std_norm{0.000}"),
                    ("r", "@corr{0.000}"),
                    ("centred RMS", "@crmsd_norm{0.000}"),
                ],
            )
        )
    lo = -smax * 1.12 if tmax > np.pi / 2 else -0.05 * smax
    return hv.Overlay([frame, crms_paths, crms_labels, rays_text, *points]).opts(
        title="Normalised Taylor diagram (test period)",
        frame_width=width,
        data_aspect=1,
        xlim=(lo, smax * 1.12),
        ylim=(-0.05 * smax, smax * 1.12),
        xlabel="σ / σ_ref",
        ylabel="σ / σ_ref",
        legend_position="top_right",
        show_grid=False,
        toolbar="above",
    )


def metric_map(
    maps: xr.Dataset,
    variable: str,
    product: str,
    *,
    clim: tuple[float, float],
    width: int = MAP_WIDTH,
    projection: str = DEFAULT_PROJECTION,
    presentation: bool = False,
) -> hv.Element:
    """The map of ``variable`` (``mae`` or ``r``) for one ``product``, coloured over ``clim``,
    with a colour bar in the variable's units."""
    label, cmap = METRIC_LABELS.get(variable, (variable, ERROR_CMAP))
    return map_image(
        maps[variable].sel(product=product).rename(variable),
        title=f"{label.split(' (')[0]} · {product_label(product)}",
        cmap=cmap,
        clim=clim,
        clabel=label,
        width=width,
        projection=projection,
        presentation=presentation,
    )


def metric_maps(
    maps: xr.Dataset,
    variable: str,
    products: Sequence[str],
    *,
    clim: tuple[float, float] | None = None,
    width: int = MAP_WIDTH,
    projection: str = DEFAULT_PROJECTION,
    presentation: bool = False,
) -> hv.Layout:
    """Side-by-side maps of ``variable`` (``mae`` or ``r``) for ``products``.

    One colour range for all, a colour bar with units on each; in a Layout they pan and zoom
    together.
    """
    if clim is None:
        clim = _limits(maps.sel(product=list(products)), variable)
    panels = [
        metric_map(maps, variable, p, clim=clim, width=width, projection=projection,
                   presentation=presentation)
        for p in products
    ]
    layout = hv.Layout(panels).opts(shared_axes=True).cols(len(panels))
    return layout.opts(toolbar=None) if presentation else layout


class EvaluationView(View):
    """Table 2 (sortable), the Taylor diagram and the error maps of the test period."""

    key = "evaluation"
    title = "Evaluation"
    artifacts = ("metrics", "taylor", "maps", "stations", "stations_series")

    def build(self) -> pn.viewable.Viewable:
        """Table, Taylor diagram and error maps of the test period."""
        store = self.store
        models = store.channels
        metrics = store.metrics()
        taylor = store.taylor()
        maps = store.maps()
        names = [str(p) for p in maps["product"].values]
        first = "CMIP6_DL" if "CMIP6_DL" in names else names[0]
        others = [p for p in names if p != first] or [first]
        choice = pn.widgets.Select(
            label="Maps: compare CMIP6_DL with",
            options={product_label(p): p for p in others},
            value="ensemble_mean" if "ensemble_mean" in others else others[0],
            width=300,
        )
        limits = {v: _limits(maps, v) for v in ("mae", "r") if v in maps}
        # ISMN stations on the maps (with evaluation/stations.nc); the shown box's export
        stations = StationLayer(store.root, contained=self.contained,
                                presentation=store.presentation)
        years = [int(y) for y in str(store.configured_years("test")).split("-") if y.isdigit()]
        box = BoxExport(store.root, experiment=lambda: "historical",
                        period=lambda: (years[0], years[1]) if len(years) == 2 else None)

        def maps_rows(other: str) -> pn.Column:
            frame = field_frame(maps[next(iter(limits))].sel(product=first), store.projection)
            box.reset()
            products = [first, other]
            style = dict(projection=store.projection, presentation=store.presentation)
            figures = {
                (v, i): LiveFigure(
                    lambda v=v, p=p: metric_map(maps, v, p, clim=limits[v], **style),
                    frame,
                    key=self.shared_key("metric map", v, p),
                )
                for v in limits
                for i, p in enumerate(products)
            }
            link_ranges(list(figures.values()))  # the maps zoom together
            for fig in figures.values():
                stations.attach(fig.figure, frame)
                box.track(fig.figure, frame)
            return pn.Column(*(
                pn.Row(*(figures[v, i].pane for i in range(len(products)))) for v in limits
            ))

        period = maps.attrs.get("test_period") or store.configured_years("test")
        downloads = pn.Row(
            csv_download(lambda: metrics, "metrics.csv", label="Metrics (CSV)"),
            csv_download(lambda: taylor, "taylor.csv", label="Taylor (CSV)"),
            netcdf_download(
                lambda: maps, "evaluation_maps.nc", "smcore evaluation maps", label="Maps (NetCDF)"
            ),
            box.button,
        )
        return pn.Column(
            pn.pane.Markdown(
                f"Test period **{escape_markdown(period)}**, against the reference. Sort the "
                "table by clicking a column header; hover the diagram for names.",
                sizing_mode="stretch_width",
            ),
            "#### Metrics (Table 2 and baselines)",
            metrics_table(metrics, models),
            pn.Row(
                pn.pane.Bokeh(render(
                    lambda: present(taylor_diagram(taylor, models), store.presentation),
                    key=self.shared_key("taylor"),
                )),
                pn.pane.Markdown(TAYLOR_HELP, width=300),
                sizing_mode="stretch_width",
            ),
            "#### Mean absolute error (Fig. 3) and per-pixel correlation; the maps zoom together",
            choice,
            # no loading indicator: Panel would link the choice to it, and any link on a page
            # makes every change of its layout walk all its models (dashboard.widgets)
            pn.param.ParamFunction(pn.bind(maps_rows, choice), loading_indicator=False),
            stations.panel(),
            downloads,
            sizing_mode="stretch_width",
        )


def _limits(maps: xr.Dataset, variable: str) -> tuple[float, float]:
    """One colour range for every product's map of ``variable`` (MAE from 0, r up to 1)."""
    values = maps[variable].values
    lo, hi = robust_range(values, q=1.0)
    if variable == "r":
        return (min(lo, 0.0) if lo < 0 else lo, 1.0)
    return (0.0, hi)
