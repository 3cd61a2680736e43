"""YNet training: masked loss, overfitting, determinism, checkpoints, resume, interrupts, CLI."""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from smcore.cli import main as cli_main
from smcore.config import SCALING_MODES
from smcore.errors import ConfigError, InputError
from smcore.prep.store import open_prepared
from smcore.train.checkpoint import REQUIRED_KEYS, load_checkpoint, model_from_checkpoint
from smcore.train.data import load_training_data
from smcore.train.forced import (
    decimal_years,
    ensemble_on_fine,
    historical_slow,
    local_linear_matrix,
    scenario_continuation,
    window_margin,
)
from smcore.train.loop import TrainingInterrupted, masked_mse, train, train_epoch
from smcore.train.normalization import AUX_FIELDS, LEGACY_AUX_FIELDS, Normalization
from smcore.train.runtime import select_runtime
from smcore.train.scaling import INPUT_SCALERS, TARGET_SCALERS
from tests.factories.ynet import tiny_config

torch.set_num_threads(1)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model_state"]


def _assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# -- loss --------------------------------------------------------------------
def test_ocean_pixels_do_not_change_the_loss() -> None:
    torch.manual_seed(0)
    land = torch.zeros(1, 1, 6, 8, dtype=torch.bool)
    land[..., 2:, 3:] = True
    pred = torch.randn(3, 1, 6, 8, requires_grad=True)
    target = torch.randn(3, 1, 6, 8)
    loss = masked_mse(pred, target, land)
    expected = ((pred - target)[land.expand_as(pred)] ** 2).mean()
    assert torch.allclose(loss, expected)

    ocean = ~land.expand_as(target)
    target2 = target.clone()
    target2[ocean] = float("nan")
    target2[0][ocean[0]] = 1e6
    pred2 = pred.detach().clone()
    pred2[ocean] = 123.0
    pred2.requires_grad_(True)
    loss2 = masked_mse(pred2, target2, land)
    assert torch.equal(loss.detach(), loss2.detach())
    loss2.backward()
    assert torch.isfinite(pred2.grad).all()
    assert (pred2.grad[ocean] == 0).all()
    assert (pred2.grad[~ocean] != 0).any()


# -- data --------------------------------------------------------------------
def test_normalisation_uses_training_split_only(ynet_prepared: Path) -> None:
    prepared = open_prepared(ynet_prepared)
    data = load_training_data(prepared)
    tr = data.splits["train"]
    assert len(tr) == 48 and len(data.splits["val"]) == 12 and len(data.splits["test"]) == 12
    land = data.land[0, 0]
    ytr = data.y[tr, 0][:, land]
    assert abs(float(ytr.mean())) < 1e-3  # anomaly of the training climatology: mean 0 on train
    assert abs(float(ytr.std()) - 1.0) < 0.02
    assert float(data.y[:, 0][:, ~land].abs().max()) == 0.0  # ocean target zeroed
    xtr = data.x[tr]
    assert float(xtr.mean(dim=(0, 2, 3)).abs().max()) < 1e-4
    # changing validation/test months must not change the fitted scaling
    norm = data.norm
    state = norm.to_state()
    again = Normalization.from_state(state)
    assert again.target.scale == norm.target.scale
    assert np.array_equal(again.inputs.clim, norm.inputs.clim)
    assert data.aux.shape == (12, len(AUX_FIELDS)) + tuple(land.shape)
    assert torch.equal(data.aux[:, 2].bool(), land.expand(12, -1, -1))
    # latitude/longitude: -1 … 1 across the domain, rising northwards/eastwards, 0 off land
    lat_f, lon_f = data.aux[0, AUX_FIELDS.index("latitude")], data.aux[0, AUX_FIELDS.index("longitude")]
    assert float(lat_f.abs().max()) <= 1.0 and float(lon_f.abs().max()) <= 1.0
    assert float(lat_f[~land].abs().max()) == 0.0
    rows = lat_f.sum(1) / land.sum(1).clamp(min=1)
    lat = np.asarray(prepared.static["lat"].values)
    assert np.all(np.diff(rows[land.any(1)].numpy()) * np.sign(np.diff(lat)[0]) > 0)
    # checkpoints from before the coordinates keep their three fields
    legacy = {k: v for k, v in state.items() if k != "aux"}
    assert Normalization.from_state(legacy).aux == LEGACY_AUX_FIELDS
    assert again.aux == AUX_FIELDS


