"""Every view function returns a HoloViews/Panel object holding the expected data; every tab
builds, reacts to the shared controls, and explains a missing artifact."""

from __future__ import annotations

import os
import time

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import pytest
import xarray as xr
from bokeh.document import Document
from bokeh.models import Axis, MultiLine, Rect
from bokeh.models import Image as BkImage

from dashboard import geo
from dashboard.compute import month_labels, order_timescales, symmetric_limit, upsample
from dashboard.config import MAP_WIDTH, SMALL_MAP_WIDTH, STIPPLE_MAX_COVER
from dashboard.datastore import DataStore
from dashboard.live import RENDERS, LiveFigure, RenderCache
from dashboard.maps import OUTLINE_PREFIX, map_image
from dashboard.views import TABS
from dashboard.views.base import csv_download, dataset_bytes
from dashboard.views.change_rates import ChangeRatesView, change_rate_heatmap, change_rate_table
from dashboard.views.evaluation import EvaluationView, metric_maps, metrics_table, taylor_diagram
from dashboard.views.explorer import (
    SLOTS,
    ExplorerView,
    marker_points,
    month_map,
    pixel_series_plot,
    series_slots,
    ssm_limits,
)
from dashboard.views.model import ModelView, loss_curves, summary_markdown
from dashboard.views.regional import (
    RegionalView,
    region_codes,
    region_locator,
    regional_series_plot,
)
from dashboard.views.trends import (
    TrendsView,
    area_fraction_bars,
    fraction_values,
    stipple_coords,
    trend_map,
)
from tests.factories.dashboard import REGIONS, study_grid_field

hv.extension("bokeh", logo=False)

LINES = {
    "coastline": [np.array([[120.0, 20.0], [122.0, 30.0], [125.0, 40.0]])],
    "china_provinces": [np.array([[100.0, 30.0], [105.0, 30.0], [105.0, 35.0], [100.0, 30.0]])],
    "china_boundary": [np.array([[80.0, 30.0], [120.0, 30.0], [120.0, 45.0], [80.0, 30.0]])],
    "tibetan_plateau": [
        np.array([[80.0, 30.0], [95.0, 32.0], [90.0, 36.0]]),
        np.array([[300.0, 80.0], [301.0, 81.0]]),
    ],  # outside the domain: dropped
}


@pytest.fixture(autouse=True)
def _outlines(monkeypatch, fresh_panel):
    """Deterministic outlines instead of the real assets (then caches and Panel state reset)."""
    import smcore.assets

    monkeypatch.setattr(smcore.assets, "boundary_lines", lambda name: LINES[name])
    geo.load_outlines.clear()
    RENDERS.clear()
    yield
    geo.load_outlines.clear()


@pytest.fixture
def store(dashboard_workdir):
    return DataStore(dashboard_workdir.root)


def _render(viewable) -> Document:
    doc = Document()
    viewable.get_root(doc)
    return doc


# -- shared building blocks ------------------------------------------------------------
def test_compute_helpers():
    assert order_timescales(["annual", "Dec", "JJA", "Jan", "MAM", "x", "DJF", "SON", "Feb"]) == [
        "annual",
        "MAM",
        "JJA",
        "SON",
        "DJF",
        "Jan",
        "Feb",
        "Dec",
        "x",
    ]
    assert symmetric_limit(np.array([-3.0, 1.0, np.nan]), q=100) == 3.0
    assert month_labels(pd.date_range("2000-01-16", periods=2, freq="MS")) == ["2000-02", "2000-03"]
    coarse = xr.DataArray(
        np.arange(6.0).reshape(2, 3),
        dims=("clat", "clon"),
        coords={"clat": [0.0, 2.0], "clon": [0.0, 2.0, 4.0]},
    )
    fine = upsample(
        coarse,
        np.array([0.0, 1.0, 3.0]),
        np.array([1.0, 5.0]),
        mask=np.array([[1, 1], [1, 0], [1, 1]]),
    )
    np.testing.assert_allclose(
        fine.values, [[0.5, 2.0], [2.0, np.nan], [3.5, 5.0]]
    )  # clamped edges


def test_month_labels_are_made_once_per_time_axis():
    from dashboard import compute

    compute._labels_of.cache_clear()
    time = pd.date_range("1950-01-16", periods=1032, freq="MS").values
    first = month_labels(time)
    assert first[0] == "1950-02" and first[-1] == "2036-01" and len(first) == 1032
    first.append("a caller's change")  # reaches no later caller
    assert month_labels(time.copy()) == first[:-1]
    assert compute._labels_of.cache_info().misses == 1
    assert month_labels(time[:3].astype("datetime64[s]")) == ["1950-02", "1950-03", "1950-04"]


def test_merge_lines_clips_and_separates():
    merged = geo.merge_lines(LINES["tibetan_plateau"], extent=(70, 140, 15, 55))
    assert merged.shape == (3, 2) and np.isfinite(merged).all()
    both = geo.merge_lines(LINES["coastline"] + LINES["china_boundary"], extent=(70, 140, 15, 35))
    # a vertex clipped in each line (lat 40 and 45 > 35) and one separator between the lines
    assert np.isnan(both).any(axis=1).tolist() == [
        False,
        False,
        True,
        True,
        False,
        False,
        True,
        False,
    ]


def test_outlines_report_missing_assets(monkeypatch):
    import smcore.assets

    def broken(name):
        raise FileNotFoundError(f"{name}.geojson missing")

    monkeypatch.setattr(smcore.assets, "boundary_lines", broken)
    geo.load_outlines.clear()
    outlines = geo.load_outlines((70.0, 140.0, 15.0, 55.0))
    assert outlines.arrays == {} and "china_boundary.geojson missing" in outlines.status()


def test_map_image_draws_outlines_once():
    field = xr.DataArray(
        np.random.default_rng(0).random((6, 8)),
        dims=("lat", "lon"),
        name="ssm",
        coords={"lat": np.linspace(20, 45, 6), "lon": np.linspace(75, 130, 8)},
    )
    img = map_image(field, title="t", cmap="viridis", clim=(0, 1), clabel="SSM")
    assert isinstance(img, hv.Image)
    np.testing.assert_allclose(img.dimension_values(2, flat=False), field.values)
    fig = hv.render(img)
    outlines = [r for r in fig.renderers if isinstance(r.glyph, MultiLine)]
    # one glyph, one row per layer, bottom to top
    assert [r.name for r in outlines] == [OUTLINE_PREFIX + "layers"]
    assert list(outlines[0].data_source.data["layer"]) == list(geo.OUTLINES)


