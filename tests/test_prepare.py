import json
import os

import numpy as np
import pandas as pd
import pytest

from smcore.cli import main
from smcore.io.cmip6 import month_range
from smcore.prep import geography, open_prepared, prepare
from smcore.workdir import WorkDir
from tests.factories.cmip6 import (
    TEST_MODELS,
    small_config,
    truth,
    write_config_toml,
    write_era5,
    write_inputs,
    write_model_set,
)

ROOT_VARS = {
    "reference",
    "land_mask",
    "elevation",
    "climatology",
    "x_mean",
    "x_std",
    "y_mean",
    "y_std",
}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("prep")
    cmip6, era5 = write_inputs(root, missing=[("ModelD", "ssp585")])
    msgs: list[str] = []
    res = prepare(small_config(), root / "wd", cmip6=cmip6, era5=era5, report=msgs.append)
    return root, res, msgs


def _check_cells(clat, clon):
    """Coarse cells whose bilinear neighbours are land in every fixture model.

    The fixture's sea is lat < 31, lon > 106.
    """
    la, lo = np.meshgrid(clat, clon, indexing="ij")
    return (la >= 32.0) | (lo <= 104.0)


def test_channels_and_exclusions(prepared):
    root, res, msgs = prepared
    assert res.channels == ["ModelA", "ModelB", "ModelC"]
    assert res.excluded == {"ModelD": "no ssp585 data for member r1i1p1f1"}
    assert "excluded ModelD: no ssp585 data for member r1i1p1f1" in msgs
    assert "channels (3): ModelA, ModelB, ModelC" in msgs
    m = json.loads(WorkDir(root / "wd").manifest.read_text())
    assert m["channels"] == res.channels and m["experiments"] == ["historical", "ssp126", "ssp585"]
    assert m["members"] == {"ModelA": "r1i1p1f1", "ModelB": "r1i1p1f1", "ModelC": "r1i1p1f2"}
    assert m["config"]["experiments"] == ["historical", "ssp126", "ssp585"]
    assert len(m["fingerprint"]) == 64 and m["smcore_version"] and m["created"]
    paths = [r["path"] for r in m["inputs"]]
    assert not any("ModelD" in p for p in paths) and any("swvl1_era5land" in p for p in paths)
    assert all(r["size"] > 0 and r["mtime"] > 0 for r in m["inputs"])
    assert not any(
        "1999" in os.path.basename(p) and "ModelB" in p for p in paths
    )  # files outside the periods unused


def test_store_follows_the_contract(prepared):
    root, res, _ = prepared
    data = open_prepared(root / "wd")
    s = data.static
    assert ROOT_VARS <= set(s.data_vars)
    assert s.reference.dims == ("time", "lat", "lon") and s.reference.dtype == np.float32
    assert s.land_mask.dtype == np.int8 and s.climatology.dims == ("month", "lat", "lon")
    assert s.x_mean.dims == ("model",) and s.y_mean.dims == ()
    assert list(s.model.values) == res.channels == data.channels
    assert (s.sizes["lat"], s.sizes["lon"], s.sizes["clat"], s.sizes["clon"]) == (24, 32, 3, 4)
    assert list(s.month.values) == list(range(1, 13))
    assert (s.attrs["train"], s.attrs["val"], s.attrs["test"]) == (
        "2000-2002",
        "2003-2003",
        "2004-2004",
    )
    assert s.attrs["channels"] == "ModelA,ModelB,ModelC" and s.attrs["Conventions"] == "CF-1.8"
    for name in ("reference", "climatology", "x_mean", "y_std"):
        assert s[name].attrs["units"] == "m3 m-3"
    assert s.elevation.attrs["units"] == "m"
    t = pd.DatetimeIndex(s.time.values)
    assert (
        t[0] == pd.Timestamp("2000-01-01") and t[-1] == pd.Timestamp("2004-12-01") and len(t) == 60
    )
    assert data.split_mask("train").sum() == 36 and data.split_mask("test").sum() == 12
    for exp, (first, n) in {
        "historical": ("2000-01-01", 60),
        "ssp126": ("2015-01-01", 24),
        "ssp585": ("2015-01-01", 24),
    }.items():
        x = data.inputs(exp)
        assert x.dims == ("time", "model", "clat", "clon") and x.dtype == np.float32
        assert x.sizes["time"] == n and pd.Timestamp(x.time.values[0]) == pd.Timestamp(first)
        assert list(x.model.values) == res.channels and x.attrs["units"] == "m3 m-3"
        assert np.isfinite(x.values).all()
        import xarray as xr

        group = xr.open_zarr(data.path, group=f"inputs/{exp}")
        assert group.attrs["Conventions"] == "CF-1.8" and exp in group.attrs["title"]
        assert group.clat.attrs["units"] == "degrees_north"