@pytest.mark.parametrize("mode", SCALING_MODES)
def test_scaling_modes_are_registered_classes_that_invert(ynet_prepared: Path, mode: str) -> None:
    assert tuple(INPUT_SCALERS) == tuple(TARGET_SCALERS) == SCALING_MODES
    prepared = open_prepared(ynet_prepared)
    data = load_training_data(prepared, input_norm=mode, target_norm=mode)
    norm = data.norm
    assert type(norm.inputs) is INPUT_SCALERS[mode] and type(norm.target) is TARGET_SCALERS[mode]
    assert (norm.input_norm, norm.target_norm) == (mode, mode)
    x = np.asarray(prepared.inputs("historical").values, dtype=np.float32)
    months = data.month.numpy()
    assert np.isfinite(x).all()
    back = norm.inputs.invert(norm.normalize_x(x, months), months)
    np.testing.assert_allclose(back, x, atol=1e-6)
    y = np.nan_to_num(prepared.static["reference"].values)
    clim = data.static.climatology
    back = norm.target.invert(norm.target.apply(y, clim, months), clim, months)
    np.testing.assert_allclose(back[:, data.static.land], y[:, data.static.land], atol=1e-6)


def test_standard_normalisation_round_trip(ynet_prepared: Path) -> None:
    prepared = open_prepared(ynet_prepared)
    data = load_training_data(prepared, input_norm="standard", target_norm="standard")
    ref = prepared.static["reference"].values
    months = data.month.numpy()
    back = data.norm.denormalize_y(data.y[:, 0].numpy(), data.static.climatology, months)
    land = data.static.land
    assert np.allclose(back[:, land], ref[:, land], atol=1e-6)


@pytest.mark.parametrize("mode", ["standard", "anomaly", "local"])
def test_weighted_loss_is_physical_mse_in_every_mode(ynet_prepared: Path, mode: str) -> None:
    prepared = open_prepared(ynet_prepared)
    data = load_training_data(prepared, input_norm=mode, target_norm=mode)
    norm, static = data.norm, data.static
    months = data.month.numpy()[:6]
    ref = prepared.static["reference"].values[:6]
    rng = np.random.default_rng(1)
    guess = ref + rng.normal(0, 0.02, ref.shape)
    g = norm.normalize_y(guess, static.climatology, months)
    assert np.allclose(norm.denormalize_y(g, static.climatology, months)[:, static.land],
                       guess[:, static.land], atol=1e-6)
    w = None if data.weight is None else data.weight[torch.from_numpy(months)]
    assert (w is None) == (mode != "local")
    loss = masked_mse(torch.from_numpy(np.nan_to_num(g))[:, None], data.y[:6], data.land, w)
    physical = np.mean((guess - ref)[:, static.land] ** 2)
    scale = norm.target.scale
    assert float(loss) == pytest.approx(physical / scale**2, rel=1e-4)


# -- forced / weather split ---------------------------------------------------
def test_local_linear_smoother_follows_trends_to_the_ends() -> None:
    t_src = np.arange(1950, 2015) + 0.5
    t_dst = decimal_years(pd.date_range("1950-01-01", "2014-12-01", freq="MS").values)
    m = local_linear_matrix(t_src, t_dst, 21)
    assert m.shape == (780, 65)
    np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-12)
    line = 0.3 - 0.002 * (t_src - 1950)
    np.testing.assert_allclose(m @ line, 0.3 - 0.002 * (t_dst - 1950), atol=1e-12)  # no end lag
    assert np.count_nonzero(m[390]) <= 22  # local: a 21-year window
    one = local_linear_matrix(np.array([2000.5]), np.array([1999.0, 2030.0]), 21)
    np.testing.assert_allclose(one, 1.0)


def test_slow_part_is_removed_from_inputs_and_added_to_offset(ynet_prepared: Path) -> None:
    prepared = open_prepared(ynet_prepared)
    data = load_training_data(prepared, forced_window=21)
    norm = data.norm
    assert norm.splits_forced and norm.to_state()["forced_window"] == 21
    time = data.time
    x = prepared.inputs("historical").values
    slow = historical_slow(norm, x, time)
    # a linear trend added to every model ends up in the slow part, not in what the network sees
    months = data.month.numpy()
    t = decimal_years(time)
    trended = x + (0.004 * (t - t[0]))[:, None, None, None].astype(np.float32)
    fast = norm.normalize_x(x, months, slow)
    fast_trended = norm.normalize_x(trended, months, historical_slow(norm, trended, time))
    np.testing.assert_allclose(fast_trended, fast, atol=2e-4)
    assert np.abs(norm.normalize_x(trended, months, slow) - fast).max() > 0.1
    # the target's offset holds the ensemble slow anomaly (the historical series continued by
    # the scenarios, as in training); denormalising inverts the scaling
    cont = scenario_continuation(prepared, time.max(), window_margin(21))
    assert cont is not None
    forced = ensemble_on_fine(historical_slow(norm, x, time, cont), data.static.land.shape)
    ref = prepared.static["reference"].values
    back = norm.denormalize_y(data.y[:, 0].numpy(), data.static.climatology, months, forced)
    land = data.static.land
    np.testing.assert_allclose(back[:, land], ref[:, land], atol=1e-6)
    with pytest.raises(ValueError, match="slow="):
        norm.normalize_x(x, months)
    with pytest.raises(ConfigError):
        train(tiny_config(input_norm="standard", target_norm="standard", forced_window_years=5),
              ynet_prepared, progress=False)