def test_large_maps_are_rasterized(monkeypatch):
    monkeypatch.setattr("dashboard.maps.RASTERIZE_ABOVE", 10)
    field = xr.DataArray(
        np.ones((6, 8)),
        dims=("lat", "lon"),
        name="ssm",
        coords={"lat": np.arange(6.0), "lon": np.arange(8.0)},
    )
    out = map_image(field, title="t", cmap="viridis", clim=(0, 1), clabel="SSM")
    assert isinstance(out, hv.DynamicMap)


def test_live_figure_updates_in_place():
    field = xr.DataArray(
        np.arange(12.0).reshape(3, 4),
        dims=("lat", "lon"),
        name="v",
        coords={"lat": [1.0, 2.0, 3.0], "lon": [1.0, 2.0, 3.0, 4.0]},
    )
    live = LiveFigure(
        map_image(field, title="a", cmap="viridis", clim=(0, 12), clabel="v", outlines=False)
        * marker_points((2.0, 2.0))
    )
    np.testing.assert_array_equal(live.image, field.values)
    live.set_image(field.values * 2)
    np.testing.assert_array_equal(live.image, field.values * 2)
    live.set_points(np.array([3.0]), np.array([1.0]))
    assert [list(a) for a in live.points] == [[3.0], [1.0]]
    live.set_title("b")
    assert live.figure.title.text == "b"
    with pytest.raises(ValueError, match="shape"):
        live.set_image(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="columns"):
        live.set_source(BkImage, {"x": [1]})


def test_exports_are_readable(tmp_path):
    ds = xr.Dataset({"v": (("x",), np.arange(3.0), {"units": "m3 m-3"})}, coords={"x": [1, 2, 3]})
    path = tmp_path / "x.nc"
    path.write_bytes(dataset_bytes(ds, "a test"))
    back = xr.open_dataset(path).load()
    assert back.attrs["title"] == "a test" and back.attrs["Conventions"] == "CF-1.8"
    np.testing.assert_array_equal(back["v"].values, [0, 1, 2])
    button = csv_download(lambda: pd.DataFrame({"a": [1, 2]}), "x.csv")
    assert button.callback().read().decode().splitlines() == ["a", "1", "2"]


# -- Explorer ------------------------------------------------------------------------------
def test_explorer_functions(store):
    clim = ssm_limits(xr.DataArray([0.02, 0.31, np.nan]))
    assert clim[0] == 0 and clim[1] == pytest.approx(0.35)
    field = store.product_month("historical", "2003-07")
    img = month_map(field, title="x", clim=(0, 0.4))
    np.testing.assert_allclose(img.dimension_values(2, flat=False), field.values)
    pts = marker_points((100.0, 30.0))
    assert pts.data.iloc[0].tolist() == [100.0, 30.0]
    df = store.pixel_series("historical", 110.3, 30.2, "ACCESS-CM2")
    overlay = pixel_series_plot(df)
    assert [c.label for c in overlay] == [
        "Reference (ERA5-Land)",
        "CMIP6_DL (YNet)",
        "Ensemble mean",
        "ACCESS-CM2",
    ]
    np.testing.assert_allclose(overlay.get(1).dimension_values("ssm"), df["CMIP6_DL"].values)
    slots = series_slots(df.drop(columns="reference"))
    assert list(slots.columns) == list(SLOTS) and slots["reference"].isna().all()
    np.testing.assert_allclose(slots["model"].values, df["ACCESS-CM2"].values)


def test_explorer_view_follows_the_controls(store):
    view = ExplorerView(store=store)
    layout = view.__panel__()
    assert isinstance(layout, pn.Column)
    _render(layout)
    np.testing.assert_allclose(
        view._dl.image, store.product_month("historical", store.month).values
    )
    store.month = "2001-01"
    np.testing.assert_allclose(view._dl.image, store.product_month("historical", "2001-01").values)
    assert "2001-01" in view._dl.figure.title.text
    store.product = "CAS-ESM2-0"
    dl = store.product_month("historical", "2001-01")
    np.testing.assert_allclose(
        view._other.image, store.comparison_month("historical", "2001-01", "CAS-ESM2-0", dl).values
    )
    # a click on a map moves the marker and redraws the series of that cell
    view._on_tap(100.2, 35.1)
    lon, lat = view._dl.points
    assert (lon[0], lat[0]) == (100.2, 35.1)
    expected = store.pixel_series("historical", 100.2, 35.1, "CAS-ESM2-0")
    line = view._series.lines[SLOTS.index("CMIP6_DL")]
    np.testing.assert_allclose(line.data_source.data["ssm"], expected["CMIP6_DL"].values)
    assert view._series.lines[3].visible
    # the scenario period: the maps and the series switch to the selected SSP
    store.period = "future"
    store.scenario = "ssp585"
    np.testing.assert_allclose(view._dl.image, store.product_month("ssp585", store.month).values)
    assert not view._series.lines[SLOTS.index("reference")].visible
    assert "SSP5-8.5" in view._series.figure.title.text
    assert "ssm" in view.month_dataset().data_vars or "CMIP6_DL" in view.month_dataset().data_vars
    assert list(view.series_frame().columns) == [
        "CMIP6_DL", "CMIP6_DL_q05", "CMIP6_DL_q95", "ensemble_mean", "CAS-ESM2-0",
    ]


