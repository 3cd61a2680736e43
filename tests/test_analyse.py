import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import xarray as xr

from smcore.analysis.analyse import analyse, open_chunked, with_significance
from smcore.analysis.change import (
    TIMESCALES,
    area_fractions,
    change_rates,
    region_masks,
    regional_mean,
    timescale_means,
)
from smcore.analysis.significance import benjamini_hochberg, fdr_mask
from smcore.cli import main
from smcore.config import GridSpec
from smcore.errors import InputError
from smcore.workdir import WorkDir
from tests.factories.analysis import (
    TINY_GRID,
    land_mask,
    make_workdir,
    monthly_time,
    synthetic_ssm,
    tiny_config,
    tiny_config_toml,
    write_ssm,
)


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    root = tmp_path_factory.mktemp("analysis")
    cfg = tiny_config()
    wd = make_workdir(root / "wd", cfg, truth_dir=root / "truth")
    result = analyse(cfg, wd, truth=root / "truth", progress=False)
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
        assert ds.attrs["mann_kendall_test"] == "Hamed and Rao (1998) variance correction"
        assert ds.attrs["field_significance"] == (
            "Benjamini-Hochberg false discovery rate, alpha_FDR = 0.1 (Wilks 2016)"
        )


def test_trend_file_holds_the_fdr_mask(analysed):
    _, _, result, _ = analysed
    land = land_mask()
    with xr.open_dataset(result.trends_path, mask_and_scale=False) as raw:
        var = raw["significant"]
        assert var.dims == ("experiment", "season", "lat", "lon") and var.dtype == np.int8
        assert var.attrs["_FillValue"] == -1 and (var.values[..., ~land] == -1).all()
        assert set(np.unique(var.values[..., land])) <= {0, 1}
        flags = var.attrs["flag_values"]
        assert flags.tolist() == [0, 1] and flags.dtype == np.int8
        assert var.attrs["flag_meanings"] == "not_significant significant"
        assert var.attrs["mann_kendall_variant"] == "hamed_rao" and var.attrs["fdr_alpha"] == 0.1
    with xr.open_dataset(result.trends_path) as ds:
        sig = ds["significant"].values
        assert np.isnan(sig[..., ~land]).all()
        for e in range(ds.sizes["experiment"]):
            for s in range(ds.sizes["season"]):
                np.testing.assert_array_equal(
                    sig[e, s][land] == 1, benjamini_hochberg(ds["p_value"].values[e, s], 0.1)[land]
                )
        assert (sig[..., land] == 1).all()  # every planted trend is strong


def test_mask_and_area_fractions_follow_the_fdr_rule_not_p_below_005(tmp_path):
    cfg = tiny_config(**{"analysis.fdr_alpha": 0.2})
    wd = make_workdir(tmp_path / "wd", cfg)
    # Trends from none (west) to clear (east) in noise: p-values spread over (0, 1).
    ramp = np.linspace(0.0, 2.5e-4, TINY_GRID.nlon)[None, :] * np.ones((TINY_GRID.nlat, 1))
    for k, exp in enumerate(("ssp126", "ssp585")):
        ssm = synthetic_ssm(2015, 2100, trend_per_year=-ramp * (k + 1), noise=0.03, seed=50 + k)
        write_ssm(wd.product(exp), ssm, 2015)
    result = analyse(cfg, wd, progress=False, figures=False, report=lambda _: None)
    with xr.open_dataset(result.trends_path) as ds:
        ds = ds.load()
    land = land_mask()
    p, sig = ds["p_value"].values, ds["significant"].values
    for e in range(2):
        for s in range(5):
            want = benjamini_hochberg(p[e, s], 0.2)
            np.testing.assert_array_equal(sig[e, s][land] == 1, want[land])
    naive = (p < 0.05) & land
    assert ((sig == 1) != naive).sum() > 10  # the rule matters on these maps
    assert ds["significant"].attrs["fdr_alpha"] == 0.2
    assert "alpha_FDR = 0.2" in ds.attrs["field_significance"]
    fr = pd.read_csv(result.area_fractions_path)
    w = np.cos(np.deg2rad(TINY_GRID.lat))[:, None] * land
    for row in fr.itertuples():
        e = ["ssp126", "ssp585"].index(row.experiment)
        s = ["annual", "MAM", "JJA", "SON", "DJF"].index(row.season)
        drying = (w * ((sig[e, s] == 1) & (ds["trend"].values[e, s] < 0))).sum() / w.sum()
        assert row.drying == pytest.approx(drying, abs=1e-6)
    naive_drying = (w * (naive & (ds["trend"].values < 0))).sum(axis=(-2, -1)) / w.sum()
    assert not np.allclose(fr["drying"], naive_drying.ravel(), atol=1e-3)