# -- optimisation ------------------------------------------------------------
def test_tiny_overfit_loss_falls_by_90_percent(ynet_prepared: Path) -> None:
    cfg = tiny_config(features=16, depth=3, lr=3e-3)
    prepared = open_prepared(ynet_prepared)
    data = load_training_data(prepared)
    rt = select_runtime("cpu", "off")
    torch.manual_seed(0)
    from smcore.train.loop import build_model, evaluate

    model = build_model(cfg, len(data.channels), data.static.scale)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    four = data.splits["train"][:4]
    first = evaluate(model, data, four, 4, rt).mean()
    for _ in range(300):
        train_epoch(model, opt, data, four, 4, rt)
    last = evaluate(model, data, four, 4, rt).mean()
    print(f"overfit: loss {first:.4f} -> {last:.4f}")
    assert last <= 0.1 * first


@pytest.mark.parametrize("micro", [1, 2, 3])
def test_micro_batches_give_the_batch_gradient(ynet_prepared: Path, micro: int) -> None:
    """A batch run in passes of ``micro`` months (uneven last pass included) gets the same
    gradient and loss as one pass, and leaves the optimiser in the same state."""
    prepared = open_prepared(ynet_prepared)
    data = load_training_data(prepared)
    from smcore.train.loop import build_model

    results = []
    for m in (5, micro):
        rt = select_runtime("cpu", "off", micro_batch=m)
        assert len(rt.parts(5)) == -(-5 // m)
        torch.manual_seed(0)
        model = build_model(tiny_config(), len(data.channels), data.static.scale)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        res = train_epoch(model, opt, data, data.splits["train"][:5], 5, rt)
        results.append((res, {k: p.grad.clone() for k, p in model.named_parameters()}, model.state_dict()))
    (one, g1, w1), (many, g2, w2) = results
    assert many.samples == one.samples == 5 and many.steps == one.steps == 1
    assert many.mean() == pytest.approx(one.mean(), rel=1e-6)
    for k in g1:
        torch.testing.assert_close(g2[k], g1[k], rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(w2[k], w1[k], rtol=1e-5, atol=1e-7)
    assert any(g.abs().max() > 0 for g in g1.values())


def test_micro_batch_defaults_and_errors() -> None:
    from smcore.train.precision import FALLBACK_MICRO_BATCH

    # without a shape to measure (smcore.train.precision; tests/test_precision.py): the fallback
    assert select_runtime("cpu", "off").micro_batch == FALLBACK_MICRO_BATCH
    assert select_runtime("cpu", "off", micro_batch=2).parts(5) == [slice(0, 2), slice(2, 4), slice(4, 5)]
    with pytest.raises(ConfigError, match="micro-batch must be >= 0"):
        select_runtime("cpu", "off", micro_batch=-1)


def test_no_host_sync_per_step(ynet_prepared: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The step loop never calls .item()/float() on a tensor (the CUDA path relies on it)."""
    prepared = open_prepared(ynet_prepared)
    data = load_training_data(prepared)
    rt = select_runtime("cpu", "off")
    cfg = tiny_config()
    from smcore.train.loop import build_model

    model = build_model(cfg, len(data.channels), data.static.scale)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    calls: list[str] = []
    originals = {name: getattr(torch.Tensor, name) for name in ("item", "__float__", "tolist", "cpu", "numpy")}

    def spy(name: str):
        def wrapped(self, *args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if f"smcore{os.sep}" in caller:  # syncs inside torch's own CPU optimiser are not ours
                calls.append(f"{name} from {caller}")
            return originals[name](self, *args, **kwargs)
        return wrapped

    for name in originals:
        monkeypatch.setattr(torch.Tensor, name, spy(name))
    res = train_epoch(model, opt, data, data.splits["train"][:12], 4, rt)
    assert res.steps == 3 and res.samples == 12
    assert calls == []


# -- the full loop -----------------------------------------------------------
def test_train_writes_contract_files(fresh_ynet_workdir) -> None:
    wd = fresh_ynet_workdir()
    cfg = tiny_config(epochs=3)
    summary = train(cfg, wd, progress=False)
    hist = pd.read_csv(wd / "training" / "history.csv")
    assert list(hist.columns) == ["epoch", "train_loss", "val_loss", "lr", "seconds"]
    assert hist["epoch"].tolist() == [1, 2, 3]
    assert np.isfinite(hist[["train_loss", "val_loss"]].to_numpy()).all()
    on_disk = json.loads((wd / "training" / "summary.json").read_text())
    for key in ("n_parameters", "device", "amp", "best_epoch", "best_val_loss", "epochs_run", "seconds"):
        assert key in on_disk
    assert on_disk["epochs_run"] == 3 and summary["device"] == "cpu"
    best = load_checkpoint(wd / "training" / "best.pt")
    last = load_checkpoint(wd / "training" / "last.pt")
    assert set(REQUIRED_KEYS) <= set(best) and set(REQUIRED_KEYS) <= set(last)
    assert last["epoch"] == 3
    assert best["epoch"] == on_disk["best_epoch"] == int(hist["val_loss"].idxmin()) + 1
    assert best["best_val_loss"] == pytest.approx(hist["val_loss"].min())
    assert best["channels"] == ["M0", "M1", "M2"]
    assert json.loads(best["config_json"])["train"]["epochs"] == 3
    model = model_from_checkpoint(best)
    assert model.config.in_channels == 3 and model.config.scale == 2


def test_training_says_how_far_it_is_while_the_step_runs(fresh_ynet_workdir, step_progress) -> None:
    wd = fresh_ynet_workdir()
    cfg = tiny_config(epochs=2)
    # not drawn in the terminal (progress=False), told to the step's file all the same
    written = step_progress(wd, "train", lambda: train(cfg, wd, progress=False))
    bars = [[(b["desc"], b["n"], b["total"], b["unit"]) for b in w] for w in written]
    months = max(b[-1][2] for b in bars if len(b) == 2)
    y0, y1 = cfg.periods.train
    assert months == 12 * (int(y1) - int(y0) + 1)  # every training month, as the bar counts
    assert [("train", 0, 2, "epoch"), ("epoch 1", months, months, "month")] in bars
    assert [("train", 1, 2, "epoch"), ("epoch 2", 0, months, "month")] in bars
    assert [("train", 2, 2, "epoch")] in bars and bars[-1] == []  # then every bar closed


def test_cpu_training_is_deterministic(fresh_ynet_workdir) -> None:
    cfg = tiny_config(epochs=2, amp="auto", dropout=0.2)
    a = fresh_ynet_workdir("a")
    b = fresh_ynet_workdir("b")
    train(cfg, a, progress=False)
    train(cfg, b, progress=False)
    _assert_same_weights(_weights(a / "training" / "last.pt"), _weights(b / "training" / "last.pt"))
    c = fresh_ynet_workdir("c")
    train(replace(cfg, train=replace(cfg.train, seed=8)), c, progress=False)
    wa, wc = _weights(a / "training" / "last.pt"), _weights(c / "training" / "last.pt")
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)


def test_resume_matches_uninterrupted_run(fresh_ynet_workdir) -> None:
    cfg2 = tiny_config(epochs=2, dropout=0.1)
    cfg1 = replace(cfg2, train=replace(cfg2.train, epochs=1))
    full = fresh_ynet_workdir("full")
    train(cfg2, full, progress=False)
    part = fresh_ynet_workdir("part")
    train(cfg1, part, progress=False)
    assert load_checkpoint(part / "training" / "last.pt")["epoch"] == 1
    train(cfg2, part, resume=True, progress=False)
    _assert_same_weights(_weights(full / "training" / "last.pt"), _weights(part / "training" / "last.pt"))
    h_full = pd.read_csv(full / "training" / "history.csv")
    h_part = pd.read_csv(part / "training" / "history.csv")
    assert h_part["epoch"].tolist() == [1, 2]
    assert np.allclose(h_full[["train_loss", "val_loss"]], h_part[["train_loss", "val_loss"]])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_leaves_usable_checkpoint_and_resume_finishes(
    signum: int,
    fresh_ynet_workdir,
) -> None:
    wd = fresh_ynet_workdir()
    cfg = tiny_config(epochs=3)

    def kill_after_first(epoch: int, record: dict) -> None:
        if epoch == 1:
            signal.raise_signal(signum)

    before = signal.getsignal(signum)
    with pytest.raises(TrainingInterrupted, match="--resume"):
        train(cfg, wd, progress=False, on_epoch=kill_after_first)
    assert signal.getsignal(signum) == before  # handlers restored
    last = load_checkpoint(wd / "training" / "last.pt")
    assert last["epoch"] == 1 and last["partial_epoch"] is True
    model_from_checkpoint(last)  # usable
    assert pd.read_csv(wd / "training" / "history.csv")["epoch"].tolist() == [1]
    summary = train(cfg, wd, resume=True, progress=False)
    assert pd.read_csv(wd / "training" / "history.csv")["epoch"].tolist() == [1, 2, 3]
    assert load_checkpoint(wd / "training" / "last.pt")["epoch"] == 3
    assert summary["epochs_run"] == 3


def test_early_stopping(fresh_ynet_workdir) -> None:
    wd = fresh_ynet_workdir()
    cfg = tiny_config(epochs=30, lr=1e-9, early_stopping=2, plateau_patience=0)
    summary = train(cfg, wd, progress=False)
    assert summary["stopped_early"] is True
    assert summary["epochs_run"] < 30


def test_resume_refuses_other_architecture(fresh_ynet_workdir) -> None:
    wd = fresh_ynet_workdir()
    train(tiny_config(epochs=1), wd, progress=False)
    with pytest.raises(ConfigError, match="cannot resume"):
        train(tiny_config(epochs=2, features=4), wd, resume=True, progress=False)


def test_config_must_match_prepared_store(ynet_prepared: Path, tmp_path: Path) -> None:
    cfg = tiny_config()
    bad = replace(cfg, periods=replace(cfg.periods, train=(2000, 2002)))
    with pytest.raises(ConfigError, match="rerun `smcore prepare`"):
        train(bad, ynet_prepared, progress=False)
    with pytest.raises(ConfigError, match="batch size"):
        train(replace(cfg, train=replace(cfg.train, batch_size=0)), ynet_prepared, progress=False)
    with pytest.raises(InputError, match="no prepared data"):
        train(cfg, tmp_path / "empty", progress=False)


def test_runtime_selection() -> None:
    rt = select_runtime("cpu", "off")
    assert rt.amp_dtype is None and not rt.channels_last and rt.name == "cpu"
    assert select_runtime("auto", "auto").device.type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA"):
            select_runtime("cuda", "auto")
    with pytest.raises(ConfigError, match="unknown device"):
        select_runtime("tpu", "auto")


def test_corrupt_checkpoint_is_a_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="cannot read checkpoint"):
        load_checkpoint(bad)


# -- CLI ---------------------------------------------------------------------
def test_cli_train_and_resume(
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    fresh_ynet_workdir,
) -> None:
    wd = fresh_ynet_workdir()
    assert cli_main(["train", "--workdir", str(wd), "--epochs", "1", "--device", "cpu", "--no-progress"]) == 0
    assert pd.read_csv(wd / "training" / "history.csv")["epoch"].tolist() == [1]
    ck = load_checkpoint(wd / "training" / "last.pt")
    cfg = json.loads(ck["config_json"])
    assert cfg["train"]["epochs"] == 1 and cfg["target"]["nlat"] == 8  # config from the manifest
    assert cli_main(["train", "--workdir", str(wd), "--epochs", "2", "--resume", "--no-progress"]) == 0
    assert pd.read_csv(wd / "training" / "history.csv")["epoch"].tolist() == [1, 2]
    capsys.readouterr()
    assert cli_main(["train", "--workdir", str(tmp_path / "nowhere"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no prepared data" in err[0]
    assert cli_main(["train", "--workdir", str(wd), "--device", "tpu", "--no-progress"]) == 2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_path_trains_and_resumes(fresh_ynet_workdir) -> None:
    wd = fresh_ynet_workdir()
    cfg = tiny_config(epochs=2, device="cuda", amp="auto")
    summary = train(cfg, wd, progress=False)
    assert summary["amp"] == ("bf16" if torch.cuda.is_bf16_supported() else "off")
    assert summary["epochs_run"] == 2
    ck = load_checkpoint(wd / "training" / "last.pt")
    assert all(t.device.type == "cpu" for t in ck["model_state"].values())
    assert "cuda" in ck["rng_state"]
    train(replace(cfg, train=replace(cfg.train, epochs=3)), wd, resume=True, progress=False)
    assert pd.read_csv(wd / "training" / "history.csv")["epoch"].tolist() == [1, 2, 3]
