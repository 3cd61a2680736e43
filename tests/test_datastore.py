"""DataStore and loaders: shared selections, artifact access, caching, path safety."""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import panel as pn
import pytest
import xarray as xr
from _dashboard_factories import make_workdir

from dashboard import loaders
from dashboard.datastore import DataStore
from smcore.errors import InputError
from smcore.workdir import WorkDir


@pytest.fixture(scope="module")
def wd(tmp_path_factory) -> WorkDir:
    return make_workdir(tmp_path_factory.mktemp("dash") / "work")


@pytest.fixture(autouse=True)
def _reset():
    yield
    loaders.clear_caches()
    pn.state.reset()


def test_defaults_come_from_the_work_directory(wd):
    store = DataStore(wd.root)
    assert store.scenario == "ssp245"
    assert store.param.scenario.objects == ["ssp126", "ssp245", "ssp370", "ssp585"]
    assert store.season == "annual"
    assert store.channels == ["ACCESS-CM2", "ACCESS-ESM1-5", "BCC-CSM2-MR", "CAS-ESM2-0"]
    assert store.param.product.objects == ["ensemble_mean", *store.channels]
    months = store.param.month.objects
    assert len(months) == 120 and months[0] == "2000-01" and months[-1] == "2009-12"
    assert store.month == "2009-07"  # the latest July


def test_selections_are_per_instance(wd, tmp_path):
    other = make_workdir(tmp_path / "w2")
    a, b = DataStore(wd.root), DataStore(other.root)
    a.scenario = "ssp585"
    assert b.scenario == "ssp245"
    assert DataStore.param.scenario.objects == []  # class untouched


def test_period_switches_the_explorer_experiment(wd):
    store = DataStore(wd.root)
    store.period = "future"
    assert store.explorer_experiment == "ssp245"
    assert store.param.month.objects[0] == "2015-01"
    assert store.month == "2024-07"
    store.month = "2020-03"
    store.scenario = "ssp585"
    assert store.explorer_experiment == "ssp585"
    assert store.month == "2020-03"  # kept: the month exists in the new scenario too


def test_product_month_matches_the_file(wd):
    store = DataStore(wd.root)
    field = store.product_month("historical", "2005-06")
    with xr.open_dataset(wd.product("historical")) as ds:
        expected = ds["ssm"].sel(time="2005-06").squeeze().values
    np.testing.assert_array_equal(field.values, expected)
    with pytest.raises(InputError, match="no month 1999-01"):
        store.product_month("historical", "1999-01")


def test_comparison_is_bilinear_from_the_coarse_inputs(wd):
    store = DataStore(wd.root)
    dl = store.product_month("ssp126", "2016-02")
    em = store.comparison_month("ssp126", "2016-02", "ensemble_mean", like=dl)
    model = store.comparison_month("ssp126", "2016-02", "BCC-CSM2-MR", like=dl)
    assert em.dims == ("lat", "lon") and em.shape == dl.shape
    np.testing.assert_array_equal(np.isnan(em.values), np.isnan(dl.values))
    inputs = (
        xr.open_zarr(wd.prepared_store, group="inputs/ssp126")["mrsos"]
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


def test_pixel_series_historical_and_future(wd):
    store = DataStore(wd.root)
    df = store.pixel_series("historical", 110.3, 30.2, "ACCESS-CM2")
    assert list(df.columns) == ["reference", "CMIP6_DL", "ensemble_mean", "ACCESS-CM2"]
    assert len(df) == 120 and df.index[0] == pd.Timestamp("2000-01-01")
    i, j = store.pixel_index("historical", 110.3, 30.2)
    static = xr.open_zarr(wd.prepared_store)
    np.testing.assert_allclose(df["reference"].values, static["reference"][:, i, j].values)
    with xr.open_dataset(wd.product("historical")) as ds:
        np.testing.assert_allclose(df["CMIP6_DL"].values, ds["ssm"][:, i, j].values)
    assert df.attrs["units"] == "m3 m-3" and df.attrs["lat"] == pytest.approx(
        float(static["lat"][i])
    )

    fut = store.pixel_series("ssp370", 110.3, 30.2, "ensemble_mean")
    assert list(fut.columns) == ["CMIP6_DL", "ensemble_mean"]
    assert fut.index[0] == pd.Timestamp("2015-01-01") and fut.notna().all().all()


def test_pixel_series_over_the_sea_is_empty(wd):
    store = DataStore(wd.root)
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
        store.product_dataset("historical")
    assert not store.has("evaluation/metrics.csv")
    assert "✘ evaluation" in store.status_markdown()


def test_workdir_must_exist(tmp_path):
    with pytest.raises(InputError, match="work directory does not exist"):
        DataStore(tmp_path / "nope")


def test_paths_outside_the_workdir_are_refused(wd, tmp_path):
    outside = tmp_path / "secret.csv"
    outside.write_text("a,b\n1,2\n")
    link = wd.root / "evaluation" / "link.csv"
    link.symlink_to(outside)
    try:
        with pytest.raises(InputError, match="outside the work directory"):
            loaders.read_csv(wd.root, "evaluation/link.csv")
        with pytest.raises(InputError, match="outside the work directory"):
            loaders.read_csv(wd.root, "../secret.csv")
    finally:
        link.unlink()


def test_cache_is_shared_and_follows_rewrites(wd, tmp_path):
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


def test_warm_up_fills_the_cache(wd):
    spent = loaders.warm_up(wd.root)
    assert {"store", "ensemble mean historical", "default series ssp585"} <= set(spent)
    a = loaders.coarse_field(wd.root, "ssp585", "ensemble_mean")
    assert loaders.coarse_field(wd.root, "ssp585", "ensemble_mean") is a
    assert a.dims == ("time", "clat", "clon")


def test_sidebar_controls(wd):
    store = DataStore(wd.root)
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
    assert set(selects) == {"Season", "Compare CMIP6_DL with"}
    selects["Season"].value = "DJF"
    assert store.season == "DJF"
