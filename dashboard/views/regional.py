"""Regional series tab: reference, CMIP6_DL and ensemble mean per climate region (Fig. 4).

Each region's series sits beside a small map locating the region.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import xarray as xr

from dashboard.config import REGION_COLORS, REGION_LABELS, SERIES_HEIGHT, SMALL_MAP_WIDTH
from dashboard.live import LiveFigure, render
from dashboard.maps import map_image
from dashboard.projection import DEFAULT_PROJECTION
from dashboard.views.base import View, csv_download
from dashboard.views.explorer import pixel_series_plot

__all__ = ["RegionalView", "region_codes", "region_locator", "regional_series_plot"]


def region_codes(regions: xr.DataArray) -> dict[str, int]:
    """Map region name → integer code from the CF ``flag_values`` / ``flag_meanings`` attributes."""
    values = np.atleast_1d(regions.attrs.get("flag_values", []))
    names = str(regions.attrs.get("flag_meanings", "")).split()
    if len(values) != len(names) or not names:
        raise ValueError("region variable lacks matching flag_values and flag_meanings")
    return {str(n): int(v) for n, v in zip(names, values, strict=True)}


def region_locator(
    regions: xr.DataArray,
    name: str,
    *,
    width: int = SMALL_MAP_WIDTH,
    projection: str = DEFAULT_PROJECTION,
    presentation: bool = False,
) -> hv.Element:
    """Small map: region ``name`` in its colour, the other regions light grey, sea blank.

    A locator, not a field: no colour bar (the row's title names the region).
    """
    code = region_codes(regions)[name]
    raw = regions.values.astype(float)
    valid = np.isfinite(raw) & (raw > 0)
    field = xr.DataArray(
        np.where(valid, np.where(raw == code, 1.0, 0.0), np.nan),
        dims=("lat", "lon"),
        coords={"lat": regions["lat"], "lon": regions["lon"]},
        name="in_region",
    )
    return map_image(
        field,
        title=REGION_LABELS.get(name, name),
        cmap=["#e3e3e3", REGION_COLORS.get(name, "#444")],
        clim=(0, 1),
        clabel="in region",
        width=width,
        colorbar=False,
        compact=True,
        projection=projection,
        presentation=presentation,
    ).opts(tools=[])


def regional_series_plot(series: xr.DataArray, name: str, presentation: bool = False) -> hv.Overlay:
    """Regional-mean series ``ssm(product, time)`` (m3 m-3) of one region as curves."""
    df = series.transpose("time", "product").to_pandas()
    df.columns = [str(c) for c in df.columns]
    order = [c for c in ("reference", "CMIP6_DL", "ensemble_mean") if c in df.columns]
    df = df[order + [c for c in df.columns if c not in order]]
    title = f"{REGION_LABELS.get(name, name)} — regional mean"
    return pixel_series_plot(df, title=title, presentation=presentation).opts(
        height=SERIES_HEIGHT - 40
    )


def _fixed(fig: LiveFigure) -> pn.Column:
    """The locator in a box of its own size.

    Beside a plot whose legend sits above it, Bokeh would otherwise crop the locator.
    """
    frame = fig.figure
    return pn.Column(
        fig.pane, width=(frame.frame_width or 200) + 20, height=(frame.frame_height or 120) + 60
    )


def _series_frame(ds: xr.Dataset) -> pd.DataFrame:
    return ds["ssm"].to_dataframe().reset_index()


class RegionalView(View):
    """One row per climate region: locator map and the three series."""

    key = "regional"
    title = "Regional series"
    artifacts = ("regional_series", "regions")

    def build(self) -> pn.viewable.Viewable:
        """One row per region: locator map and series."""
        store = self.store
        series = store.regional_series()
        regions = store.regions()["region"]
        codes = region_codes(regions)
        rows = []
        for name in [str(r) for r in series["region"].values]:
            plot = pn.pane.Bokeh(
                render(
                    lambda name=name: regional_series_plot(
                        series["ssm"].sel(region=name), name, presentation=store.presentation
                    ),
                    key=self.shared_key("series", name),
                ),
                sizing_mode="stretch_width",
            )
            if name in codes:
                rows.append(
                    pn.Row(
                        _fixed(
                            LiveFigure(
                                lambda name=name: region_locator(
                                    regions,
                                    name,
                                    projection=store.projection,
                                    presentation=store.presentation,
                                ),
                                key=self.shared_key("locator", name),
                            )
                        ),
                        plot,
                        sizing_mode="stretch_width",
                    )
                )
            else:
                rows.append(plot)
        return pn.Column(
            pn.pane.Markdown(
                "Regional means over each climate region (Fig. 4): reference, CMIP6_DL "
                "and the ensemble mean.",
                sizing_mode="stretch_width",
            ),
            *rows,
            csv_download(
                lambda: _series_frame(series), "regional_series.csv", label="Series (CSV)"
            ),
            sizing_mode="stretch_width",
        )