def test_explorer_draws_the_interval_band_and_the_uncertainty_map(store, dashboard_workdir):
    """A product with ssm_sd: the cell's series gets CMIP6_DL's 90 % interval as a band
    (ssm ∓ 1.645 ssm_sd, read back from the file here), and a third map shows the interval's
    width; both follow the month and the clicked cell."""
    view = ExplorerView(store=store)
    _render(view.__panel__())
    assert [len(row.objects) for row in view._maps_row.objects] == [2, 1] and view._unc is not None
    assert "90 % interval" in view._caption.object
    store.month = "2001-01"
    with xr.open_dataset(dashboard_workdir.product("historical")) as ds:
        ssm, sd = ds["ssm"], ds["ssm_sd"]
        t = month_labels(ds["time"].values).index("2001-01")
        np.testing.assert_allclose(view._unc.image, 2 * 1.6448536 * sd.values[t], rtol=1e-5)
        assert "interval width" in view._unc.figure.title.text and "2001-01" in view._unc.figure.title.text
        view._on_tap(100.2, 35.1)
        i, j = store.pixel_index("historical", 100.2, 35.1)
        band = view._series.band.data_source.data
        assert view._series.band.visible
        np.testing.assert_allclose(band["lower"], ssm.values[:, i, j] - 1.6448536 * sd.values[:, i, j],
                                   atol=1e-6)
        np.testing.assert_allclose(band["upper"], ssm.values[:, i, j] + 1.6448536 * sd.values[:, i, j],
                                   atol=1e-6)
    # the y range holds the band, and the legend names it
    assert view._series.figure.y_range.end >= np.nanmax(band["upper"])
    labels = [item.label["value"] for item in view._series.legend_items if item.visible]
    assert "CMIP6_DL 90 % interval" in labels
    assert "CMIP6_DL_interval_width" in view.month_dataset().data_vars


def test_explorer_without_uncertainty_draws_two_maps_and_no_band(tmp_path):
    """A product without ssm_sd (the mse head): no third map, the band stays hidden."""
    from tests.factories.dashboard import make_workdir

    wd = make_workdir(tmp_path / "wd", uncertainty=False)
    store = DataStore(wd.root)
    view = ExplorerView(store=store)
    _render(view.__panel__())
    assert [len(row.objects) for row in view._maps_row.objects] == [2] and view._unc is None
    view._on_tap(100.2, 35.1)
    assert not view._series.band.visible
    assert "CMIP6_DL_q05" not in store.cell_series.columns
    assert "interval" not in view._caption.object


def test_derived_values_are_read_once_per_change(store, monkeypatch):
    # two explorers bound to one store: each change reads the maps and the series once
    views = [ExplorerView(store=store), ExplorerView(store=store)]
    for view in views:
        _render(view.__panel__())
    reads: list[str] = []

    def counted(name, read):
        def wrapper(*args):
            reads.append(name)
            return read(*args)

        return wrapper

    monkeypatch.setattr(store, "_month_maps", counted("maps", store._month_maps))
    monkeypatch.setattr(store, "pixel_series", counted("series", store.pixel_series))
    store.month = "2001-01"
    assert reads == ["maps"]
    reads.clear()
    store.pixel = (100.2, 35.1)
    assert reads == ["series"]
    reads.clear()
    store.period = "future"  # a new experiment and its months: one read of each
    assert sorted(reads) == ["maps", "series"] and store.explorer_experiment == "ssp245"
    reads.clear()
    store.period = "historical"
    assert sorted(reads) == ["maps", "series"]
    reads.clear()
    store.scenario = "ssp585"  # not shown by the explorer in the historical period
    assert reads == []
    for view in views:
        np.testing.assert_array_equal(view._dl.image, store.month_maps.dl.values)
        assert view._series.figure.title.text.startswith(
            f"Cell {store.cell_series.attrs['lat']:.2f}°N {store.cell_series.attrs['lon']:.2f}°E"
        )


# -- Evaluation ------------------------------------------------------------------------------
def test_metrics_table(store):
    table = metrics_table(store.metrics(), store.channels)
    assert isinstance(table, pn.widgets.Tabulator) and table.sortable
    df = table.value
    assert df["product"].iloc[0] == "CMIP6_DL" and df["kind"].iloc[0] == "CMIP6_DL"
    assert list(df["kind"].iloc[1:6]) == ["ensemble mean"] + ["baseline"] * 4
    assert set(df.loc[df["kind"] == "ESM", "product"]) == set(store.channels)
    assert len(df) == len(store.metrics())


def test_taylor_diagram_geometry(store):
    taylor = store.taylor()
    diagram = taylor_diagram(taylor, store.channels)
    points = [el for el in diagram if isinstance(el, hv.Points)]
    data = pd.concat([p.data for p in points])
    assert set(data["product"]) == set(taylor["product"])
    for _, row in data.iterrows():
        assert row["x"] == pytest.approx(row["std_norm"] * row["corr"])
        assert row["y"] == pytest.approx(row["std_norm"] * np.sqrt(1 - row["corr"] ** 2))
    ref = data[data["product"] == "reference"].iloc[0]
    assert (ref["x"], ref["y"]) == pytest.approx((1.0, 0.0))
    assert {"product", "label", "kind", "crmsd_norm"} <= {d.name for d in points[0].vdims}


def test_metric_maps_share_one_colour_range(store):
    maps = store.maps()
    layout = metric_maps(maps, "mae", ["CMIP6_DL", "ensemble_mean"])
    images = list(layout)
    assert len(images) == 2
    clims = {
        hv.Store.lookup_options("bokeh", im, "plot").kwargs.get("clim")
        or im.opts.get().kwargs["clim"]
        for im in images
    }
    assert len(clims) == 1 and next(iter(clims))[0] == 0.0
    np.testing.assert_allclose(
        images[1].dimension_values(2, flat=False), maps["mae"].sel(product="ensemble_mean").values
    )


def test_evaluation_view_builds(store):
    layout = EvaluationView(store=store).__panel__()
    _render(layout)
    selects = layout.select(pn.widgets.Select)
    assert selects and selects[0].value == "ensemble_mean"
    assert "ridge_stacking" in selects[0].options.values()
    selects[0].value = "ridge_stacking"  # the maps follow


# -- Regional ------------------------------------------------------------------------------
def test_region_functions(store):
    regions = store.regions()["region"]
    codes = region_codes(regions)
    assert codes == {"outside_study_land": 0, **{r: k + 1 for k, r in enumerate(REGIONS)}}
    img = region_locator(regions, "humid")
    values = img.dimension_values(2, flat=False)
    raw = regions.values
    assert np.all(values[raw == 3] == 1) and np.all(values[(raw > 0) & (raw != 3)] == 0)
    assert np.isnan(values[raw == 0]).all()
    series = store.regional_series()["ssm"].sel(region="arid")
    overlay = regional_series_plot(series, "arid")
    assert len(overlay) == 3
    np.testing.assert_allclose(
        overlay.get(0).dimension_values("ssm"), series.sel(product="reference").values
    )


def test_regional_view_builds(store):
    view = RegionalView(store=store)
    _render(view.__panel__())
    rows = [o for o in view.content.objects if isinstance(o, pn.Row)]
    assert len(rows) == 4


