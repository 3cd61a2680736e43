import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from _analysis_factories import (
    TINY_GRID,
    land_mask,
    make_workdir,
    monthly_time,
    synthetic_ssm,
    tiny_config,
    tiny_config_toml,
    write_ssm,
)
from smcore.analysis.analyse import analyse, open_ssm
from smcore.analysis.change import (
    TIMESCALES,
    area_fractions,
    change_rates,
    region_masks,
    regional_mean,
    timescale_means,
)
from smcore.cli import main
from smcore.config import GridSpec
from smcore.errors import InputError
from smcore.workdir import WorkDir


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    root = tmp_path_factory.mktemp("analysis")
    cfg = tiny_config()
    wd = make_workdir(root / "wd", cfg, truth_dir=root / "truth")
    result = analyse(wd, cfg, truth=root / "truth", progress=False)
    return wd, cfg, result, root


def test_trend_file_layout_and_planted_signs(analysed):
    wd, cfg, result, _ = analysed
    assert result.trends_path == wd.analysis / "ssmi_trends.nc"
    with xr.open_dataset(result.trends_path) as ds:
        assert ds["trend"].dims == ("experiment", "season", "lat", "lon")
        assert ds["p_value"].dims == ds["trend"].dims
        assert ds["season"].values.tolist() == ["annual", "MAM", "JJA", "SON", "DJF"]
        assert ds["experiment"].values.tolist() == ["ssp126", "ssp585"]
        assert ds["trend"].attrs["units"] and ds["p_value"].attrs["units"] == "1"
        assert ds.attrs["Conventions"] == "CF-1.8" and "smcore_config" in ds.attrs
        land = land_mask()
        trend = ds["trend"].values
        p = ds["p_value"].values
        assert np.isnan(trend[..., ~land]).all() and np.isfinite(trend[..., land]).all()
        north = (TINY_GRID.lat[:, None] >= 35) & land
        south = (TINY_GRID.lat[:, None] < 35) & land
        assert (trend[..., north] > 0).all() and (trend[..., south] < 0).all()
        assert (p[..., land] < 0.05).all()


def test_area_fractions_and_change_rates_files(analysed):
    wd, cfg, result, _ = analysed
    fr = pd.read_csv(result.area_fractions_path)
    assert fr.columns.tolist() == ["experiment", "season", "drying", "wetting"]
    assert len(fr) == 2 * 5
    w = np.cos(np.deg2rad(TINY_GRID.lat))[:, None] * land_mask()
    north = (TINY_GRID.lat[:, None] >= 35)
    np.testing.assert_allclose(fr["wetting"], (w * north).sum() / w.sum(), rtol=1e-6)
    np.testing.assert_allclose(fr["drying"], (w * ~north).sum() / w.sum(), rtol=1e-6)

    rates = pd.read_csv(result.change_rates_path)
    assert rates.columns.tolist() == ["experiment", "region", "period", "timescale", "value"]
    assert len(rates) == 2 * 2 * 3 * 17
    assert set(rates["timescale"]) == set(TIMESCALES) and set(rates["region"]) == {"north", "south"}
    assert set(rates["period"]) == {"2021-2040", "2041-2070", "2071-2100"}
    annual = rates[rates.timescale == "annual"].set_index(["experiment", "region", "period"])["value"]
    # Planted trends: north wetter, south drier, growing with time and with the scenario.
    for exp in ("ssp126", "ssp585"):
        n = [annual[(exp, "north", p)] for p in ("2021-2040", "2041-2070", "2071-2100")]
        s = [annual[(exp, "south", p)] for p in ("2021-2040", "2041-2070", "2071-2100")]
        assert 0 < n[0] < n[1] < n[2] and 0 > s[0] > s[1] > s[2]
    assert annual[("ssp585", "north", "2071-2100")] > annual[("ssp126", "north", "2071-2100")]


