import json
import os

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import smcore.assets
from smcore.cli import main as cli_main
from smcore.config import GridSpec
from smcore.errors import ConfigError, InputError
from smcore.evaluation import evaluate as ev
from smcore.evaluation.regions import REGION_CODES, REGIONS, classify_regions, regional_mean
from tests.factories.evaluation import MODELS, make_workdir, tiny_config

PRODUCTS = [
    "CMIP6_DL",
    "ensemble_mean",
    "bias_corrected_ensemble_mean",
    "era5_train_climatology",
    "ridge_stacking",
]


def _plateau_top_left(grid: GridSpec) -> xr.DataArray:
    m = np.zeros(grid.shape, dtype=bool)
    m[-5:, :6] = True
    return xr.DataArray(m, dims=("lat", "lon"), coords={"lat": grid.lat, "lon": grid.lon})


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    root = tmp_path_factory.mktemp("wd")
    _, truth = make_workdir(root)
    mp = pytest.MonkeyPatch()
    mp.setattr(smcore.assets, "tibetan_plateau_mask", _plateau_top_left)
    try:
        result = ev.evaluate(tiny_config(), root, truth=truth, progress=False, use_qdm=False)
    finally:
        mp.undo()
    return root, result


def test_metrics_csv_has_every_product_and_the_network_wins_on_the_toy(evaluated):
    root, result = evaluated
    df = pd.read_csv(root / "evaluation" / "metrics.csv")
    assert list(df.columns) == [
        "product",
        "MAE",
        "RMSD",
        "ubRMSD",
        "r",
        "spatial_r",
        "anomaly_r",
        "std_ratio",
    ]
    assert df["product"].tolist() == PRODUCTS + list(MODELS)
    scores = df.set_index("product")
    # the toy product is the truth plus 0.005 noise: it must beat everything else
    assert scores["MAE"].idxmin() == "CMIP6_DL"
    assert scores.loc["CMIP6_DL", "MAE"] < 0.006
    # bias correction removes bias: ubRMSD of the corrected mean equals its RMSD closely
    bc = scores.loc["bias_corrected_ensemble_mean"]
    assert bc["MAE"] < scores.loc["ensemble_mean", "MAE"]
    assert np.isnan(scores.loc["era5_train_climatology", "anomaly_r"])
    assert (scores["ubRMSD"] <= scores["RMSD"] + 1e-12).all()
    assert result.n_months == 24 and result.n_pixels == int(
        tiny_config().target.nlat * tiny_config().target.nlon - 25
    )


def test_network_and_ensemble_scores_match_an_independent_computation(evaluated):
    root, _ = evaluated
    cfg = tiny_config()
    store = xr.open_zarr(root / "prepared" / "data.zarr")
    ref = store["reference"].sel(time=slice("2008", "2009")).values.astype(np.float64)
    product = xr.open_dataset(root / "product" / "CMIP6_DL_historical.nc")["ssm"].sel(
        time=slice("2008", "2009")
    )
    dl = product.values.astype(np.float64)
    ok = np.isfinite(ref) & np.isfinite(dl)
    mae = np.mean(np.abs(dl[ok] - ref[ok]))
    r = np.corrcoef(dl[ok], ref[ok])[0, 1]
    # ensemble mean by xarray.interp, with target points clamped into the coarse centres' span
    coarse = xr.open_zarr(root / "prepared" / "data.zarr", group="inputs/historical")["mrsos"]
    coarse = coarse.sel(time=slice("2008", "2009")).mean("model").astype(np.float64)
    lat_c = np.clip(cfg.target.lat, cfg.coarse.lat[0], cfg.coarse.lat[-1])
    lon_c = np.clip(cfg.target.lon, cfg.coarse.lon[0], cfg.coarse.lon[-1])
    em = coarse.interp(clat=lat_c, clon=lon_c, method="linear").values
    em_mae = np.mean(np.abs(em[ok] - ref[ok]))
    em_ub = np.sqrt(np.mean(((em[ok] - em[ok].mean()) - (ref[ok] - ref[ok].mean())) ** 2))
    scores = pd.read_csv(root / "evaluation" / "metrics.csv").set_index("product")
    assert scores.loc["CMIP6_DL", "MAE"] == pytest.approx(mae, rel=1e-5)
    assert scores.loc["CMIP6_DL", "r"] == pytest.approx(r, rel=1e-5)
    assert scores.loc["ensemble_mean", "MAE"] == pytest.approx(em_mae, rel=1e-5)
    assert scores.loc["ensemble_mean", "ubRMSD"] == pytest.approx(em_ub, rel=1e-5)