# -- Trends --------------------------------------------------------------------------------
def test_trend_functions(store):
    sel = store.trends().sel(experiment="ssp245", season="JJA")
    lon, lat = stipple_coords(sel["p_value"], max_points=10_000)
    p = sel["p_value"].sel(lat=xr.DataArray(lat), lon=xr.DataArray(lon), method="nearest").values
    assert lon.size == int((sel["p_value"].values < 0.05).sum()) and (p < 0.05).all()
    few = stipple_coords(sel["p_value"], max_points=20)
    assert 0 < few[0].size <= 60
    overlay = trend_map(sel["trend"], sel["p_value"], title="t", limit=0.1)
    img = overlay.get(0)
    assert img.opts.get().kwargs["clim"] == (-0.1, 0.1)
    assert img.opts.get().kwargs["cmap"] == "BrBG"
    fractions = store.area_fractions()
    dry, wet = fraction_values(fractions, "ssp245", "JJA")
    row = fractions[(fractions.experiment == "ssp245") & (fractions.season == "JJA")].iloc[0]
    assert (dry, wet) == pytest.approx((100 * row.drying, 100 * row.wetting))
    bars = area_fraction_bars(fractions, "JJA")
    table = bars.dframe()
    assert {"wetting", "drying"} <= set(table["Variable"])
    assert (table.loc[table["Variable"] == "drying", "value"] <= 0).all()
    assert (table.loc[table["Variable"] == "wetting", "value"] >= 0).all()


def test_trends_view_follows_scenario_and_season(store):
    view = TrendsView(store=store)
    _render(view.__panel__())
    store.scenario = "ssp585"
    store.season = "DJF"
    want = store.trends()["trend"].sel(experiment="ssp585", season="DJF").values
    np.testing.assert_allclose(view._main.image, want)
    np.testing.assert_allclose(
        view._small["MAM"].image,
        store.trends()["trend"].sel(experiment="ssp585", season="MAM").values,
    )
    assert "SSP5-8.5" in view._main.figure.title.text
    numbers = view.__panel__().select(pn.indicators.Number)
    dry, wet = fraction_values(store.area_fractions(), "ssp585", "DJF")
    assert [n.value for n in numbers] == pytest.approx([dry, wet])
    assert set(view.scenario_dataset()["experiment"].values) == {"ssp585"}
    # the models' robustness follows too: hatches (layer 1) and crosses (layer 2)
    from dashboard.views.trends import robustness_masks, stipple_coords, stipple_stride

    sel = store.trends().sel(experiment="ssp585", season="DJF")
    stride = stipple_stride(view._frame, MAP_WIDTH)
    for layer, mask in enumerate(robustness_masks(sel), start=1):
        want_x, _ = stipple_coords(mask, stride=stride, valid=sel["trend"].notnull())
        got_x, _ = view._main.points_at(layer)
        assert len(got_x) == len(want_x) > 0
        np.testing.assert_allclose(np.sort(got_x), np.sort(want_x))


# -- Change rates --------------------------------------------------------------------------
def test_change_rate_functions(store):
    rates = store.change_rates()
    table = change_rate_table(rates, "ssp126", "north")
    assert len(table) == 3 * 17
    overlay = change_rate_heatmap(rates, "ssp126", "north")
    heat = overlay.get(0)
    assert heat.kdims[0].values[:5] == ["annual", "MAM", "JJA", "SON", "DJF"]
    limit = np.abs(rates.loc[rates.region == "north", "value"]).max()
    assert heat.opts.get().kwargs["clim"] == pytest.approx((-limit, limit))
    assert sorted(heat.dimension_values("value")) == sorted(table["value"])


def test_change_rates_view_follows_scenario(store):
    view = ChangeRatesView(store=store)
    _render(view.__panel__())
    store.scenario = "ssp370"
    rates = store.change_rates()
    for region, fig in view._figs.items():
        data = fig._renderer(Rect).data_source.data
        want = change_rate_table(rates, "ssp370", region)
        keys = zip(data["timescale"], data["period"], strict=True)
        got = dict(zip(keys, data["zvalues"], strict=True))
        assert got == {(r.timescale, r.period): r.value for r in want.itertuples()}
        # the models' range rides along for the hover, following the scenario too
        lows = dict(zip(zip(data["timescale"], data["period"], strict=True), data["model_p05"],
                        strict=True))
        assert lows == {(r.timescale, r.period): r.model_p05 for r in want.itertuples()}


def test_change_rates_view_shows_the_uncertainty_partition(store, tmp_path):
    from dashboard.views.change_rates import partition_plot

    partition = store.uncertainty_partition()
    plot = partition_plot(partition, "north")
    areas = list(plot)
    assert [a.vdims[0].name for a in areas] == ["internal variability", "model", "scenario"]
    top = areas[-1].dimension_values(1)  # the upper edge of the last stacked area
    assert np.allclose(top, 1.0)
    north = partition[partition.region == "north"].sort_values("year")
    np.testing.assert_allclose(areas[0].dimension_values(1), north["internal_fraction"])
    view = ChangeRatesView(store=store)
    _render(view.__panel__())
    section = view._partition_section()
    assert "Where the spread" in section[0].object
    assert len(section[2].objects) == partition["region"].nunique()
    # without the file the rest of the tab stands, with a line saying why
    store.root.joinpath("analysis", "uncertainty_partition.csv").rename(tmp_path / "moved.csv")
    try:
        from dashboard import loaders

        loaders.clear_caches()
        assert "not available" in view._partition_section().object
    finally:
        (tmp_path / "moved.csv").rename(store.root / "analysis" / "uncertainty_partition.csv")


# -- Model ---------------------------------------------------------------------------------
def test_model_functions(store):
    history = store.history()
    overlay = loss_curves(history, best_epoch=12)
    curves = [el for el in overlay if isinstance(el, hv.Curve)]
    assert [c.label for c in curves] == ["Training loss", "Validation loss"]
    np.testing.assert_allclose(curves[1].dimension_values(1), history["val_loss"])
    assert any(isinstance(el, hv.VLine) for el in overlay)
    md = summary_markdown(store.summary(), store.channels, {"X": "no ssp585"})
    assert "1,234,567" in md and "ACCESS-CM2" in md and "X (no ssp585)" in md
    stopped = summary_markdown({**store.summary(), "stopped_early": True}, store.channels)
    assert "| Stopped early | yes |" in stopped and "| Stopped early | no |" in md


