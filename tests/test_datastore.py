"""DataStore and loaders: shared selections, artifact access, caching, path safety."""

from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np
import pandas as pd
import panel as pn
import pytest
import xarray as xr

from dashboard import loaders
from dashboard.datastore import DataStore
from smcore.errors import InputError
from tests.factories.dashboard import make_workdir, small_config

pytestmark = pytest.mark.usefixtures("fresh_panel")


def test_defaults_come_from_the_work_directory(dashboard_workdir):
    store = DataStore(dashboard_workdir.root)
    assert store.problems == []
    assert store.scenario == "ssp245"
    assert store.param.scenario.objects == ["ssp126", "ssp245", "ssp370", "ssp585"]
    assert store.season == "annual"
    assert store.channels == ["ACCESS-CM2", "ACCESS-ESM1-5", "BCC-CSM2-MR", "CAS-ESM2-0"]
    assert store.param.product.objects == ["ensemble_mean", *store.channels]
    months = store.param.month.objects
    assert len(months) == 120 and months[0] == "2000-01" and months[-1] == "2009-12"
    assert store.month == "2009-07"  # the latest July


def test_selections_are_per_instance(dashboard_workdir, tmp_path):
    other = make_workdir(tmp_path / "w2")
    a, b = DataStore(dashboard_workdir.root), DataStore(other.root)
    a.scenario = "ssp585"
    assert b.scenario == "ssp245"
    assert DataStore.param.scenario.objects == []  # class untouched


def test_period_switches_the_explorer_experiment(dashboard_workdir):
    store = DataStore(dashboard_workdir.root)
    store.period = "future"
    assert store.explorer_experiment == "ssp245"
    assert store.param.month.objects[0] == "2015-01"
    assert store.month == "2024-07"
    store.month = "2020-03"
    store.scenario = "ssp585"
    assert store.explorer_experiment == "ssp585"
    assert store.month == "2020-03"  # kept: the month exists in the new scenario too


def test_product_month_matches_the_file(dashboard_workdir):
    store = DataStore(dashboard_workdir.root)
    field = store.product_month("historical", "2005-06")
    with xr.open_dataset(dashboard_workdir.product("historical")) as ds:
        expected = ds["ssm"].sel(time="2005-06").squeeze().values
    np.testing.assert_array_equal(field.values, expected)
    with pytest.raises(InputError, match="no month 1999-01"):
        store.product_month("historical", "1999-01")


def test_comparison_is_bilinear_from_the_coarse_inputs(dashboard_workdir):
    store = DataStore(dashboard_workdir.root)
    dl = store.product_month("ssp126", "2016-02")
    em = store.comparison_month("ssp126", "2016-02", "ensemble_mean", like=dl)
    model = store.comparison_month("ssp126", "2016-02", "BCC-CSM2-MR", like=dl)
    assert em.dims == ("lat", "lon") and em.shape == dl.shape
    np.testing.assert_array_equal(np.isnan(em.values), np.isnan(dl.values))
    inputs = (
        xr.open_zarr(dashboard_workdir.prepared_store, group="inputs/ssp126")["mrsos"]
        .sel(time="2016-02-01")
        .load()
    )
    # an interior land cell: bilinear equals linear interpolation of the coarse field
    i, j = 12, 30
    assert np.isfinite(dl.values[i, j])
    lat, lon = float(dl["lat"][i]), float(dl["lon"][j])
    want_em = inputs.mean("model").interp(clat=lat, clon=lon).item()
    want_model = inputs.sel(model="BCC-CSM2-MR").interp(clat=lat, clon=lon).item()
    assert em.values[i, j] == pytest.approx(want_em, rel=1e-5)
    assert model.values[i, j] == pytest.approx(want_model, rel=1e-5)
    assert em.attrs["units"] == "m3 m-3"