def test_taylor_maps_regions_and_series_follow_the_contract(evaluated):
    root, _ = evaluated
    out = root / "evaluation"
    taylor = pd.read_csv(out / "taylor.csv")
    assert list(taylor.columns) == ["product", "std_norm", "corr", "crmsd_norm"]
    assert taylor.iloc[0].tolist() == ["reference", 1.0, 1.0, 0.0]
    assert taylor["product"].tolist()[1:] == PRODUCTS + list(MODELS)
    t = taylor.iloc[1:]
    law = np.sqrt(t["std_norm"] ** 2 + 1 - 2 * t["std_norm"] * t["corr"])
    np.testing.assert_allclose(t["crmsd_norm"], law, rtol=1e-4)

    maps = xr.open_dataset(out / "maps.nc")
    assert maps["mae"].dims == ("product", "lat", "lon") and maps["r"].dims == (
        "product",
        "lat",
        "lon",
    )
    assert list(maps["product"].values) == PRODUCTS
    assert maps["mae"].attrs["units"] == "m3 m-3"
    assert np.isnan(maps["mae"].sel(product="CMIP6_DL").values[0, -1])  # sea corner
    assert float(maps["mae"].sel(product="CMIP6_DL").mean()) < float(
        maps["mae"].sel(product="ensemble_mean").mean()
    )

    regions = xr.open_dataset(out / "regions.nc")["region"]
    assert regions.dtype == np.int8
    assert list(regions.attrs["flag_values"]) == [0, 1, 2, 3, 4]
    assert regions.attrs["flag_meanings"].split() == ["outside_study_land", *REGIONS]
    assert (
        regions.values[-5:, :6] == REGION_CODES["tibetan_plateau"]
    ).all()  # monkeypatched plateau
    assert regions.values[0, -1] == 0

    series = xr.open_dataset(out / "regional_series.nc")
    assert series["ssm"].dims == ("region", "product", "time")
    assert list(series["region"].values) == list(REGIONS)
    assert list(series["product"].values) == ["reference", "CMIP6_DL", "ensemble_mean"]
    assert series.sizes["time"] == 24 and series["time"].dt.day.values[0] == 16
    assert series["n_pixels"].sel(region="tibetan_plateau") == 30
    for region in REGIONS:
        if int(series["n_pixels"].sel(region=region)) > 0:
            ref = series["ssm"].sel(region=region, product="reference")
            dl = series["ssm"].sel(region=region, product="CMIP6_DL")
            assert np.isfinite(ref).all() and float(abs(dl - ref).max()) < 0.01


def test_truth_metrics_score_each_scenario(evaluated):
    root, result = evaluated
    df = pd.read_csv(root / "evaluation" / "truth_metrics.csv")
    assert (
        df.columns[:2].tolist() == ["experiment", "product"]
        and "anomaly_r" in df
        and "period" in df
    )
    assert sorted(df["experiment"].unique()) == ["historical", "ssp245"]
    fut = df[df["experiment"] == "ssp245"].set_index("product")
    assert fut.loc["CMIP6_DL", "period"] == "2010-2012"
    assert fut["MAE"].idxmin() == "CMIP6_DL"
    assert set(PRODUCTS) <= set(fut.index)
    audit = json.loads((root / "evaluation" / "audit.json").read_text())
    assert all(v["consistent_with_train_only"] for v in audit["statistics"].values())


def test_experiments_scored_against_the_truth_side_by_side_score_as_one_at_a_time(
    evaluated, tmp_path, monkeypatch
):
    """Two experiments scored at once (ev.TRUTH_WORKERS threads) give the tables of one at a
    time; an experiment whose truth cannot be read stops the run with its file named."""
    root, result = evaluated
    assert ev.TRUTH_WORKERS > 1
    one = tmp_path / "wd"
    _, truth = make_workdir(one)
    monkeypatch.setattr(smcore.assets, "tibetan_plateau_mask", _plateau_top_left)
    monkeypatch.setattr(ev, "TRUTH_WORKERS", 1)
    alone = ev.evaluate(tiny_config(), one, truth=truth, progress=False, use_qdm=False)
    pd.testing.assert_frame_equal(alone.calibration, result.calibration, check_exact=True)
    for name in ("truth_metrics.csv", "calibration.csv"):
        assert (one / "evaluation" / name).read_bytes() == (root / "evaluation" / name).read_bytes()

    monkeypatch.setattr(ev, "TRUTH_WORKERS", 2)
    before = (one / "evaluation" / "truth_metrics.csv").read_bytes()
    (truth / "truth_ssp245.nc").write_bytes(b"not a NetCDF file")
    with pytest.raises(InputError, match="truth_ssp245.nc"):
        ev.evaluate(tiny_config(), one, truth=truth, progress=False, use_qdm=False)
    assert (one / "evaluation" / "truth_metrics.csv").read_bytes() == before