def test_model_view_without_summary(tmp_path, dashboard_workdir):
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "history.csv").write_text(
        (dashboard_workdir.root / "training" / "history.csv").read_text()
    )
    view = ModelView(store=DataStore(tmp_path))
    _render(view.__panel__())
    assert not isinstance(view.content, pn.pane.Alert) and not view.missing


# -- every tab, missing artifacts ----------------------------------------------------------
def test_tabs_registry_order():
    assert [t.title for t in TABS] == [
        "Explorer",
        "Evaluation",
        "Regional series",
        "Future trends",
        "Change rates",
        "Model",
    ]


@pytest.mark.parametrize("tab", TABS, ids=lambda t: t.key)
def test_missing_artifacts_explain_what_to_run(tab, tmp_path):
    view = tab(store=DataStore(tmp_path))
    layout = view.content
    assert isinstance(layout, pn.pane.Alert) and view.missing
    assert "Run `smcore" in layout.object and str(tmp_path) in layout.object


def test_the_app_has_every_tab(dashboard_workdir):
    from dashboard.app import App, create_app, workdir_from_args

    app = App(dashboard_workdir.root)
    assert [v.title for v in app.views] == [t.title for t in TABS]
    template = create_app(dashboard_workdir.root)
    tabs = template.main[0]
    assert isinstance(tabs, pn.Tabs) and tabs.dynamic and len(tabs) == len(TABS)
    assert workdir_from_args(["--workdir", "/x/y", "--other"]) == "/x/y"


# -- a page that follows the pipeline -----------------------------------------------------
def _copy_workdir(src, dst, folders):
    import shutil

    for folder in folders:
        shutil.copytree(src / folder, dst / folder)
    return dst


def test_a_tab_fills_in_when_its_files_appear(dashboard_workdir, tmp_path):
    import shutil

    from dashboard.app import App

    root = _copy_workdir(
        dashboard_workdir.root, tmp_path / "w", ("prepared", "training", "product", "analysis")
    )
    app = App(root)
    tabs = app.tabs()
    explorer, evaluation, trends = app.views[0], app.views[1], app.views[3]
    for view in (explorer, evaluation, trends):
        _render(view.__panel__())
    tabs.active = 1
    assert evaluation.missing and "the tab fills in by itself" in evaluation.content.object
    before = explorer.content
    app.tick()  # nothing new
    assert evaluation.missing and explorer.content is before
    shutil.copytree(dashboard_workdir.root / "evaluation", root / "evaluation")
    app.tick()
    assert not evaluation.missing and evaluation.content.select(pn.widgets.Tabulator)
    assert explorer.content is before  # its files did not change
    # a tab not on display is rebuilt when it is shown
    path = root / "analysis" / "area_fractions.csv"
    stamp = path.stat().st_mtime + 5
    os.utime(path, (stamp, stamp))
    app.tick()
    assert trends.stale
    tabs.active = 3
    assert not trends.stale and trends.changed() is False


def test_the_model_tab_grows_while_training(dashboard_workdir, tmp_path, monkeypatch):
    from dashboard.app import App
    from smcore import runstate
    from smcore.progress import StepBar

    root = _copy_workdir(dashboard_workdir.root, tmp_path / "w", ("prepared",))
    history = pd.read_csv(dashboard_workdir.root / "training" / "history.csv")
    monkeypatch.setattr(runstate, "PROGRESS_INTERVAL_S", 0.0)
    runstate.mark_running(root, "train")
    app = App(root)
    tabs = app.tabs()
    tabs.active = 5
    model = app.views[5]
    _render(model.__panel__())
    assert "epoch 1 of 100 under way" in model._progress_pane.object  # no history yet
    # before the first epoch a CPU may measure its precision: the line says so, not "under way"
    with StepBar(total=18, desc="measuring the CPU's precision and micro-batch", unit="timing",
                 disable=True) as probe:
        probe.update(5)
        app.tick()
        assert model._progress_pane.object == (
            "**Training** · before epoch 1 of 100: measuring the CPU's precision and micro-batch "
            "5/18 timings; the curve appears after epoch 1."
        )
    app.tick()
    assert "epoch 1 of 100 under way" in model._progress_pane.object
    (root / "training").mkdir()
    history.iloc[:2].to_csv(root / "training" / "history.csv", index=False)
    app.tick()
    assert not model.missing
    progress = model._progress_pane.object
    # 6 training years of 12 months in 1.5 s per epoch; 98 epochs of 1.5 s left
    assert "epoch 2 of 100 done" in progress and "48.0 months/s" in progress
    assert "about 2.5 min left" in progress
    pane = model._curves
    history.iloc[:3].to_csv(root / "training" / "history.csv", index=False)
    later = (root / "training" / "history.csv").stat().st_mtime + 5
    os.utime(root / "training" / "history.csv", (later, later))
    app.tick()
    assert model._curves is pane  # redrawn in place
    curves = [el for el in pane.object if isinstance(el, hv.Curve)]
    assert (
        len(curves[0].dimension_values(0)) == 3 and "epoch 3 of 100" in model._progress_pane.object
    )
    with StepBar(total=72, desc="epoch 4", unit="month", disable=True) as epoch:
        time.sleep(0.3)  # the file gives seconds to a tenth
        epoch.update(24)
        app.tick()
        assert model._curves is pane  # the line changes in place, the curve stays
        bars = runstate.progress_of(runstate.read(root))
        elapsed = bars[0].elapsed
        line = model._progress_pane.object
        # 24 of 72 months in `elapsed` s; epochs take 1.5 s (history): 2/3 of one, then 96
        assert f"epoch 4 of 100: 24/72 months · {24 / elapsed:.1f} months/s" in line
        assert "about 2.4 min left" in line
    runstate.mark_finished(root, "train")  # stopped early: the run is over
    app.tick()  # the history did not change: nothing to rebuild
    assert (
        model._progress(history.iloc[:3])
        == "Training stopped after epoch 3 of 100 (not running now)."
    )


def test_the_training_line_escapes_what_the_run_state_file_says():
    from dashboard.views.model import training_progress
    from smcore.runstate import Progress

    bar = Progress(desc="<img src=x onerror=alert(1)>", n=1, total=2, unit="timing", elapsed=1.0)
    line = training_progress(None, 5, 600, True, [bar])
    assert line.startswith("**Training** · before epoch 1 of 5: ") and "<img" not in line


