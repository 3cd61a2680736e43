"""YNet inference: the product NetCDF contract, streaming, CF compliance, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from smcore.cli import main as cli_main
from smcore.errors import InputError
from smcore.models.ynet import YNet
from smcore.prep.store import PreparedData, open_prepared
from smcore.train.checkpoint import file_sha256, load_checkpoint, model_from_checkpoint
from smcore.train.data import StaticFields, load_static, month_index
from smcore.train.forced import ensemble_on_fine, historical_slow
from smcore.train.loop import train
from smcore.train.normalization import Normalization
from smcore.train.predict import month_bounds, predict, predict_months, product_chunks
from smcore.train.runtime import select_runtime
from tests.factories.cf import cf_result, high_failures
from tests.factories.ynet import make_prepared, tiny_config

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wd, cfg = make_prepared(tmp_path_factory.mktemp("pred") / "wd")
    train(cfg, wd, progress=False)
    return wd.root


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_product_files_follow_the_contract(trained: Path, tmp_path: Path) -> None:
    wd = _copy(trained, tmp_path / "wd")
    cfg = tiny_config()
    paths = predict(cfg, wd, progress=False)
    assert [p.name for p in paths] == ["CMIP6_DL_historical.nc", "CMIP6_DL_ssp245.nc"]
    prepared = open_prepared(wd)
    land = prepared.static["land_mask"].values == 1
    ckpt = wd / "training" / "best.pt"
    for path, exp in zip(paths, ["historical", "ssp245"]):
        assert path == wd / "product" / f"CMIP6_DL_{exp}.nc"
        ds = xr.open_dataset(path)
        ssm = ds["ssm"]
        assert ssm.dims == ("time", "lat", "lon")
        assert ssm.dtype == np.float32
        assert ssm.attrs["units"] == "m3 m-3"
        assert ssm.attrs["standard_name"] == "volume_fraction_of_condensed_water_in_soil"
        assert ssm.encoding["zlib"]
        assert ssm.encoding["chunksizes"] == (min(24, ssm.sizes["time"]), 8, 12)  # grid < tile
        np.testing.assert_allclose(ds["lat"], cfg.target.lat)
        np.testing.assert_allclose(ds["lon"], cfg.target.lon)
        np.testing.assert_allclose(ds["lat_bnds"], cfg.target.lat_bounds)
        np.testing.assert_allclose(ds["lon_bnds"], cfg.target.lon_bounds)
        v = ssm.values
        assert np.isnan(v[:, ~land]).all()
        assert np.isfinite(v[:, land]).all() and (v[:, land] >= 0).all()
        assert 0.05 < float(np.nanmean(v)) < 0.6
        inputs_time = prepared.inputs(exp)["time"].values
        assert ds.sizes["time"] == len(inputs_time)
        t = ds["time"].values
        assert (t.astype("datetime64[M]") == inputs_time.astype("datetime64[M]")).all()
        assert (ds["time"].dt.day.values >= 14).all() and (ds["time"].dt.day.values <= 16).all()
        assert ds["time"].encoding["calendar"] == "standard"
        assert ds.attrs["Conventions"] == "CF-1.8"
        assert ds.attrs["models_used"] == "M0,M1,M2"
        assert ds.attrs["checkpoint_sha256"] == file_sha256(ckpt)
        assert json.loads(ds.attrs["smcore_config"])["scale"] == 2
        assert ds.attrs["experiment_id"] == exp
        assert "smcore" in ds.attrs["history"] and ds.attrs["smcore_version"]
        ds.close()
    assert not list((wd / "product").glob(".*"))  # no temp files left behind


def test_predict_says_how_far_it_is_while_the_step_runs(
    trained: Path, tmp_path: Path, step_progress
) -> None:
    wd = _copy(trained, tmp_path / "wd")
    written = step_progress(
        wd, "predict", lambda: predict(tiny_config(), wd, progress=False, block_months=12)
    )
    seen = [(b["desc"], b["n"], b["total"]) for bars in written for b in bars]
    for exp in ("historical", "ssp245"):
        months = xr.open_dataset(wd / "product" / f"CMIP6_DL_{exp}.nc").sizes["time"]
        counts = [n for desc, n, total in seen if desc == f"predict {exp}" and total == months]
        assert counts[0] == 0 and counts[-1] == months and 12 in counts  # a block at a time


def test_products_are_chunked_for_month_maps_and_cell_series(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Balanced time × lat × lon chunks (the dashboard reads a month or a cell); the values are
    those of the earlier layout (12 months × the whole grid), only the layout changed."""
    import netCDF4

    import smcore.train.predict as predict_module

    assert predict_module.PRODUCT_CHUNKS == (24, 24, 44)
    assert product_chunks(780, 144, 264) == (24, 24, 44)  # the study's grid: 6 × 6 tiles
    assert product_chunks(10, 8, 12) == (10, 8, 12)  # clipped to a small product
    cfg = tiny_config()
    (new,) = predict(cfg, _copy(trained, tmp_path / "new"), experiments=["historical"],
                     progress=False)
    with netCDF4.Dataset(new) as nc:
        ssm = nc["ssm"]
        ntime = len(nc.dimensions["time"])
        assert ssm.chunking() == [min(24, ntime), 8, 12]
        assert ssm.filters()["zlib"] and ssm.filters()["shuffle"]
    monkeypatch.setattr(predict_module, "PRODUCT_CHUNKS", (12, 10**6, 10**6))  # the old layout
    (old,) = predict(cfg, _copy(trained, tmp_path / "old"), experiments=["historical"],
                     progress=False)
    with netCDF4.Dataset(old) as nc:
        assert nc["ssm"].chunking() == [12, 8, 12]
    a, b = xr.open_dataset(new), xr.open_dataset(old)
    try:
        xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
        np.testing.assert_array_equal(a["ssm"].values, b["ssm"].values)
        assert a["ssm"].attrs == b["ssm"].attrs
    finally:
        a.close()
        b.close()