def test_pixel_series_historical_and_future(dashboard_workdir):
    store = DataStore(dashboard_workdir.root)
    df = store.pixel_series("historical", 110.3, 30.2, "ACCESS-CM2")
    assert list(df.columns) == [
        "reference", "CMIP6_DL", "CMIP6_DL_q05", "CMIP6_DL_q95", "ensemble_mean", "ACCESS-CM2",
    ]
    assert len(df) == 120 and df.index[0] == pd.Timestamp("2000-01-01")
    i, j = store.pixel_index("historical", 110.3, 30.2)
    static = xr.open_zarr(dashboard_workdir.prepared_store)
    np.testing.assert_allclose(df["reference"].values, static["reference"][:, i, j].values)
    with xr.open_dataset(dashboard_workdir.product("historical")) as ds:
        np.testing.assert_allclose(df["CMIP6_DL"].values, ds["ssm"][:, i, j].values)
    assert df.attrs["units"] == "m3 m-3" and df.attrs["lat"] == pytest.approx(
        float(static["lat"][i])
    )

    fut = store.pixel_series("ssp370", 110.3, 30.2, "ensemble_mean")
    assert list(fut.columns) == ["CMIP6_DL", "CMIP6_DL_q05", "CMIP6_DL_q95", "ensemble_mean"]
    assert fut.index[0] == pd.Timestamp("2015-01-01") and fut.notna().all().all()


def test_pixel_series_over_the_sea_is_empty(dashboard_workdir):
    store = DataStore(dashboard_workdir.root)
    df = store.pixel_series("historical", 130.0, 20.0, "ensemble_mean")  # South China Sea corner
    assert df.isna().all().all()


def test_missing_artifacts_name_the_command(tmp_path):
    (tmp_path / "training").mkdir()
    store = DataStore(tmp_path)
    assert store.channels == [] and store.month is None
    assert store.param.scenario.objects == [
        "ssp126",
        "ssp245",
        "ssp370",
        "ssp585",
    ]  # default config
    with pytest.raises(loaders.ArtifactMissing, match="smcore evaluate"):
        store.metrics()
    with pytest.raises(loaders.ArtifactMissing, match="smcore analyse"):
        store.trends()
    with pytest.raises(loaders.ArtifactMissing, match="smcore predict"):
        store.product_ssm("historical")
    assert not store.has("evaluation/metrics.csv")
    assert "✘ evaluation" in store.status_markdown()


def _write_manifest(root, config: dict, experiments: list[str]) -> None:
    (root / "prepared").mkdir(parents=True, exist_ok=True)
    manifest = {"config": config, "experiments": experiments, "channels": []}
    (root / "prepared" / "manifest.json").write_text(json.dumps(manifest))


def test_the_scenarios_are_the_prepared_ones(tmp_path):
    # the recorded configuration names the study's five experiments; three were prepared
    config = small_config()
    assert len(config.experiments) == 5
    _write_manifest(tmp_path, config.to_dict(), ["historical", "ssp126", "ssp585"])
    store = DataStore(tmp_path)
    assert store.param.scenario.objects == ["ssp126", "ssp585"]
    assert store.scenario == "ssp126"
    slider = store.__panel__().select(pn.widgets.DiscreteSlider)[0]
    assert list(slider.options) == ["SSP1-2.6", "SSP5-8.5"]
    assert store.problems == []


def test_the_sidebar_reports_each_steps_outputs(dashboard_workdir, tmp_path):
    assert DataStore(dashboard_workdir.root).status_markdown().count("✔") == 5
    _write_manifest(tmp_path, small_config().to_dict(), ["historical", "ssp126"])
    (tmp_path / "product").mkdir()
    (tmp_path / "product" / "CMIP6_DL_historical.nc").write_text("")
    status = DataStore(tmp_path).status_markdown()
    assert "◐ prepared inputs: no data.zarr" in status
    assert "◐ products: no CMIP6_DL_ssp126.nc" in status
    assert "✘ evaluation: run `smcore evaluate`" in status