def test_inputs_match_the_truth_for_every_calendar_grid_and_unit(prepared):
    """ModelA noleap 0..360; ModelB 360_day −180..180, descending lat, yearly files;
    ModelC flat folder, m3 m-3; ModelD standard, 4-year files, kg/m2."""
    root, res, _ = prepared
    data = open_prepared(root / "wd")
    for exp in ("historical", "ssp126", "ssp585"):
        x = data.inputs(exp).load()
        ok = _check_cells(x.clat.values, x.clon.values)
        for i, t in enumerate(pd.DatetimeIndex(x.time.values)):
            exp_field = truth(x.clat.values, x.clon.values, t.year, t.month)
            for j in range(x.sizes["model"]):
                np.testing.assert_allclose(
                    x.values[i, j][ok],
                    exp_field[ok],
                    atol=1e-6,
                    err_msg=f"{exp} {t} {res.channels[j]}",
                )


def test_coastal_cells_are_filled_not_nan(prepared):
    root, _, _ = prepared
    x = open_prepared(root / "wd").inputs("historical").load()
    coast = x.sel(clat=30.875, clon=106.875).values  # the fixture's sea lies here
    assert np.isfinite(coast).all()
    t = truth(x.clat.values, x.clon.values, 2000, 1)
    assert 0.1 < coast.min() and coast.max() < 0.4
    assert not np.allclose(
        coast[0], t[0, 3], atol=1e-6
    )  # extrapolated from land, not the (unknown) truth


def test_reference_land_mask_and_training_statistics(prepared):
    root, _, _ = prepared
    data = open_prepared(root / "wd")
    s = data.static.load()
    land = s.land_mask.values.astype(bool)
    la, lo = np.meshgrid(s.lat.values, s.lon.values, indexing="ij")
    # the ERA5 fixture's sea (lat < 30.6, lon > 107) is not land; everything else is
    np.testing.assert_array_equal(land, ~((la < 30.6) & (lo > 107.0)))
    ref = s.reference.values
    assert np.isnan(ref[:, ~land]).all() and np.isfinite(ref[:, land]).all()
    for i, t in enumerate(pd.DatetimeIndex(s.time.values)):
        np.testing.assert_allclose(
            ref[i][land], truth(s.lat.values, s.lon.values, t.year, t.month)[land], atol=1e-6
        )
    train = data.split_mask("train")
    clim = np.stack(
        [truth(s.lat.values, s.lon.values, 2001, m) for m in range(1, 13)]
    )  # mean of 2000..2002 = 2001
    np.testing.assert_allclose(s.climatology.values[:, land], clim[:, land], atol=1e-6)
    assert np.isnan(s.climatology.values[:, ~land]).all()
    assert float(s.y_mean) == pytest.approx(float(np.mean(ref[train][:, land])), rel=1e-5)
    assert float(s.y_std) == pytest.approx(float(np.std(ref[train][:, land])), rel=1e-4)
    x = data.inputs("historical").values
    np.testing.assert_allclose(s.x_mean.values, x[train].mean(axis=(0, 2, 3)), rtol=1e-5)
    assert (s.x_std.values > 0).all()


def test_rerun_reuses_and_changes_recompute(tmp_path, capsys):
    write_model_set(tmp_path, models=TEST_MODELS[:2], experiments=("historical",))
    write_era5(tmp_path / "era5")
    cfg = small_config()
    first = prepare(cfg, tmp_path / "wd", cmip6=tmp_path / "cmip6", era5=tmp_path / "era5")
    assert not first.reused and first.config.experiments == ("historical",)
    store = WorkDir(tmp_path / "wd").prepared_store
    stamp = store.stat().st_mtime_ns
    msgs: list[str] = []
    again = prepare(cfg, tmp_path / "wd", cmip6=tmp_path / "cmip6", era5=tmp_path / "era5", report=msgs.append)
    assert again.reused and msgs == [f"up to date, reusing {WorkDir(tmp_path / 'wd').prepared}"]
    assert store.stat().st_mtime_ns == stamp and again.channels == first.channels
    f = next((tmp_path / "era5").glob("*.nc"))
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    assert not prepare(cfg, tmp_path / "wd", cmip6=tmp_path / "cmip6", era5=tmp_path / "era5").reused
    assert not prepare(cfg.override(layer_depth_mm=70.0), tmp_path / "wd", cmip6=tmp_path / "cmip6", era5=tmp_path / "era5").reused


@pytest.mark.parametrize(
    "layout,res,per_year", [("new", 0.1, True), ("old", 0.25, False), ("old-expver", 0.25, True)]
)
def test_both_era5_resolutions_and_layouts(tmp_path, layout, res, per_year):
    write_model_set(tmp_path, models=TEST_MODELS[:1], experiments=("historical",))
    write_era5(tmp_path / "era5", layout=layout, res=res, per_year=per_year)
    out = prepare(small_config(), tmp_path / "wd", cmip6=tmp_path / "cmip6", era5=str(tmp_path / "era5" / "*.nc"))
    s = out.data.static.load()
    land = s.land_mask.values.astype(bool)
    assert land.sum() > 0.9 * land.size
    t = pd.Timestamp(s.time.values[-1])
    tol = 1e-6 if layout == "new" else 2e-5  # old CDS files are packed int16
    np.testing.assert_allclose(
        s.reference.values[-1][land],
        truth(s.lat.values, s.lon.values, t.year, t.month)[land],
        atol=tol,
    )