def test_dashboard_stipples_the_fdr_mask(analysed):
    pytest.importorskip("panel")
    from dashboard.views.trends import significance_mask, significance_rule, stipple_coords

    _, _, result, _ = analysed
    with xr.open_dataset(result.trends_path) as ds:
        sel = ds.sel(experiment="ssp126", season="JJA").load()
    sel["significant"][:4] = 0.0  # the mask alone decides, whatever the p-values
    lon, lat = stipple_coords(significance_mask(sel), max_points=10_000)
    assert lon.size == int((sel["significant"] == 1).sum()) and (lat >= float(sel["lat"][4])).all()
    assert significance_rule(sel) == "Mann–Kendall with Hamed–Rao correction, FDR 10 %"
    old = sel.drop_vars("significant")  # a file written before the mask existed
    assert significance_rule(old) == "Mann–Kendall p < 0.05"
    assert stipple_coords(significance_mask(old))[0].size == int((old["p_value"] < 0.05).sum())


def test_area_fractions_and_change_rates_files(analysed):
    wd, cfg, result, _ = analysed
    fr = pd.read_csv(result.area_fractions_path)
    assert fr.columns.tolist() == ["experiment", "season", "drying", "wetting"]
    assert len(fr) == 2 * 5
    with xr.open_dataset(result.trends_path) as ds:
        pd.testing.assert_frame_equal(fr, area_fractions(ds.load()), check_exact=False, rtol=1e-6)
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


def test_area_fractions_follow_the_fdr_mask():
    dims = ("experiment", "season", "lat", "lon")
    trend = np.array([[[[-1.0, 1.0, -3.0], [2.0, np.nan, 1.0]]]])
    p = np.array([[[[0.01, 0.2, 0.03], [0.001, np.nan, 0.04]]]])
    ds = xr.Dataset(
        {"trend": (dims, trend), "p_value": (dims, p)},
        coords={"experiment": ["e"], "season": ["annual"], "lat": [0.0, 60.0],
                "lon": [0.0, 1.0, 2.0]},
    )
    ds = with_significance(ds, 0.1)
    # N = 5 finite p; BH thresholds 0.02, 0.04, 0.06, 0.08, 0.1 for the sorted
    # 0.001, 0.01, 0.03, 0.04, 0.2: p_(4) = 0.04 <= 0.08 is the largest passing one.
    np.testing.assert_array_equal(ds["significant"].values[0, 0], [[1, 0, 1], [1, np.nan, 1]])
    df = area_fractions(ds)
    total = 3 * 1.0 + 2 * 0.5
    assert df.loc[0, "drying"] == pytest.approx(2.0 / total)
    assert df.loc[0, "wetting"] == pytest.approx(2 * 0.5 / total)
    # At FDR 2 %, only p = 0.001 passes (thresholds 0.004, 0.008, 0.012, ...), although
    # four pixels have p < 0.05.
    df = area_fractions(with_significance(ds, 0.02))
    assert df.loc[0, "drying"] == 0.0
    assert df.loc[0, "wetting"] == pytest.approx(0.5 / total)


def test_benjamini_hochberg_by_hand():
    # N = 10 finite p-values (NaN = no test); step-up thresholds k/N * alpha.
    p = np.array([[0.042, 0.001, np.nan, 0.205, 0.058, 0.216],
                  [0.039, 0.212, 0.008, 0.074, 0.041, np.nan]])
    # alpha = 0.1: thresholds 0.01, 0.02, ..., 0.10 for the sorted p
    # 0.001 0.008 0.039 0.041 0.042 0.058 0.074 0.205 0.212 0.216
    #   ok    ok    no    no    ok    ok    no    no    no    no   -> k = 6, p_(6) = 0.058:
    # 0.039 and 0.041 count although each misses its own threshold (step-up).
    want = np.array([[1, 1, 0, 0, 1, 0], [1, 0, 1, 0, 1, 0]], dtype=bool)
    np.testing.assert_array_equal(benjamini_hochberg(p, 0.1), want)
    # alpha = 0.05: thresholds 0.005, 0.010, 0.015, ...: only 0.001 and 0.008 pass (k = 2),
    # where p < 0.05 alone would flag 5 pixels.
    want = np.zeros_like(want)
    want[0, 1] = want[1, 2] = True
    np.testing.assert_array_equal(benjamini_hochberg(p, 0.05), want)
    assert not benjamini_hochberg(np.array([0.5, 0.02, np.nan]), 0.02).any()  # 0.02 > 1/2 * 0.02
    assert not benjamini_hochberg(np.full(3, np.nan)).any()
    with pytest.raises(ValueError, match="alpha"):
        benjamini_hochberg(p, 0.0)


