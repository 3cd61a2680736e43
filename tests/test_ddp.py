"""Data-parallel training (``smcore train --ddp``): sharding, parity with one process, errors.

The end-to-end test runs ``torchrun --standalone --nproc-per-node 2 -m smcore train --ddp`` on the
CPU (gloo) and compares with single-process training of the same global batch.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from smcore.cli import main as cli_main
from smcore.train.checkpoint import load_checkpoint
from smcore.train.ddp import TORCHRUN_VARS, shard_batch
from smcore.train.loop import masked_mse
from tests.factories.ynet import tiny_config

pytestmark = pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="torch.distributed with gloo is not available",
)

torch.set_num_threads(1)
TRAINING_FILES = {"best.pt", "history.csv", "last.pt", "summary.json"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _no_torchrun_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in TORCHRUN_VARS:
        monkeypatch.delenv(k, raising=False)


# -- sharding ----------------------------------------------------------------
@pytest.mark.parametrize("n, world", [(4, 2), (8, 4), (3, 2), (5, 3), (1, 3)])
def test_shards_make_up_the_global_batch(n: int, world: int) -> None:
    batch = torch.randperm(50)[:n]
    parts = [shard_batch(batch, r, world) for r in range(world)]
    real = [idx[:k] for idx, k, _ in parts]
    assert torch.equal(torch.cat(real), batch)  # the union, in order, is the single-process batch
    assert sum(k for _, k, _ in parts) == n
    for idx, k, factor in parts:
        assert idx.shape[0] == max(k, 1)  # an empty share still runs one (weight-0) month
        assert factor == pytest.approx(world * k / n)
    if n % world == 0:
        assert all(f == 1.0 for _, _, f in parts)


def test_scaled_shard_gradients_average_to_the_global_gradient() -> None:
    """What DDP computes (mean over ranks of the scaled local gradients) is the global gradient."""
    torch.manual_seed(0)
    land = torch.rand(1, 1, 4, 5) > 0.3
    target = torch.randn(5, 1, 4, 5)
    w = torch.nn.Parameter(torch.randn(5, 1, 4, 5))
    batch = torch.arange(5)

    (g_global,) = torch.autograd.grad(masked_mse(w[batch], target[batch], land), w)
    world = 3
    g_mean = torch.zeros_like(w)
    for r in range(world):
        idx, _, factor = shard_batch(batch, r, world)
        (g,) = torch.autograd.grad(masked_mse(w[idx], target[idx], land) * factor, w)
        g_mean += g / world
    assert torch.allclose(g_mean, g_global, rtol=1e-6, atol=1e-8)


# -- end to end ----------------------------------------------------------------
def test_ddp_on_two_cpu_processes_matches_one_process(fresh_ynet_workdir) -> None:
    # the manifest holds tiny_config: features 8, depth 3, dropout 0
    args = ["train", "--epochs", "2", "--batch-size", "4", "--device", "cpu", "--amp", "off",
            "--seed", "7", "--no-progress"]
    single = fresh_ynet_workdir("single")
    multi = fresh_ynet_workdir("ddp")
    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_VARS}
    env["OMP_NUM_THREADS"] = "1"
    # each rank's 2 months go through in 2 passes (DDP's no_sync on the first): the same gradients
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "smcore", *args, "--micro-batch", "1", "--ddp", "--workdir", str(multi)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # the single-process reference runs meanwhile, in this process, in one pass of 4 months
    assert cli_main([*args, "--workdir", str(single)]) == 0
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err[-3000:]
    assert out.count("trained 2 epochs") == 1, out  # rank 0 alone reports

    # one set of files, no temporary or per-rank ones
    assert {p.name for p in (multi / "training").iterdir()} == TRAINING_FILES
    for name in ("best.pt", "last.pt"):
        a = load_checkpoint(single / "training" / name)
        b = load_checkpoint(multi / "training" / name)
        assert a["model_state"].keys() == b["model_state"].keys()  # bare YNet keys, no "module."
        for k, v in a["model_state"].items():
            torch.testing.assert_close(b["model_state"][k], v, rtol=1e-5, atol=1e-6)
        assert a["epoch"] == b["epoch"] and a["best_epoch"] == b["best_epoch"]
    h1 = pd.read_csv(single / "training" / "history.csv")
    h2 = pd.read_csv(multi / "training" / "history.csv")
    assert h2["epoch"].tolist() == [1, 2]
    for col in ("train_loss", "val_loss", "lr"):
        assert h2[col].to_numpy() == pytest.approx(h1[col].to_numpy(), rel=1e-5)
    summary = json.loads((multi / "training" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["batch_size"] == 4 and summary["micro_batch"] == 1


def _interrupted_rank(rank: int, port: int, wd: str, result: str) -> None:
    """One rank of a 2-process run in which only rank 0 receives SIGINT, after epoch 1."""
    from smcore.train.ddp import session
    from smcore.train.loop import TrainingInterrupted, train

    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    cfg = tiny_config(epochs=3)

    def on_epoch(epoch: int, record: dict[str, float]) -> None:
        if rank == 0 and epoch == 1:
            os.kill(os.getpid(), signal.SIGINT)

    outcome = "finished"
    try:
        with session(cfg.train) as dist:
            train(cfg, wd, progress=False, on_epoch=on_epoch, dist=dist)
    except TrainingInterrupted:
        outcome = "interrupted"
    Path(result).write_text(outcome)


def test_sigint_on_one_rank_stops_all_ranks_at_the_same_step(
    tmp_path: Path,
    fresh_ynet_workdir,
) -> None:
    wd = fresh_ynet_workdir("wd")
    port = _free_port()
    # fork hangs once this process has run torch; a fork server imports torch once for both ranks
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "smcore.train.loop", "smcore.train.ddp", __name__])
    results = [tmp_path / f"rank{r}.txt" for r in range(2)]
    procs = [ctx.Process(target=_interrupted_rank, args=(r, port, str(wd), str(results[r])))
             for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    for p in procs:
        if p.is_alive():
            p.kill()
            pytest.fail("a rank hung: the ranks did not stop at the same step")
    assert [r.read_text() for r in results] == ["interrupted", "interrupted"]
    ck = load_checkpoint(wd / "training" / "last.pt")
    assert ck["epoch"] == 1 and ck["partial_epoch"] is True
    assert pd.read_csv(wd / "training" / "history.csv")["epoch"].tolist() == [1]
    assert {p.name for p in (wd / "training").iterdir()} == TRAINING_FILES - {"summary.json"}


# -- errors --------------------------------------------------------------------
def test_ddp_without_torchrun_is_a_one_line_error(
    ynet_prepared: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    _no_torchrun_env(monkeypatch)
    argv = ["train", "--ddp", "--workdir", str(ynet_prepared), "--device", "cpu", "--no-progress"]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "torchrun" in err[0] and "RANK" in err[0]
    assert not (ynet_prepared / "training").exists()


def test_ddp_batch_must_split_over_the_ranks(
    ynet_prepared: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    _no_torchrun_env(monkeypatch)
    env = dict(RANK="0", WORLD_SIZE="3", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1",
               MASTER_PORT=str(_free_port()))
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    argv = ["train", "--ddp", "--workdir", str(ynet_prepared), "--device", "cpu",
            "--batch-size", "4", "--no-progress"]
    assert cli_main(argv) == 2  # refused before contacting the other (absent) ranks
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "batch size 4 is not divisible by the world size 3" in err[0]
    monkeypatch.setenv("RANK", "1")
    assert cli_main(argv) == 2
    assert capsys.readouterr().err == ""  # the other ranks leave the message to rank 0
    assert not (ynet_prepared / "training").exists()