def test_product_passes_cf_checker(trained: Path, tmp_path: Path) -> None:
    wd = _copy(trained, tmp_path / "wd")
    (path,) = predict(tiny_config(), wd, experiments=["ssp245"], progress=False)
    result, res = cf_result(path, tmp_path / "cf.json")
    failures = high_failures(result)
    assert len(result["high_priorities"]) > 10  # the checker really ran its high-priority checks
    assert failures == [], failures
    assert result["high_count"] == 0
    assert res.returncode == 0, res.stdout + res.stderr


def test_streaming_blocks_and_batches_give_the_same_product(trained: Path, tmp_path: Path) -> None:
    cfg = tiny_config()
    a = _copy(trained, tmp_path / "a")
    b = _copy(trained, tmp_path / "b")
    (pa,) = predict(cfg, a, experiments=["historical"], block_months=72, batch_size=72, progress=False)
    (pb,) = predict(cfg, b, experiments=["historical"], block_months=7, batch_size=3, progress=False)
    va = xr.open_dataset(pa)["ssm"].values
    vb = xr.open_dataset(pb)["ssm"].values
    np.testing.assert_allclose(va, vb, rtol=0, atol=1e-6)


def _trained_network(trained: Path) -> tuple[PreparedData, YNet, Normalization, StaticFields]:
    """The prepared store, the best network, its normalisation and the static fields of ``trained``."""
    prepared = open_prepared(trained)
    state = load_checkpoint(trained / "training" / "best.pt")
    norm = Normalization.from_state(state["normalization"])
    return prepared, model_from_checkpoint(state), norm, load_static(prepared)


def test_predict_months_matches_a_direct_forward_pass(trained: Path) -> None:
    prepared, model, norm, static = _trained_network(trained)
    da = prepared.inputs("historical")
    assert norm.splits_forced  # the default configuration
    slow = historical_slow(norm, da.values, da["time"].values)[:5]
    x = da.values[:5]
    months = month_index(da["time"].values[:5])
    out = predict_months(model, norm, static, x, months, select_runtime("cpu", "off"), 2, slow)
    with torch.no_grad():
        aux = torch.from_numpy(norm.aux_fields(static))[torch.from_numpy(months)]
        raw = model(torch.from_numpy(norm.normalize_x(x, months, slow)), aux)[:, 0].numpy()
    forced = ensemble_on_fine(slow, static.land.shape)
    expected = np.maximum(
        raw * norm.target_scale(months) + static.climatology[months] + forced, 0
    )
    land = static.land
    np.testing.assert_allclose(out[:, land], expected[:, land], rtol=1e-5, atol=1e-6)
    assert np.isnan(out[:, ~land]).all()