def test_a_click_on_the_projected_map_selects_the_cell(store):
    from bokeh import events

    store.projection = "albers"
    view = ExplorerView(store=store)
    _render(view.__panel__())
    frame = view._dl.frame
    assert not frame.geographic and frame.key == "albers"
    dl = store.month_maps.dl
    assert view._dl.image.shape == (frame.y.size, frame.x.size)
    np.testing.assert_array_equal(view._dl.image, frame.warp(dl.values))
    x, y = frame.forward(np.array([100.2]), np.array([35.1]))
    assert abs(x[0]) > 1000  # metres of the conic, not degrees
    view._dl.figure._trigger_event(events.Tap(view._dl.figure, x=float(x[0]), y=float(y[0])))
    assert store.pixel == pytest.approx((100.2, 35.1))
    lon, lat = view._other.points
    assert (lon[0], lat[0]) == pytest.approx((100.2, 35.1))
    df = store.cell_series
    assert abs(df.attrs["lon"] - 100.2) <= 0.6 and abs(df.attrs["lat"] - 35.1) <= 0.6
    # the grid's cell under a pixel is the one the click maps back to
    i, j = store.pixel_index("historical", 100.2, 35.1)
    col = int(np.abs(frame.x - x[0]).argmin())
    row = int(np.abs(frame.y - y[0]).argmin())
    assert frame.index[row, col] == i * dl.sizes["lon"] + j


@pytest.mark.parametrize("projection", ["lonlat", "albers"])
@pytest.mark.parametrize("width", [SMALL_MAP_WIDTH, MAP_WIDTH])
def test_significance_dots_cover_a_small_share_of_any_map(projection, width):
    """Every cell significant, the study's 0.25° grid: the dots cover ≤ STIPPLE_MAX_COVER."""
    from bokeh.models import Scatter

    trend = study_grid_field(0.05)

    def cover(overlay) -> float:
        fig = hv.render(overlay)
        dots = [r for r in fig.renderers if isinstance(r.glyph, Scatter)]
        n = len(dots[0].data_source.data[dots[0].glyph.x])
        area = n * np.pi * (dots[0].glyph.size / 2) ** 2
        return area / (fig.frame_width * fig.frame_height)

    style = dict(title="t", limit=0.1, width=width, projection=projection, compact=width < 300)
    share = cover(trend_map(trend, trend.notnull(), **style))
    assert 0.01 < share <= STIPPLE_MAX_COVER
    # the earlier dots (a dot on every significant cell, 1.6 px) hid the colours
    lon_all, lat_all = stipple_coords(trend.notnull(), stride=1)
    old = np.pi * (1.6 / 2) ** 2 * lon_all.size / (width * width * 36 / 66)
    assert old > STIPPLE_MAX_COVER


def test_epoch_axis_has_whole_number_ticks(store):
    fig = hv.render(loss_curves(store.history()))
    ticker = fig.xaxis[0].ticker
    assert ticker.min_interval == 1 and fig.xaxis[0].formatter.format == "0"


def test_every_map_has_a_colour_bar_with_units(store):
    from bokeh.models import ColorBar

    explorer, trends = ExplorerView(store=store), TrendsView(store=store)
    for view in (explorer, trends):
        _render(view.__panel__())
    figures = [explorer._dl, explorer._other, trends._main, *trends._small.values()]
    for fig in figures:
        bars = [r for r in fig.figure.select(ColorBar)]
        assert len(bars) == 1 and bars[0].title, fig.figure.title.text
    assert "m³ m⁻³" in explorer._dl.figure.select(ColorBar)[0].title
    assert "per decade" in trends._small["DJF"].figure.select(ColorBar)[0].title
    evaluation = EvaluationView(store=store)
    _render(evaluation.__panel__())
    maps = metric_maps(store.maps(), "mae", ["CMIP6_DL", "ensemble_mean"])
    for element in maps:
        assert element.opts.get().kwargs["colorbar"] is True
        assert "m³ m⁻³" in element.opts.get().kwargs["colorbar_opts"]["title"]


def test_presentation_mode_enlarges_fonts_and_hides_tool_bars(dashboard_workdir):
    from dashboard.app import App

    app = App(dashboard_workdir.root)
    tabs = app.tabs()
    explorer, trends = app.views[0], app.views[3]
    for view in (explorer, trends):
        _render(view.__panel__())
    fig = explorer._dl.figure
    size = float(fig.title.text_font_size[:-2])
    assert fig.toolbar_location is not None
    app.store.presentation = True  # every opened tab changes in place
    assert explorer._dl.figure is fig and fig.toolbar_location is None
    assert float(fig.title.text_font_size[:-2]) == pytest.approx(1.6 * size)
    assert trends._main.figure.toolbar_location is None
    axis = trends._main.figure.xaxis[0].major_label_text_font_size
    # a tab built in presentation mode has the same large fonts
    tabs.active = 3
    trends.rebuild()
    assert trends._main.figure.toolbar_location is None
    assert trends._main.figure.xaxis[0].major_label_text_font_size == axis
    app.store.presentation = False
    assert fig.toolbar_location == "above"
    assert float(fig.title.text_font_size[:-2]) == pytest.approx(size)


# -- figures shared between sessions ---------------------------------------------------------
def _models_differ(a, b) -> list[str]:
    """Paths of the properties where two Bokeh model graphs differ (ids aside)."""
    from bokeh.model import Model

    seen: set[str] = set()

    def walk(x, y, path):
        if isinstance(x, Model):
            if type(x) is not type(y):
                return [path]
            if x.id in seen:
                return []
            seen.add(x.id)
            px = x.properties_with_values(include_defaults=True)
            py = y.properties_with_values(include_defaults=True)
            return sum((walk(px[k], py[k], f"{path}.{k}") for k in px if k != "id"), [])
        if isinstance(x, (list, tuple)):
            if not isinstance(y, (list, tuple)) or len(x) != len(y):
                return [path]
            return sum((walk(u, v, f"{path}[{i}]") for i, (u, v) in enumerate(zip(x, y))), [])
        if isinstance(x, dict):
            if not isinstance(y, dict) or set(x) != set(y):
                return [path]
            return sum((walk(x[k], y[k], f"{path}[{k}]") for k in x), [])
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            same = np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
            return [] if same else [path]
        if isinstance(x, float) and isinstance(y, float) and np.isnan(x) and np.isnan(y):
            return []
        return [] if x == y else [path]

    return walk(a, b, "figure")