def test_benjamini_hochberg_matches_scipy():
    fdc = getattr(scipy.stats, "false_discovery_control", None)
    if fdc is None:
        pytest.skip("scipy < 1.11 has no false_discovery_control")
    rng = np.random.default_rng(2)
    for n in (1, 7, 100, 5000):
        # A mix of true effects (small p) and nulls (uniform p), ties and NaN.
        p = np.where(rng.random(n) < 0.3, rng.beta(0.1, 8, n), rng.random(n))
        p = np.where(rng.random(n) < 0.5, np.round(p, 3), p)  # ties
        p[rng.random(n) < 0.1] = np.nan
        ok = np.isfinite(p)
        for alpha in (0.05, 0.1, 0.2):
            want = np.zeros(n, dtype=bool)
            want[ok] = fdc(p[ok], method="bh") <= alpha
            np.testing.assert_array_equal(benjamini_hochberg(p, alpha), want)


def test_fdr_mask_is_per_map():
    rng = np.random.default_rng(3)
    p = rng.random((2, 3, 4, 5)) ** 4
    p[0, 1] = rng.random((4, 5))  # a map of pure noise
    da = xr.DataArray(p, dims=("experiment", "lat", "lon", "season"))
    mask = fdr_mask(da, 0.1, dims=("lat", "lon"))
    assert mask.dims == ("experiment", "season", "lat", "lon") and mask.dtype == bool
    for e in range(2):
        for s in range(5):
            np.testing.assert_array_equal(mask.values[e, s], benjamini_hochberg(p[e, :, :, s], 0.1))
    with pytest.raises(ValueError, match="no dimension"):
        fdr_mask(da, dims=("y", "x"))


def test_missing_or_bad_inputs_raise_one_line_errors_and_write_nothing(tmp_path):
    cfg = tiny_config()
    wd = make_workdir(tmp_path / "wd", cfg)
    wd.product("ssp585").unlink()
    with pytest.raises(InputError, match=r"CMIP6_DL_ssp585\.nc: file not found \(network product\); run `smcore predict"):
        analyse(cfg, wd, progress=False)
    assert not wd.analysis.exists()

    with pytest.raises(InputError, match=r"truth_ssp126\.nc: file not found \(truth\); expected the demo truth"):
        analyse(cfg, wd, progress=False, truth=tmp_path / "no_truth")

    other = GridSpec(lat0=30.5, lon0=94.5, res=1.0, nlat=8, nlon=13)
    write_ssm(wd.product("ssp585"), synthetic_ssm(2015, 2100, grid=other), 2015, other)
    with pytest.raises(InputError, match=r"CMIP6_DL_ssp585\.nc: lon grid differs"):
        analyse(cfg, wd, progress=False)

    short = synthetic_ssm(2015, 2050)
    write_ssm(wd.product("ssp585"), short, 2015)
    with pytest.raises(InputError, match="covers 2015-2050 but periods.future needs 2015-2100"):
        analyse(cfg, wd, progress=False)

    bad = wd.root / "bad.nc"
    xr.Dataset({"sm": (("x",), np.zeros(3), {"units": "1"})}).to_netcdf(bad)
    with pytest.raises(InputError, match="no variable 'ssm'"):
        open_chunked(bad)
    (wd.root / "junk.nc").write_text("not netcdf")
    with pytest.raises(InputError, match="cannot read NetCDF"):
        open_chunked(wd.root / "junk.nc")
    assert not wd.analysis.exists()


def test_open_ssm_reads_lazily_above_the_load_limit(tmp_path):
    path = write_ssm(tmp_path / "p.nc", synthetic_ssm(2015, 2020), 2015)
    lazy = open_chunked(path, load_bytes=0, chunk_bytes=6 * 12 * 8 * 8 * 8)
    eager = open_chunked(path)
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
    base = ["analyse", "--workdir", str(wd.root), "--config", str(toml), "--quiet"]
    assert main([*base, "--no-figures", "--mk-test", "original", "--fdr-alpha", "0.05"]) == 0
    with xr.open_dataset(wd.analysis / "ssmi_trends.nc") as ds:
        assert ds.attrs["mann_kendall_test"].startswith("original Mann-Kendall test")
        assert "alpha_FDR = 0.05" in ds.attrs["field_significance"]
        assert ds["significant"].attrs["mann_kendall_variant"] == "original"
    capsys.readouterr()
    rc = main([*base, "--mk-test", "yue"])
    err = capsys.readouterr().err
    assert rc == 2 and "analysis.mk_test must be one of original, hamed_rao, tfpw" in err
    wd.product("historical").unlink()
    rc = main(["analyse", "--workdir", str(wd.root), "--config", str(toml), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "CMIP6_DL_historical.nc: file not found" in err and len(err.strip().splitlines()) == 1