def test_predict_runs_channels_last_on_a_cpu_with_the_same_values(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inference on a CPU uses oneDNN's faster channels-last layout (Runtime.inference); the
    values are those of the default layout to rounding."""
    import smcore.train.predict as predict_module

    prepared, model, norm, static = _trained_network(trained)
    da = prepared.inputs("historical")
    x, months = da.values[:6], month_index(da["time"].values[:6])
    slow = historical_slow(norm, da.values, da["time"].values)[:6]
    default = select_runtime("cpu", "off")
    fast = default.inference()
    assert not default.channels_last and fast.channels_last
    ref = predict_months(model, norm, static, x, months, default, 2, slow)
    out = predict_months(fast.place(model), norm, static, x, months, fast, 2, slow)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-6)

    seen = []
    real = predict_module.predict_fields

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(args[5].channels_last)
        return real(*args, **kwargs)

    monkeypatch.setattr(predict_module, "predict_fields", spy)
    predict(tiny_config(), _copy(trained, tmp_path / "wd"), experiments=["historical"], progress=False)
    assert seen and all(seen)


def test_month_bounds_are_mid_month() -> None:
    time = np.array(["2000-01-01", "2000-02-01", "2100-12-01"], dtype="datetime64[ns]")
    mid, bnds = month_bounds(time)
    ref = (np.datetime64("2000-01-01") - np.datetime64("1850-01-01")) / np.timedelta64(1, "D")
    assert bnds[0, 0] == ref and bnds[0, 1] == ref + 31 and mid[0] == ref + 15.5
    assert bnds[1, 1] - bnds[1, 0] == 29  # 2000 is a leap year
    assert (bnds[:-1, 1] <= bnds[1:, 0]).all()


def test_predict_refuses_other_models(trained: Path, tmp_path: Path) -> None:
    other, cfg = make_prepared(tmp_path / "other", tiny_config(channels=4))
    with pytest.raises(InputError, match="trained on models"):
        predict(cfg, other, checkpoint=trained / "training" / "best.pt", progress=False)
    with pytest.raises(InputError, match="no checkpoint"):
        predict(cfg, other, progress=False)


def test_cli_predict(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    wd = _copy(trained, tmp_path / "wd")
    assert cli_main(["predict", "--workdir", str(wd), "--device", "cpu", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "CMIP6_DL_historical.nc" in out and "CMIP6_DL_ssp245.nc" in out
    assert cli_main(["predict", "--workdir", str(wd), "--experiments", "ssp585", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ssp585" in err[0]


def test_inference_streams_in_bounded_blocks(trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import smcore.train.predict as mod

    wd = _copy(trained, tmp_path / "wd")
    sizes: list[int] = []
    real = mod.predict_fields

    def spy(model, norm, static, x, *args, **kwargs):
        sizes.append(x.shape[0])
        return real(model, norm, static, x, *args, **kwargs)

    monkeypatch.setattr(mod, "predict_fields", spy)
    predict(tiny_config(), wd, experiments=["historical"], block_months=12, progress=False)
    assert sizes == [12] * 6  # 72 months, never more than one block in memory


@pytest.mark.parametrize("mode", ["standard", "local"])
def test_other_normalisations_train_and_predict(tmp_path: Path, mode: str) -> None:
    window = 0 if mode == "standard" else 21
    cfg = tiny_config(epochs=1, input_norm=mode, target_norm=mode, forced_window_years=window)
    wd, cfg = make_prepared(tmp_path / "wd", cfg)
    train(cfg, wd, progress=False)
    assert load_checkpoint(wd.checkpoint_best)["normalization"]["target_norm"] == mode
    (path,) = predict(cfg, wd, experiments=["ssp245"], progress=False)
    v = xr.open_dataset(path)["ssm"].values
    land = open_prepared(wd).static["land_mask"].values == 1
    assert np.isfinite(v[:, land]).all() and np.isnan(v[:, ~land]).all()


def test_forced_change_passes_with_unit_gain(trained: Path) -> None:
    """A shift of every model by d (slow anomaly + d, weather unchanged) moves the product by d."""
    prepared, model, norm, static = _trained_network(trained)
    da = prepared.inputs("ssp245")
    x = da.values[:6]
    months = month_index(da["time"].values[:6])
    slow = np.zeros_like(x)
    rt = select_runtime("cpu", "off")
    base = predict_months(model, norm, static, x, months, rt, 6, slow)
    shifted = predict_months(model, norm, static, x + 0.03, months, rt, 6, slow + 0.03)
    land = static.land
    np.testing.assert_allclose((shifted - base)[:, land], 0.03, atol=2e-6)


def test_anomaly_source_reads_windows_that_match_the_full_series(trained: Path) -> None:
    from smcore.train.forced import AnomalySource, slow_anomalies

    prepared = open_prepared(trained)
    norm = Normalization.from_state(load_checkpoint(trained / "training" / "best.pt")["normalization"])
    norm.forced_window = 3.0  # a short window, so that blocks really read partial windows
    hist = prepared.inputs("historical").transpose("time", "model", "clat", "clon")
    ssp = prepared.inputs("ssp245").transpose("time", "model", "clat", "clon")
    t_all = np.concatenate([hist["time"].values, ssp["time"].values])
    x_all = np.concatenate([hist.values, ssp.values])
    full = slow_anomalies(t_all, norm.x_anomaly(x_all, month_index(t_all)), t_all, 3.0)
    source = AnomalySource([hist, ssp], norm)
    t_ssp = ssp["time"].values
    np.testing.assert_allclose(source.slow(t_ssp[:5]), full[len(hist["time"]):][:5], atol=1e-6)
    np.testing.assert_allclose(source.slow(t_ssp), full[len(hist["time"]):], atol=1e-6)
    t_hist = hist["time"].values
    np.testing.assert_allclose(source.slow(t_hist[10:20]), full[10:20], atol=1e-6)


def test_historical_slow_anomalies_are_continued_by_the_scenarios(trained: Path, tmp_path: Path) -> None:
    """The last historical years get a centred fit: the series goes on with the scenario mean."""
    from smcore.train.forced import scenario_continuation, slow_anomalies, window_margin

    prepared = open_prepared(trained)
    state = load_checkpoint(trained / "training" / "best.pt")
    norm = Normalization.from_state(state["normalization"])
    norm.forced_window = 3.0
    hist = prepared.inputs("historical").transpose("time", "model", "clat", "clon")
    t_hist = hist["time"].values
    cont = scenario_continuation(prepared, t_hist.max(), window_margin(3.0))
    assert cont is not None
    ssp = prepared.inputs("ssp245").transpose("time", "model", "clat", "clon")
    n = cont.sizes["time"]
    assert 0 < n <= ssp.sizes["time"]
    assert cont["time"].values.max() <= t_hist.max() + window_margin(3.0)  # the margin only
    np.testing.assert_array_equal(cont.values, ssp.values[:n])  # one scenario: its own mean
    t_all = np.concatenate([t_hist, cont["time"].values])
    x_all = np.concatenate([hist.values, cont.values])
    expected = slow_anomalies(t_all, norm.x_anomaly(x_all, month_index(t_all)), t_hist, 3.0)
    got = historical_slow(norm, hist.values, t_hist, cont)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    alone = historical_slow(norm, hist.values, t_hist)
    assert np.abs(got[-12:] - alone[-12:]).max() > 1e-4  # the end of the record changes
    np.testing.assert_allclose(got[:12], alone[:12], atol=1e-6)  # its start does not


LEGACY = Path(__file__).parent / "data" / "legacy_checkpoints"
LEGACY_SCALINGS = {  # as tests/data/legacy_checkpoints/make_legacy.py wrote them
    "anomaly_forced": dict(input_norm="anomaly", target_norm="anomaly", forced_window_years=3),
    "local": dict(input_norm="local", target_norm="local", forced_window_years=0),
    "standard": dict(input_norm="standard", target_norm="standard", forced_window_years=0),
}


@pytest.mark.parametrize("name", sorted(LEGACY_SCALINGS))
def test_checkpoints_from_before_the_scaling_refactor_predict_the_same(
    tmp_path: Path, name: str
) -> None:
    """A checkpoint written by older code keeps its scaling state and predicts the same values.

    The values are compared to 1e-6 m3 m-3, not bit for bit: the last bits of a convolution
    depend on the thread count and the CPU's instruction set, not only on the code (products
    bit-identical across the refactor on one machine were checked separately).
    """
    ckpt = LEGACY / f"{name}.pt"
    state = load_checkpoint(ckpt)["normalization"]
    again = Normalization.from_state(state).to_state()
    assert list(again) == list(state)  # the same keys, in the same order
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(again[key], value), key
        else:
            assert again[key] == value, key
    cfg = tiny_config(epochs=1, features=4, depth=2, **LEGACY_SCALINGS[name])
    wd, cfg = make_prepared(tmp_path / "wd", cfg, seed=0)
    paths = predict(cfg, wd, checkpoint=ckpt, progress=False)
    assert [p.name for p in paths] == ["CMIP6_DL_historical.nc", "CMIP6_DL_ssp245.nc"]
    for path in paths:
        expected = np.load(LEGACY / f"{name}_{path.stem.split('_')[-1]}.npy")
        with xr.open_dataset(path) as ds:
            got = ds["ssm"].values
        assert np.array_equal(np.isnan(got), np.isnan(expected)), path.name
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6, err_msg=path.name)


def test_a_gaussian_head_adds_a_packed_cf_spread_to_the_product(tmp_path: Path) -> None:
    """train.loss = gaussian_nll: the product gains ``ssm_sd`` (m3 m-3, int16-packed, linked
    from ``ssm``), equal to the network's σ scaled like the value, CF-clean, and the file stays
    within 2x of the value-only product."""
    from smcore.train.losses import LOG_VAR_RANGE

    cfg = tiny_config(epochs=1, loss="gaussian_nll")
    wd, cfg = make_prepared(tmp_path / "wd", cfg)
    train(cfg, wd, progress=False)
    state = load_checkpoint(wd.checkpoint_best)
    model = model_from_checkpoint(state, wd.checkpoint_best)
    assert model.config.outputs == 2
    (path,) = predict(cfg, wd, experiments=["ssp245"], progress=False)
    ds = xr.open_dataset(path)
    assert ds["ssm"].attrs["ancillary_variables"] == "ssm_sd"
    assert ds["ssm_sd"].attrs["units"] == "m3 m-3"
    assert ds["ssm_sd"].encoding["dtype"] == np.int16
    land = open_prepared(wd).static["land_mask"].values == 1
    sd = ds["ssm_sd"].values
    assert np.isfinite(sd[:, land]).all() and np.isnan(sd[:, ~land]).all() and (sd[:, land] > 0).all()
    # σ recomputed from a direct forward pass of the first months
    prepared = open_prepared(wd)
    norm = Normalization.from_state(state["normalization"])
    static = load_static(prepared)
    inputs = prepared.inputs("ssp245")
    x = np.asarray(inputs.values[:3], dtype=np.float32)
    months = month_index(inputs["time"].values[:3])
    from smcore.train.forced import anomaly_source

    slow = anomaly_source(prepared, "ssp245", norm, own=inputs).slow(inputs["time"].values[:3])
    model.eval()
    with torch.no_grad():
        out = model(torch.from_numpy(norm.normalize_x(x, months, slow)),
                    torch.from_numpy(norm.aux_fields(static))[torch.from_numpy(months)])
    expect = np.exp(0.5 * np.clip(out[:, 1].numpy(), *LOG_VAR_RANGE)) * norm.target_scale(months)
    np.testing.assert_allclose(sd[:3][:, land], expect[:, land], atol=1e-5 + 1e-4 * expect.max())
    # CF and size
    result, _ = cf_result(path, tmp_path / "cf.json")
    assert high_failures(result) == []
    plain = tiny_config(epochs=1, loss="mse")
    wd2, plain = make_prepared(tmp_path / "wd2", plain)
    train(plain, wd2, progress=False)
    (path2,) = predict(plain, wd2, experiments=["ssp245"], progress=False)
    assert path.stat().st_size <= 2 * path2.stat().st_size


def test_evaluate_scores_the_calibration_of_a_gaussian_product(tmp_path: Path) -> None:
    """With ``ssm_sd`` in the product, calibration.csv gets CMIP6_DL rows (Gaussian coverage,
    width and CRPS recomputed here from the files)."""
    from scipy.stats import norm as normal

    from smcore.evaluation.evaluate import evaluate

    cfg = tiny_config(epochs=1, loss="gaussian_nll")
    wd, cfg = make_prepared(tmp_path / "wd", cfg)
    train(cfg, wd, progress=False)
    predict(cfg, wd, progress=False)
    evaluate(cfg, wd, progress=False, use_qdm=False)
    import pandas as pd

    df = pd.read_csv(wd.path("calibration"))
    dl = df[df["product"] == "CMIP6_DL"]
    assert dl[["against", "experiment"]].values.tolist() == [["reference", "historical"]]
    row = dl.iloc[0]
    prepared = open_prepared(wd)
    test = prepared.split_mask("test")
    ref = np.asarray(prepared.static["reference"].values[test], dtype=np.float64)
    with xr.open_dataset(wd.product("historical")) as ds:
        keep = np.isin(ds["time"].values.astype("datetime64[M]"),
                       prepared.static["time"].values[test].astype("datetime64[M]"))
        mu = ds["ssm"].values[keep].astype(np.float64)
        sd = ds["ssm_sd"].values[keep].astype(np.float64)
    ok = np.isfinite(ref) & np.isfinite(mu) & np.isfinite(sd)
    z = normal.ppf(0.95)
    inside = np.abs(ref[ok] - mu[ok]) <= z * sd[ok]
    assert row["n"] == ok.sum()
    assert row["coverage"] == pytest.approx(inside.mean(), abs=1e-6)
    assert row["width"] == pytest.approx((2 * z * sd[ok]).mean(), rel=1e-5)