def test_truth_comparison_and_figures(analysed):
    wd, cfg, result, _ = analysed
    cmp = pd.read_csv(wd.analysis / "truth_trend_comparison.csv")
    assert {"experiment", "season", "spatial_r", "rmse", "n_pixels"} <= set(cmp.columns)
    assert len(cmp) == 2 * 5
    assert (cmp["spatial_r"] > 0.95).all()
    assert (cmp["n_pixels"] == land_mask().sum()).all()
    names = sorted(p.name for p in result.figures)
    assert names == ["change_rates.png", "trend_maps_ssp126.png", "trend_maps_ssp585.png"]
    for p in result.figures:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_trends_file_passes_cf_checker(analysed, tmp_path):
    _, _, result, _ = analysed
    exe = Path(sys.executable).with_name("compliance-checker")
    out = tmp_path / "cc.json"
    subprocess.run([str(exe), "--test=cf:1.8", "--format=json", "-o", str(out), str(result.trends_path)],
                   capture_output=True, text=True, timeout=300)
    report = json.loads(out.read_text())["cf:1.8"]
    failed = [h["name"] for h in report["high_priorities"] if h["value"][0] < h["value"][1]]
    assert report["high_count"] == 0 and failed == []
    assert report["scored_points"] > 50


def test_region_masks_and_weighted_regional_mean():
    lat = xr.DataArray([30.0, 35.0, 60.0], dims="lat", coords={"lat": [30.0, 35.0, 60.0]})
    lon = xr.DataArray([90.0, 100.0, 110.0], dims="lon", coords={"lon": [90.0, 100.0, 110.0]})
    masks = region_masks(lat, lon, 35.0, 100.0)
    assert masks.sel(region="north").values.tolist() == [[False] * 3, [False, True, True], [False, True, True]]
    assert masks.sel(region="south").values.tolist() == [[False, True, True], [False] * 3, [False] * 3]
    time, _ = monthly_time(2000, 2000)
    x = np.zeros((12, 3, 3))
    x[:, 1, 1:] = 1.0   # 35N
    x[:, 2, 1:] = 3.0   # 60N
    x[:, 0, :] = 7.0
    x[0, 2, 2] = np.nan  # a missing pixel drops out of that month's mean
    ssm = xr.DataArray(x, dims=("time", "lat", "lon"), coords={"time": time, "lat": lat, "lon": lon})
    reg = regional_mean(ssm, masks)
    w35, w60 = np.cos(np.deg2rad(35)), np.cos(np.deg2rad(60))
    assert float(reg.sel(region="north")[1]) == pytest.approx((2 * w35 * 1 + 2 * w60 * 3) / (2 * w35 + 2 * w60))
    assert float(reg.sel(region="north")[0]) == pytest.approx((2 * w35 + w60 * 3) / (2 * w35 + w60))
    np.testing.assert_allclose(reg.sel(region="south"), 7.0)


def test_change_rates_formula_and_timescales():
    def series(first, last, fn):
        time, _ = monthly_time(first, last)
        months = pd.DatetimeIndex(time).month.values
        vals = np.stack([fn(months), 2 * fn(months)])
        return xr.DataArray(vals, dims=("region", "time"), coords={"region": ["north", "south"], "time": time})

    hist = series(1994, 2014, lambda m: 0.1 + 0.01 * m)
    fut = series(2015, 2100, lambda m: (0.1 + 0.01 * m) * np.where(m == 12, 2.0, 1.5))
    df = change_rates(hist, {"sspX": fut}, (1995, 2014), [(2021, 2040), (2071, 2100)])
    assert len(df) == 1 * 2 * 2 * 17
    v = df.set_index(["region", "period", "timescale"])["value"]
    assert v[("north", "2021-2040", "Jan")] == pytest.approx(50.0)
    assert v[("south", "2071-2100", "Dec")] == pytest.approx(100.0)
    djf_base = (0.22 + 0.11 + 0.12) / 3
    djf_fut = (0.22 * 2 + 0.11 * 1.5 + 0.12 * 1.5) / 3
    assert v[("north", "2021-2040", "DJF")] == pytest.approx(100 * (djf_fut / djf_base - 1))
    months = 0.1 + 0.01 * np.arange(1, 13)
    fut_months = months * np.where(np.arange(1, 13) == 12, 2.0, 1.5)
    assert v[("south", "2021-2040", "annual")] == pytest.approx(100 * (fut_months.mean() / months.mean() - 1))
    tm = timescale_means(hist, (1995, 2014))
    assert tm["timescale"].values.tolist() == list(TIMESCALES)