def test_calibration_of_the_bias_corrected_members_is_scored_independently(evaluated):
    """calibration.csv: the bias-corrected models as an ensemble forecast, against the
    reference over the test months and the truth per experiment, recomputed here from the
    models' files on disk with numpy's quantiles and the CRPS's pairwise definition."""
    from smcore.evaluation.data import load_fit_data, select_months
    from smcore.evaluation.fitting import bias_corrected_members, fit_baselines

    root, result = evaluated
    df = pd.read_csv(root / "evaluation" / "calibration.csv")
    assert df.columns[:5].tolist() == ["product", "against", "experiment", "period", "level"]
    assert {"n", "coverage", "width", "CRPS", "pit_1", "pit_10"} <= set(df.columns)
    assert df[["against", "experiment"]].values.tolist() == [
        ["reference", "historical"], ["truth", "historical"], ["truth", "ssp245"]
    ]
    assert (df["product"] == "bias_corrected_members").all() and (df["level"] == 0.9).all()
    pit = df[[f"pit_{i}" for i in range(1, 11)]].sum(axis=1)
    np.testing.assert_allclose(pit, 1.0, atol=1e-5)
    pd.testing.assert_frame_equal(result.calibration, df, check_exact=False, rtol=1e-5,
                                  check_dtype=False)
    # recomputed at once (no blocks) with numpy's quantiles and the CRPS's pairwise form
    run = ev._setup(tiny_config(), root, None)
    fits = fit_baselines(load_fit_data(run.prepared, run.grid), run.grid, use_qdm=False)
    inputs = run.prepared.inputs("historical")
    pos = select_months(inputs, run.keys_test, run.prepared.path, "inputs")
    members = bias_corrected_members(
        fits, np.asarray(inputs.values[pos], dtype=np.float64), run.keys_test, run.grid
    ).astype(np.float64)
    y = run.ref_test.astype(np.float64)
    ok = np.isfinite(y) & np.isfinite(members).all(axis=0)
    ens, y = members[:, ok], y[ok]
    lo, hi = np.quantile(ens, (0.05, 0.95), axis=0)
    pairwise = np.abs(ens[:, None] - ens[None]).mean(axis=(0, 1))
    crps = (np.abs(ens - y).mean(axis=0) - 0.5 * pairwise).mean()
    row = df.iloc[0]
    assert row["n"] == y.size
    assert row["coverage"] == pytest.approx(((y >= lo) & (y <= hi)).mean(), abs=1e-6)
    assert row["width"] == pytest.approx((hi - lo).mean(), rel=1e-5)
    assert row["CRPS"] == pytest.approx(crps, rel=1e-5)
    metrics = pd.read_csv(root / "evaluation" / "metrics.csv").set_index("product")
    assert row["CRPS"] < metrics.loc["bias_corrected_ensemble_mean", "MAE"]


def test_every_netcdf_passes_the_cf_checker(evaluated, tmp_path):
    from compliance_checker.runner import CheckSuite, ComplianceChecker

    root, _ = evaluated
    CheckSuite.load_all_available_checkers()
    for name in ("maps.nc", "regions.nc", "regional_series.nc"):
        report = tmp_path / f"{name}.json"
        passed, _ = ComplianceChecker.run_checker(
            str(root / "evaluation" / name),
            ["cf:1.8"],
            0,
            "normal",
            output_filename=str(report),
            output_format="json",
        )
        high = json.loads(report.read_text())["cf:1.8"]["high_priorities"]
        failed = [(c["name"], c["msgs"]) for c in high if c["value"][0] < c["value"][1]]
        assert len(high) > 5 and passed and not failed, (name, failed)