def test_an_invalid_recorded_configuration_is_shown(tmp_path):
    root = make_workdir(tmp_path / "w").root
    manifest_path = root / "prepared" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["config"]["periods"]["train"] = [2010, 2000]
    manifest_path.write_text(json.dumps(manifest))
    store = DataStore(root)  # no exception: the server keeps serving
    alerts = store.__panel__().select(pn.pane.Alert)
    assert len(alerts) == 1 and alerts[0].alert_type == "danger"
    assert str(manifest_path) in alerts[0].object and "start after end" in alerts[0].object
    assert store.config is None  # not replaced by defaults
    assert len(store.problems) == 1 and str(manifest_path) in store.problems[0]
    # the tabs build what they can without it
    from dashboard.views import TABS

    for tab in TABS:
        assert not isinstance(tab(store=store).content, pn.pane.Alert), tab.title
    assert store.param.scenario.objects == ["ssp126", "ssp245", "ssp370", "ssp585"]  # prepared


def test_workdir_must_exist(tmp_path):
    with pytest.raises(InputError, match="work directory does not exist"):
        DataStore(tmp_path / "nope")


def test_paths_outside_the_workdir_are_refused(dashboard_workdir, tmp_path):
    outside = tmp_path / "secret.csv"
    outside.write_text("a,b\n1,2\n")
    link = dashboard_workdir.root / "evaluation" / "link.csv"
    link.symlink_to(outside)
    try:
        with pytest.raises(InputError, match="outside the work directory"):
            loaders.read_csv(dashboard_workdir.root, "evaluation/link.csv")
        with pytest.raises(InputError, match="outside the work directory"):
            loaders.read_csv(dashboard_workdir.root, "../secret.csv")
    finally:
        link.unlink()


def test_cache_is_shared_and_follows_rewrites(dashboard_workdir, tmp_path):
    root = tmp_path / "w"
    (root / "analysis").mkdir(parents=True)
    path = root / "analysis" / "area_fractions.csv"
    path.write_text("experiment,season,drying,wetting\nssp126,annual,0.1,0.2\n")
    first = loaders.read_csv(root, "analysis/area_fractions.csv")
    assert loaders.read_csv(root, "analysis/area_fractions.csv") is first  # one copy per server
    path.write_text("experiment,season,drying,wetting\nssp126,annual,0.3,0.2\n")
    later = time.time() + 5
    os.utime(path, (later, later))
    again = loaders.read_csv(root, "analysis/area_fractions.csv")
    assert again is not first and again["drying"].iloc[0] == 0.3


def test_unreadable_artifact_is_a_one_line_error(tmp_path):
    (tmp_path / "evaluation").mkdir()
    (tmp_path / "evaluation" / "maps.nc").write_text("not a netcdf file")
    with pytest.raises(InputError, match="maps.nc: cannot read NetCDF"):
        loaders.read_netcdf(tmp_path, "evaluation/maps.nc")


def test_warm_up_fills_the_cache(dashboard_workdir):
    spent = loaders.warm_up(dashboard_workdir.root)
    assert {"store", "ensemble mean historical", "default series ssp585"} <= set(spent)
    a = loaders.coarse_field(dashboard_workdir.root, "ssp585", "ensemble_mean")
    assert loaders.coarse_field(dashboard_workdir.root, "ssp585", "ensemble_mean") is a
    assert a.dims == ("time", "clat", "clon")