def test_area_fractions_function():
    trend = np.array([[[[-1.0, 1.0], [2.0, np.nan]]]])
    p = np.array([[[[0.01, 0.2], [0.001, np.nan]]]])
    ds = xr.Dataset(
        {"trend": (("experiment", "season", "lat", "lon"), trend),
         "p_value": (("experiment", "season", "lat", "lon"), p)},
        coords={"experiment": ["e"], "season": ["annual"], "lat": [0.0, 60.0], "lon": [0.0, 1.0]},
    )
    df = area_fractions(ds)
    total = 2 * 1.0 + 0.5
    assert df.loc[0, "drying"] == pytest.approx(1.0 / total)
    assert df.loc[0, "wetting"] == pytest.approx(0.5 / total)


def test_missing_or_bad_inputs_raise_one_line_errors_and_write_nothing(tmp_path):
    cfg = tiny_config()
    wd = make_workdir(tmp_path / "wd", cfg)
    wd.product("ssp585").unlink()
    with pytest.raises(InputError, match=r"CMIP6_DL_ssp585\.nc: file not found"):
        analyse(wd, cfg, progress=False)
    assert not wd.analysis.exists()

    with pytest.raises(InputError, match=r"truth_ssp126\.nc: file not found; expected the demo truth"):
        analyse(wd, cfg, progress=False, truth=tmp_path / "no_truth")

    other = GridSpec(lat0=30.5, lon0=94.5, res=1.0, nlat=8, nlon=13)
    write_ssm(wd.product("ssp585"), synthetic_ssm(2015, 2100, grid=other), 2015, other)
    with pytest.raises(InputError, match=r"CMIP6_DL_ssp585\.nc: lon grid differs"):
        analyse(wd, cfg, progress=False)

    short = synthetic_ssm(2015, 2050)
    write_ssm(wd.product("ssp585"), short, 2015)
    with pytest.raises(InputError, match="covers 2015-2050 but periods.future needs 2015-2100"):
        analyse(wd, cfg, progress=False)

    bad = wd.root / "bad.nc"
    xr.Dataset({"sm": (("x",), np.zeros(3), {"units": "1"})}).to_netcdf(bad)
    with pytest.raises(InputError, match="no variable 'ssm'"):
        open_ssm(bad)
    (wd.root / "junk.nc").write_text("not netcdf")
    with pytest.raises(InputError, match="cannot read NetCDF"):
        open_ssm(wd.root / "junk.nc")
    assert not wd.analysis.exists()


def test_open_ssm_reads_lazily_above_the_load_limit(tmp_path):
    path = write_ssm(tmp_path / "p.nc", synthetic_ssm(2015, 2020), 2015)
    lazy = open_ssm(path, load_bytes=0, chunk_bytes=6 * 12 * 8 * 8 * 8)
    eager = open_ssm(path)
    assert lazy.chunks == ((72,), (8,), (8, 4))
    xr.testing.assert_equal(lazy.compute(), eager.compute())


def test_cli_analyse(tmp_path, capsys):
    wd = make_workdir(tmp_path / "wd", tiny_config(), truth_dir=tmp_path / "truth")
    toml = tiny_config_toml(tmp_path / "tiny.toml")
    rc = main(["analyse", "--workdir", str(wd.root), "--config", str(toml), "--quiet",
               "--no-figures", "--truth", str(tmp_path / "truth")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "ssmi_trends.nc" in out and "annual trend spatial r" in out
    assert not list(WorkDir(wd.root).analysis.glob("*.png"))
    assert (wd.analysis / "truth_trend_comparison.csv").is_file()
    assert main(["analyse", "--workdir", str(wd.root), "--config", str(toml), "--quiet", "--no-figures"]) == 0
    assert not (wd.analysis / "truth_trend_comparison.csv").exists()  # stale comparison removed
    capsys.readouterr()
    wd.product("historical").unlink()
    rc = main(["analyse", "--workdir", str(wd.root), "--config", str(toml), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "CMIP6_DL_historical.nc: file not found" in err and len(err.strip().splitlines()) == 1