def test_a_render_cache_copy_is_the_same_figure_under_new_ids(store):
    trends = store.trends().sel(experiment="ssp245", season="JJA")
    made = []

    def element():
        made.append(1)
        return map_image(trends["trend"], title="t", cmap="RdBu", clim=(-1, 1), clabel="x")

    cache = RenderCache(maxsize=2)
    first = cache.render(element, key="a")
    copy = cache.render(element, key="a")
    assert len(made) == 1 and (cache.hits, cache.misses) == (1, 1)  # not built again
    assert copy is not first
    assert not {m.id for m in first.references()} & {m.id for m in copy.references()}
    assert _models_differ(first, copy) == []
    second = cache.render(element, key="a")  # two copies in one document: no id clash
    doc = Document()
    doc.add_root(copy)
    doc.add_root(second)
    # a copy does not follow what the first session does to its figure
    first.title.text = "changed"
    assert cache.render(element, key="a").title.text == "t"
    cache.render(element, key="b")
    cache.render(element, key="c")  # beyond maxsize: the least recently used goes
    assert len(cache) == 2
    cache.render(element, key="a")
    assert len(made) == 4
    assert cache.render(element) is not None and len(made) == 5  # no key: always rendered


def test_a_render_cache_copy_owns_its_values_and_tells_its_own_document(store):
    from bokeh.models import ColumnDataSource

    trends = store.trends().sel(experiment="ssp245", season="JJA")
    points = hv.Points(([100.0, 110.0], [30.0, 35.0]))

    def element():
        return map_image(trends["trend"], title="t", cmap="RdBu", clim=(-1, 1), clabel="x") * points

    cache = RenderCache()
    first = cache.render(element, key="k")
    copies = [cache.render(element, key="k") for _ in range(2)]

    def arrays(fig):
        return [
            np.asarray(v) for m in fig.references() if isinstance(m, ColumnDataSource)
            for v in m.data.values() if isinstance(v, np.ndarray)
        ]

    # no array, list or dict is shared between the figure, its copies and the cache
    for a, b in [(first, copies[0]), (copies[0], copies[1])]:
        assert _models_differ(a, b) == []
        assert not any(np.shares_memory(x, y) for x in arrays(a) for y in arrays(b))
        held = [  # the mutable values each model holds (kept alive: their ids stay unique)
            [v for m in fig.references() for v in m.properties_with_values().values()
             if isinstance(v, (list, dict, set, np.ndarray))]
            for fig in (a, b)
        ]
        assert not {id(v) for v in held[0]} & {id(v) for v in held[1]}
    # a change made in place in a copy reaches its document, and nothing else
    doc = Document()
    doc.add_root(copies[0])
    events = []
    doc.on_change(events.append)
    def points_source(fig):
        return next(m for m in fig.references()
                    if isinstance(m, ColumnDataSource) and "x" in m.data and "image" not in m.data)

    source = points_source(copies[0])
    before = list(source.data["x"])
    source.patch({"x": [(0, -1.0)]})
    assert events and source.data["x"][0] == -1.0
    assert list(points_source(cache.render(element, key="k")).data["x"]) == before
    assert list(points_source(copies[1]).data["x"]) == before == [100.0, 110.0]


def test_a_page_passes_over_the_theme_of_a_rendered_figure_and_its_copies(store, monkeypatch):
    from bokeh.core.has_props import HasProps

    from dashboard import app, live

    wired = []
    monkeypatch.setattr(live, "use_theme", wired.append, raising=False)
    app.configure()
    assert wired == [app.BOKEH_THEME]
    # one Bokeh theme for every page (Panel's Fast makes a new one each time it is asked)
    design = app.OfflineFast()
    assert design.theme.bokeh_theme is app.OfflineFast().theme.bokeh_theme is app.BOKEH_THEME
    monkeypatch.setattr(live, "_THEME", [app.BOKEH_THEME], raising=False)
    trends = store.trends().sel(experiment="ssp245", season="JJA")

    def element():
        return map_image(trends["trend"], title="t", cmap="RdBu", clim=(-1, 1), clabel="x")

    cache = RenderCache()
    figures = [cache.render(element, key="themed") for _ in range(3)]  # rendered, then copies
    applied = []  # the models a theme was applied to anew (each themed default re-computed)
    apply = HasProps.apply_theme

    def counted(self, values):
        if self.themed_values() is not values and (values or self.themed_values()):
            applied.append(type(self).__name__)
        apply(self, values)

    monkeypatch.setattr(HasProps, "apply_theme", counted)
    for figure in figures:  # what a page does to a figure it shows
        doc = Document()
        doc.theme = design.theme.bokeh_theme
        doc.add_root(figure)
        design.apply_bokeh_theme_to_model(figure)
    assert applied == [], sorted(set(applied))
    # and each carries the theme's values
    themed = app.BOKEH_THEME._json["attrs"]["Axis"]["major_label_text_color"]
    assert {a.major_label_text_color for f in figures for a in f.select({"type": Axis})} == {themed}


def test_a_copy_keeps_the_presentation_mode_it_was_rendered_in(store):
    from dashboard.live import restyle
    from dashboard.maps import present

    trends = store.trends().sel(experiment="ssp245", season="JJA")
    cache = RenderCache()

    def element():
        return present(map_image(trends["trend"], title="t", cmap="RdBu", clim=(-1, 1),
                                 clabel="x"), True)

    big = cache.render(element, key="p")
    copy = cache.render(element, key="p")
    size = copy.title.text_font_size
    assert copy.toolbar_location is None
    assert restyle([copy], True, 1.6) == 0  # already in presentation mode
    restyle([copy], False, 1.6)
    restyle([big], False, 1.6)
    assert copy.title.text_font_size == big.title.text_font_size != size
    assert copy.toolbar_location == big.toolbar_location is not None


def test_rendered_glyphs_leave_their_selected_and_muted_looks_to_the_browser(store):
    # HoloViews gave every glyph three copies of itself: a sixth of the tab's models to build,
    # send and re-create in the browser, for looks no map shows
    from bokeh.models import GlyphRenderer

    root = TrendsView(store=store).__panel__().get_root(Document())
    renderers = [m for m in root.references() if isinstance(m, GlyphRenderer)]
    assert len(renderers) >= 18  # six maps of an image, outlines and marks
    for renderer in renderers:
        looks = (renderer.selection_glyph, renderer.nonselection_glyph, renderer.muted_glyph)
        assert looks == ("auto", "auto", "auto"), type(renderer.glyph).__name__