def test_explicit_experiments_keep_more_models(prepared, tmp_path):
    root, _, _ = prepared
    res = prepare(small_config(), tmp_path / "wd", cmip6=root / "cmip6", era5=root / "era5", experiments=["ssp126", "historical"])
    assert res.channels == ["ModelA", "ModelB", "ModelC", "ModelD"] and res.excluded == {}
    assert res.data.experiments == ["historical", "ssp126"]


def test_land_mask_is_inside_china(prepared, tmp_path, monkeypatch):
    root, _, _ = prepared

    def fake(grid):
        la, lo = np.meshgrid(grid.lat, grid.lon, indexing="ij")
        return lo < 103.0, np.full(grid.shape, 100.0, "float32")

    monkeypatch.setattr(geography, "china_and_elevation", fake)
    res = prepare(small_config(), tmp_path / "wd", cmip6=root / "cmip6", era5=root / "era5", experiments=["historical"])
    s = res.data.static
    land = s.land_mask.values.astype(bool)
    assert land[:, s.lon.values >= 103.0].sum() == 0 and land[:, s.lon.values < 103.0].all()
    assert float(s.elevation.max()) == 100.0


def test_cli_prepare_and_rerun(prepared, tmp_path, capsys):
    root, _, _ = prepared
    toml = write_config_toml(tmp_path / "smcore.toml")
    args = [
        "prepare",
        "--cmip6",
        str(root / "cmip6"),
        "--era5",
        str(root / "era5" / "*.nc"),
        "--workdir",
        str(tmp_path / "wd"),
        "--config",
        str(toml),
        "--experiments",
        "historical,ssp585",
        "--member",
        "ModelC=r1i1p1f2",
        "--exclude",
        "ModelB",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert (
        "excluded ModelB: excluded on request" in out and "excluded ModelD: no ssp585 data" in out
    )
    assert "channels (2): ModelA, ModelC" in out
    assert main(args) == 0
    assert f"up to date, reusing {tmp_path / 'wd' / 'prepared'}" in capsys.readouterr().out
    m = json.loads((tmp_path / "wd" / "prepared" / "manifest.json").read_text())
    assert m["channels"] == ["ModelA", "ModelC"] and m["experiments"] == ["historical", "ssp585"]


def test_default_experiments_are_those_present(tmp_path, capsys):
    write_model_set(tmp_path, models=TEST_MODELS[:2], experiments=("historical", "ssp245"))
    write_era5(tmp_path / "era5")
    toml = write_config_toml(tmp_path / "smcore.toml")
    assert (
        main(
            [
                "prepare",
                "--cmip6",
                str(tmp_path / "cmip6"),
                "--era5",
                str(tmp_path / "era5"),
                "--workdir",
                str(tmp_path / "wd"),
                "--config",
                str(toml),
            ]
        )
        == 0
    )
    data = open_prepared(tmp_path / "wd")
    assert data.experiments == ["historical", "ssp245"] and data.channels == ["ModelA", "ModelB"]
    assert data.inputs("ssp245").sizes["time"] == month_range(2015, 2016).size


def test_partial_grid_cells_get_the_training_mean(tmp_path):
    write_model_set(tmp_path, models=TEST_MODELS[1:2], experiments=("historical",))
    m = TEST_MODELS[0]
    from tests.factories.cmip6 import write_cmip6

    write_cmip6(
        tmp_path / "cmip6",
        m.source_id,
        "historical",
        institution=m.institution_id,
        calendar=m.calendar,
        dlat=m.dlat,
        dlon=m.dlon,
        lat_range=(33.0, 46.0),
    )  # misses the southern coarse rows
    write_era5(tmp_path / "era5")
    msgs: list[str] = []
    res = prepare(small_config(), tmp_path / "wd", cmip6=tmp_path / "cmip6", era5=tmp_path / "era5", report=msgs.append)
    assert any(
        msg.startswith("ModelA historical: the grid spans 33% of the domain") for msg in msgs
    )
    x = res.data.inputs("historical").load()
    a = x.sel(model="ModelA").values
    mean = float(res.data.static.x_mean.sel(model="ModelA"))
    np.testing.assert_allclose(a[:, :2], mean, rtol=1e-6)  # clat 30.875, 32.875: no model data
    assert np.isfinite(a).all() and not np.allclose(a[:, 2], mean)
    assert np.isfinite(x.sel(model="ModelB").values).all()