def test_classify_regions_thresholds_and_plateau_precedence():
    coords = {"lat": [0.0, 1.0], "lon": [0.0, 1.0, 2.0]}
    theta = xr.DataArray(
        [[0.05, 0.2, 0.35], [0.16, 0.298, np.nan]], dims=("lat", "lon"), coords=coords
    )
    land = xr.DataArray([[1, 1, 1], [1, 0, 1]], dims=("lat", "lon"), coords=coords)
    plateau = xr.DataArray(
        [[False, False, True], [False, False, False]], dims=("lat", "lon"), coords=coords
    )
    codes = classify_regions(theta, land, plateau).values
    assert codes.tolist() == [[1, 2, 4], [2, 0, 0]]
    with pytest.raises(ValueError, match="threshold"):
        classify_regions(theta, land, plateau, arid_below=0.3, humid_from=0.2)


def test_regional_mean_weights_by_cos_latitude():
    values = np.array([[1.0, 3.0, 100.0], [np.nan, 2.0, 100.0]])
    lat = np.array([0.0, 60.0, 10.0])
    sel = np.array([True, True, False])
    out = regional_mean(values, lat, sel)
    assert out[0] == pytest.approx((1.0 * 1 + 3.0 * 0.5) / 1.5)
    assert out[1] == pytest.approx(2.0)
    assert np.isnan(regional_mean(np.full((1, 3), np.nan), lat, sel)[0])


# -- bad input ---------------------------------------------------------------------------------
def test_missing_or_short_product_is_a_one_line_error_and_old_results_stay(tmp_path):
    root = tmp_path / "wd"
    make_workdir(root, with_truth=False, drop_product_months=5)
    old = root / "evaluation" / "metrics.csv"
    old.parent.mkdir()
    old.write_text("previous\n")
    with pytest.raises(
        InputError, match="CMIP6_DL_historical.nc: network product lacks 5 of the 24 months"
    ):
        ev.evaluate(tiny_config(), root, progress=False, use_qdm=False)
    (root / "product" / "CMIP6_DL_historical.nc").unlink()
    with pytest.raises(InputError, match="CMIP6_DL_historical.nc: file not found \\(network product\\); run `smcore predict"):
        ev.evaluate(tiny_config(), root, progress=False, use_qdm=False)
    with pytest.raises(InputError, match="nowhere: truth folder not found"):
        ev.evaluate(tiny_config(), root, truth=root / "nowhere", progress=False)
    assert old.read_text() == "previous\n"
    assert sorted(p.name for p in old.parent.iterdir()) == ["metrics.csv"]


def test_failure_while_writing_leaves_the_previous_evaluation(tmp_path, monkeypatch):
    root = tmp_path / "wd"
    make_workdir(root, with_truth=False)
    ev.evaluate(tiny_config(), root, progress=False, use_qdm=False)
    before = (root / "evaluation" / "metrics.csv").read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ev, "regional_dataset", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        ev.evaluate(tiny_config(), root, progress=False, use_qdm=False)
    assert (root / "evaluation" / "metrics.csv").read_bytes() == before
    assert sorted(p.name for p in root.iterdir()) == ["evaluation", "prepared", "product"]


def test_a_configured_grid_other_than_the_prepared_one_is_refused(tmp_path):
    root = tmp_path / "wd"
    make_workdir(root, with_truth=False)
    cfg = tiny_config().override(target=GridSpec(lat0=18.0, lon0=71.0, res=0.25, nlat=16, nlon=32))
    with pytest.raises(ConfigError, match="not the configured one"):
        ev.evaluate(cfg, root, progress=False, use_qdm=False)


def test_cli_evaluates_with_the_prepared_configuration_and_reports_errors_in_one_line(
    tmp_path, capsys
):
    root = tmp_path / "wd"
    make_workdir(root, with_truth=False)
    assert cli_main(["evaluate", "--workdir", str(root), "--no-qdm"]) == 0
    out = capsys.readouterr().out
    assert "CMIP6_DL" in out and "ridge_stacking" in out and "MODEL-A" not in out
    assert (root / "evaluation" / "metrics.csv").exists()
    assert cli_main(["evaluate", "--workdir", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no prepared data here" in err[0]
    os.remove(root / "product" / "CMIP6_DL_historical.nc")
    assert cli_main(["evaluate", "--workdir", str(root), "--no-qdm"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("smcore: error: ") and "CMIP6_DL_historical.nc" in err[-1]
