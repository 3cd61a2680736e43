"""Deep ensembles: ``smcore train --members K`` and how predict combines the members."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from smcore.config import TrainConfig
from smcore.errors import ConfigError
from smcore.train.checkpoint import ensemble_checkpoints, file_sha256, load_checkpoint
from smcore.train.loop import train
from smcore.train.predict import combine_members, ensemble_sha256, predict
from tests.factories.cf import cf_result, high_failures
from tests.factories.ynet import make_prepared, tiny_config

torch.set_num_threads(1)


def test_combine_members_by_hand() -> None:
    """Two members at two cells: the mean, the mixture's sd and the members' spread."""
    def cells(*values: float) -> np.ndarray:
        return np.array([[values]], np.float32)

    a = {"ssm": cells(0.20, 0.10), "ssm_sd": cells(0.03, 0.01)}
    b = {"ssm": cells(0.30, 0.10), "ssm_sd": cells(0.04, 0.02)}
    out = combine_members([a, b])
    np.testing.assert_allclose(out["ssm"], [[[0.25, 0.10]]], atol=1e-7)
    # spread: population sd of (0.2, 0.3) = 0.05 and of (0.1, 0.1) = 0
    np.testing.assert_allclose(out["ssm_members_spread"], [[[0.05, 0.0]]], atol=1e-7)
    # mixture: sqrt(mean(sd²) + spread²) = sqrt((0.0009 + 0.0016)/2 + 0.0025), sqrt((1e-4 + 4e-4)/2)
    np.testing.assert_allclose(
        out["ssm_sd"], [[[np.sqrt(0.00125 + 0.0025), np.sqrt(0.00025)]]], rtol=1e-6
    )
    # one member is passed through; values without a spread combine without ssm_sd
    assert combine_members([a]) == a
    plain = combine_members([{"ssm": a["ssm"]}, {"ssm": b["ssm"]}])
    assert set(plain) == {"ssm", "ssm_members_spread"}
    with pytest.raises(ValueError, match="different fields"):
        combine_members([a, {"ssm": b["ssm"]}])
    assert ensemble_sha256(["ab"]) == "ab" and len(ensemble_sha256(["ab", "cd"])) == 64


def test_members_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="members must be >= 1"):
        TrainConfig(members=0)


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory: pytest.TempPathFactory):
    """Two Gaussian-head members trained on the tiny store, and their products."""
    cfg = tiny_config(epochs=1, loss="gaussian_nll", members=2)
    wd, cfg = make_prepared(tmp_path_factory.mktemp("members") / "wd", cfg)
    summary = train(cfg, wd, progress=False)
    paths = predict(cfg, wd, experiments=["ssp245"], progress=False)
    return wd, cfg, summary, paths


def test_each_member_is_the_single_run_of_its_seed(ensemble, tmp_path: Path) -> None:
    """Member k's network equals a one-network run with seed + k: reproducible from its seed."""
    wd, cfg, summary, _ = ensemble
    assert ensemble_checkpoints(wd) == [wd.member(0).checkpoint_best, wd.member(1).checkpoint_best]
    assert wd.member(1).checkpoint_best == wd.root / "training" / "members" / "m1" / "best.pt"
    assert summary["members"] == 2
    assert summary["member_seeds"] == [cfg.train.seed, cfg.train.seed + 1]
    written = json.loads(wd.summary.read_text())
    assert written["members"] == 2 and len(written["member_best_val_loss"]) == 2
    single_cfg = cfg.override(**{"train.members": 1, "train.seed": cfg.train.seed + 1})
    single, single_cfg = make_prepared(tmp_path / "single", single_cfg)
    train(single_cfg, single, progress=False)
    got = load_checkpoint(wd.member(1).checkpoint_best)["model_state"]
    want = load_checkpoint(single.checkpoint_best)["model_state"]
    assert got.keys() == want.keys()
    for name in want:
        assert torch.equal(got[name], want[name]), name
    # the members differ from each other
    first = load_checkpoint(wd.member(0).checkpoint_best)["model_state"]
    assert any(not torch.equal(first[n], got[n]) for n in first)