def test_the_marks_of_a_trend_map_are_one_glyph_drawing_each_layer_as_before():
    from bokeh.models import GlyphRenderer, Legend, Scatter

    trend = study_grid_field(0.05)
    everywhere = trend.notnull()
    band = everywhere & (np.abs(trend["lat"] - 35) < 5)

    def element():
        return trend_map(trend, everywhere, title="t", limit=0.1, legend=True,
                         robustness=(everywhere & ~band, band))

    apart, merged = LiveFigure(element), LiveFigure(element, merge=True)

    def marks(fig):
        return [r for r in fig.figure.renderers
                if isinstance(r, GlyphRenderer) and isinstance(r.glyph, Scatter)]

    assert len(marks(apart)) == 3 and len(marks(merged)) == 1
    (one,) = marks(merged)
    data = one.data_source.data
    for layer, r in enumerate(marks(apart)):
        np.testing.assert_array_equal(merged.points_at(layer), apart.points_at(layer))
        assert len(apart.points_at(layer)[0]) > 10
        rows = np.flatnonzero(np.asarray(data["layer"]) == layer)
        for name in ("marker", "size", "angle", "line_color", "fill_color", "fill_alpha"):
            want = getattr(r.glyph, name)
            want = want.value if hasattr(want, "value") else want
            got = {data[name][i] for i in rows}
            assert got == {want} or np.allclose(list(got), want), (layer, name)
    # the legend keeps an entry per layer, drawn from the layer's look (a row never drawn)
    items = [i for legend in merged.figure.select(Legend) for i in legend.items]
    assert [i.index for i in items] == [0, 1, 2] and all(i.renderers == [one] for i in items)
    assert np.isnan(np.asarray(data["lon"])[:3]).all()
    # a layer set later takes its own look, in its place (drawn between the others)
    merged.set_points(np.array([100.0, 101.0]), np.array([30.0, 31.0]), layer=1)
    np.testing.assert_array_equal(merged.points_at(1), [[100.0, 101.0], [30.0, 31.0]])
    np.testing.assert_array_equal(merged.points_at(0), apart.points_at(0))
    np.testing.assert_array_equal(merged.points_at(2), apart.points_at(2))
    data = one.data_source.data
    layers = np.asarray(data["layer"])
    assert (np.diff(layers[3:]) >= 0).all()
    assert {data["marker"][i] for i in np.flatnonzero(layers == 1)} == {"dash"}
    with pytest.raises(IndexError):
        merged.set_points(np.array([100.0]), np.array([30.0]), layer=3)
    # every layer at once, the source sent once; a layer given None stays
    sent = []
    one.data_source.on_change("data", lambda attr, old, new: sent.append(attr))
    merged.set_layers([apart.points_at(0), None, (np.array([90.0]), np.array([40.0]))])
    assert len(sent) == 1
    np.testing.assert_array_equal(merged.points_at(0), apart.points_at(0))
    np.testing.assert_array_equal(merged.points_at(1), [[100.0, 101.0], [30.0, 31.0]])
    np.testing.assert_array_equal(merged.points_at(2), [[90.0], [40.0]])
    assert one.data_source.data["marker"][-1] == "x"  # the new cross takes its layer's look


def test_a_second_session_copies_the_maps_of_the_first(dashboard_workdir, tmp_path):
    root = _copy_workdir(dashboard_workdir.root, tmp_path / "w", ("prepared", "analysis"))
    one = TrendsView(store=DataStore(root))
    _render(one.__panel__())
    misses = RENDERS.misses
    two_store = DataStore(root)
    two = TrendsView(store=two_store)
    _render(two.__panel__())
    assert RENDERS.misses == misses  # the six maps and the land shares copied, none rendered
    assert RENDERS.hits >= 7
    for a, b in [(one._main, two._main), *zip(one._small.values(), two._small.values())]:
        assert a.figure is not b.figure
        assert _models_differ(a.figure, b.figure) == []
    # each session's copy follows its own controls
    before = one._main.image.copy()
    dots = one._main.points
    two_store.scenario = next(s for s in two_store.param.scenario.objects if s != two_store.scenario)
    assert two.problems == {} and not two.missing
    assert not np.array_equal(two._main.image, before, equal_nan=True)
    assert len(two._main.points[0]) != len(dots[0]) or not np.allclose(two._main.points, dots)
    np.testing.assert_array_equal(one._main.image, before)
    np.testing.assert_array_equal(one._main.points, dots)
    # a rewritten trends file is drawn from its new values, not copied from the old ones
    path = root / "analysis" / "ssmi_trends.nc"
    ds = xr.load_dataset(path)
    ds["trend"] = -ds["trend"]
    path.unlink()
    ds.to_netcdf(path)
    later = path.stat().st_mtime + 5
    os.utime(path, (later, later))
    three = TrendsView(store=DataStore(root))
    _render(three.__panel__())
    assert RENDERS.misses > misses
    scenario = str(three.store.scenario)
    assert scenario == str(one.store.scenario)
    np.testing.assert_allclose(three._main.image, -before, equal_nan=True)


def test_a_second_explorer_copies_the_maps_and_follows_its_own_clicks(dashboard_workdir):
    one = ExplorerView(store=DataStore(dashboard_workdir.root))
    _render(one.__panel__())
    misses = RENDERS.misses
    store = DataStore(dashboard_workdir.root)
    hits = RENDERS.hits
    two = ExplorerView(store=store)
    _render(two.__panel__())
    assert RENDERS.misses == misses
    assert RENDERS.hits - hits >= 4  # the maps and the series plot
    assert _models_differ(one._dl.figure, two._dl.figure) == []
    # the copied series plot shows the cell's curves, as the first session's does
    assert two._series.figure is not one._series.figure
    assert _models_differ(one._series.figure, two._series.figure) == []
    assert max(len(next(iter(line.data_source.data.values()))) for line in two._series.lines) > 1
    lat = store.month_maps.dl["lat"].values
    lon = store.month_maps.dl["lon"].values
    store.pixel = (float(lon[3]), float(lat[4]))
    assert two.problems == {} and not two.missing
    np.testing.assert_allclose(np.ravel(two._dl.points), [lon[3], lat[4]])
    assert not np.allclose(np.ravel(one._dl.points), [lon[3], lat[4]])