def test_sidebar_controls(dashboard_workdir):
    store = DataStore(dashboard_workdir.root)
    panel = store.__panel__()
    sliders = panel.select(pn.widgets.DiscreteSlider)
    assert len(sliders) == 1 and list(sliders[0].options) == [
        "SSP1-2.6",
        "SSP2-4.5",
        "SSP3-7.0",
        "SSP5-8.5",
    ]
    sliders[0].value = "ssp585"
    assert store.scenario == "ssp585"
    selects = {w.name: w for w in panel.select(pn.widgets.Select)}
    assert set(selects) == {"Season", "Compare CMIP6_DL with", "Map projection"}
    selects["Season"].value = "DJF"
    assert store.season == "DJF"
    assert list(selects["Map projection"].options) == [
        "Latitude / longitude",
        "Albers equal-area (China)",
    ]
    selects["Map projection"].value = "albers"
    assert store.projection == "albers"
    toggle = panel.select(pn.widgets.Toggle)[0]
    assert toggle.name.startswith("Presentation") and not store.presentation
    toggle.value = True
    assert store.presentation


def test_the_sidebar_shows_what_is_running_and_waiting(dashboard_workdir, tmp_path):
    from smcore import runstate

    root = tmp_path / "w"
    for folder in ("prepared", "training", "product"):
        shutil.copytree(dashboard_workdir.root / folder, root / folder)
    runstate.mark_running(root, "evaluate")
    store = DataStore(root)
    status = store.status_markdown()
    assert "✔ products" in status
    assert "▶ evaluation: running now" in status
    assert "… future analysis: waiting" in status
    assert [s for s, state, _ in store.step_states() if state == "running"] == ["evaluate"]
    pane = store.__panel__().select(pn.pane.Markdown)[-1]
    assert pane.object == status
    runstate.mark_finished(root, "evaluate")  # the run was stopped: nothing is running
    store.update_status()
    assert "✘ evaluation: run `smcore evaluate`" in pane.object
    assert "✘ future analysis" in pane.object


def test_the_sidebar_says_how_far_the_running_step_is(dashboard_workdir, tmp_path, monkeypatch):
    from smcore import runstate
    from smcore.progress import StepBar

    root = tmp_path / "w"
    for folder in ("prepared", "training", "product"):
        shutil.copytree(dashboard_workdir.root / folder, root / folder)
    monkeypatch.setattr(runstate, "PROGRESS_INTERVAL_S", 0.0)
    runstate.mark_running(root, "evaluate")
    try:
        store = DataStore(root)
        pane = store.__panel__().select(pn.pane.Markdown)[-1]
        assert "▶ evaluation: running now\n" in pane.object + "\n"  # no bar open yet
        with StepBar(total=6, desc="evaluate", disable=True) as steps:
            steps.update(2)
            with StepBar(total=2, desc="<img src=x onerror=alert(1)>", unit="experiment",
                         disable=True) as truth:
                truth.update()
                store.update_status()
                assert store.run_state["step"] == "evaluate"
                assert (
                    "▶ evaluation: running now (evaluate 2/6 · "
                    "&lt;img src=x onerror=alert(1)&gt; 1/2 experiments)"
                ) in pane.object
    finally:
        runstate.mark_finished(root, "evaluate")
    store.update_status()
    assert store.run_state is None and "running now" not in pane.object


def test_refresh_follows_a_pipeline_writing_the_workdir(dashboard_workdir, tmp_path):
    root = tmp_path / "w"
    root.mkdir()
    store = DataStore(root)  # served before `smcore prepare` wrote anything
    assert store.month is None and store.channels == [] and store.month_maps is None
    assert store.refresh() is False  # nothing new
    shutil.copytree(dashboard_workdir.root / "prepared", root / "prepared")
    assert store.refresh() is True
    assert store.channels == ["ACCESS-CM2", "ACCESS-ESM1-5", "BCC-CSM2-MR", "CAS-ESM2-0"]
    assert "CAS-ESM2-0" in store.param.product.objects.values()
    assert store.month is None  # no product yet
    shutil.copytree(dashboard_workdir.root / "product", root / "product")
    assert store.refresh() is True
    assert store.month == "2009-07" and store.month_maps is not None
    assert store.cell_series is not None and "CMIP6_DL" in store.cell_series
    assert store.refresh() is False