def test_the_product_combines_the_members(ensemble, tmp_path: Path) -> None:
    """ssm is the members' mean, ssm_members_spread their sd, ssm_sd their mixture's sd; the
    product names every member's checkpoint; it is CF-clean."""
    import shutil

    wd, cfg, _, (written,) = ensemble
    path = Path(shutil.copy(written, tmp_path / "ensemble.nc"))
    members = []
    for k, network in enumerate(ensemble_checkpoints(wd)):
        (p,) = predict(cfg, wd, checkpoint=network, experiments=["ssp245"],
                       progress=False)
        members.append(p.rename(tmp_path / f"m{k}.nc"))
    shutil.copy(path, written)  # the fixture's product, as the ensemble wrote it
    with (xr.open_dataset(path) as ds, xr.open_dataset(members[0]) as a,
          xr.open_dataset(members[1]) as b):
        assert ds["ssm"].attrs["ancillary_variables"] == "ssm_sd ssm_members_spread"
        assert ds["ssm_members_spread"].encoding["dtype"] == np.int16
        assert int(ds.attrs["ensemble_members"]) == 2
        shas = [file_sha256(p) for p in ensemble_checkpoints(wd)]
        assert ds.attrs["member_checkpoints_sha256"] == ",".join(shas)
        assert ds.attrs["checkpoint_sha256"] == ensemble_sha256(shas)
        mu = np.stack([a["ssm"].values, b["ssm"].values]).astype(np.float64)
        sd = np.stack([a["ssm_sd"].values, b["ssm_sd"].values]).astype(np.float64)
        np.testing.assert_allclose(ds["ssm"].values, mu.mean(0), atol=1e-6)
        # packed in steps of 1e-5 m3 m-3: half a step of rounding on top of the members' own
        np.testing.assert_allclose(ds["ssm_members_spread"].values, mu.std(0), atol=1.1e-5)
        np.testing.assert_allclose(
            ds["ssm_sd"].values, np.sqrt((sd**2).mean(0) + mu.var(0)), atol=2e-5
        )
        assert int(a.attrs["ensemble_members"]) == 1 and "member_checkpoints_sha256" not in a.attrs
    result, _ = cf_result(path, tmp_path / "cf.json")
    assert high_failures(result) == []


def test_a_smaller_ensemble_removes_the_extra_members(ensemble, tmp_path: Path) -> None:
    """Retraining with --members 1 removes member 1, so predict no longer combines it."""
    import shutil

    wd0, cfg, _, _ = ensemble
    root = tmp_path / "wd"
    shutil.copytree(wd0.root, root)
    from smcore.workdir import WorkDir

    wd = WorkDir(root)
    assert len(ensemble_checkpoints(wd)) == 2
    train(cfg.override(**{"train.members": 1}), wd, progress=False)
    assert ensemble_checkpoints(wd) == [wd.checkpoint_best]
    assert not (root / "training" / "members" / "m1").exists()
    (path,) = predict(cfg, wd, experiments=["ssp245"], progress=False)
    with xr.open_dataset(path) as ds:
        assert "ssm_members_spread" not in ds and int(ds.attrs["ensemble_members"]) == 1


def test_cli_train_members(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`smcore train --members 2` writes both members and says so; --members 0 is one line."""
    from smcore.cli import main as cli_main

    wd, _ = make_prepared(tmp_path / "wd", tiny_config(epochs=1))
    args = ["train", "--workdir", str(wd.root), "--epochs", "1", "--no-progress"]
    assert cli_main([*args, "--members", "2"]) == 0
    out = capsys.readouterr().out
    assert "ensemble member 2 of 2" in out
    assert ensemble_checkpoints(wd) == [wd.member(0).checkpoint_best, wd.member(1).checkpoint_best]
    assert cli_main([*args, "--members", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "members must be >= 1" in err[0]


def test_predict_refuses_an_ensemble_with_a_member_missing(ensemble, tmp_path: Path) -> None:
    """A member whose training did not finish (no best.pt) stops predict with one line naming
    it, instead of a silently smaller ensemble."""
    import shutil

    from smcore.errors import InputError
    from smcore.workdir import WorkDir

    wd0, cfg, _, _ = ensemble
    shutil.copytree(wd0.root, tmp_path / "wd")
    wd = WorkDir(tmp_path / "wd")
    wd.member(1).checkpoint_best.unlink()
    with pytest.raises(InputError, match="member 1 of the 2-network ensemble") as info:
        predict(cfg, wd, experiments=["ssp245"], progress=False)
    assert str(wd.member(1).checkpoint_best) in str(info.value)
