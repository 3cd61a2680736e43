"""The state of a training run and what it writes to ``WD/training`` (docs/workdir.md).

- :class:`TrainingRun`: the objects of one run (network, optimiser, data, bookkeeping);
- :class:`RunState`: the bookkeeping that checkpoints hold besides the weights;
- :class:`CheckpointWriter`: which rank writes which file when. Rank 0 (or the single process)
  alone writes. ``last.pt`` (the live state) is written before the first epoch, then at most
  every ``interval_s`` seconds, after the last epoch and when the run stops; ``best.pt`` (the
  state after the best validation epoch, kept in memory when it improves) is written with the
  next ``last.pt``; ``history.csv`` is rewritten with every ``last.pt``; ``summary.json`` at
  the end.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

from smcore.errors import ConfigError, InputError
from smcore.io.atomic import write_csv, write_json
from smcore.train.checkpoint import save_checkpoint

if TYPE_CHECKING:
    from smcore.config import Config
    from smcore.models.ynet import YNet
    from smcore.train.data import TrainingData
    from smcore.train.ddp import DistContext
    from smcore.train.runtime import Runtime
    from smcore.workdir import TrainingFolder, WorkDir

__all__ = [
    "HISTORY_COLUMNS",
    "RunState",
    "TrainingRun",
    "CheckpointWriter",
    "check_resumable",
    "set_rng_state",
]

HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "lr", "seconds"]


@dataclass
class RunState:
    """Bookkeeping of a run, saved in its checkpoints besides the weights.

    Epochs completed, the best validation loss and its epoch, epochs without improvement, and
    one ``history`` record (:data:`HISTORY_COLUMNS`) per completed epoch.
    """

    epoch: int = 0
    best_val_loss: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    @classmethod
    def resumed(cls, ckpt: dict[str, Any], history: Path) -> RunState:
        """The state saved in ``ckpt``, with the records of ``history`` up to its epoch."""
        epoch = int(ckpt["epoch"])
        return cls(
            epoch=epoch,
            best_val_loss=float(ckpt["best_val_loss"]),
            best_epoch=int(ckpt.get("best_epoch", 0)),
            bad_epochs=int(ckpt.get("bad_epochs", 0)),
            history=_read_history(history, epoch),
        )

    def end_epoch(self, epoch: int, val_loss: float) -> bool:
        """Count ``epoch`` as completed with ``val_loss``; True when that is the best so far."""
        self.epoch = epoch
        if val_loss < self.best_val_loss:
            self.best_val_loss, self.best_epoch, self.bad_epochs = val_loss, epoch, 0
            return True
        self.bad_epochs += 1
        return False


@dataclass
class TrainingRun:
    """The objects of one training run.

    ``model`` is the bare YNet (checkpoints, evaluation); ``net`` is what takes the steps: the
    same network, DDP-wrapped under ``dist``. ``train_idx``/``val_idx`` (int64, on the data's
    device) are the training months and this rank's validation months.
    """

    cfg: Config
    wd: WorkDir
    rt: Runtime
    model: YNet
    net: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau
    data: TrainingData
    train_idx: torch.Tensor
    val_idx: torch.Tensor
    state: RunState
    fingerprint: str | None
    folder: TrainingFolder
    dist: DistContext | None = None


class CheckpointWriter:
    """Writes the files of ``WD/training`` for a run (see the module docstring for when)."""

    def __init__(self, run: TrainingRun, interval_s: float) -> None:
        self.run = run
        self.interval_s = interval_s
        self.writes = run.dist is None or run.dist.is_main
        self.flushed = -1  # the epoch of the last flush (-1: none yet)
        self._best: dict[str, Any] | None = None  # the best state, not yet written
        self._last_flush = time.perf_counter()

    def start(self) -> None:
        """Before the first epoch: a fresh run gets ``last.pt`` at once.

        So an interrupt before the first epoch ends still leaves a usable checkpoint. A fresh
        run first removes the previous run's ``best.pt`` and ``summary.json``, and every run the
        pipeline's ``train`` stamp, so that an interrupted fresh run never leaves an older run's
        best network looking like this run's result.
        """
        if self.writes:
            self.run.folder.root.mkdir(parents=True, exist_ok=True)
            self._forget_previous(fresh=self.run.state.epoch == 0)
        if self.run.state.epoch == 0:
            self.flush(0)
        self._last_flush = time.perf_counter()

    def _forget_previous(self, fresh: bool) -> None:
        (self.run.wd.stamps / "train.json").unlink(missing_ok=True)
        if fresh:
            self.run.folder.checkpoint_best.unlink(missing_ok=True)
            self.run.folder.summary.unlink(missing_ok=True)

    def improved(self, epoch: int) -> None:
        """Keep the state after ``epoch``, the best so far, for the next ``best.pt``."""
        if not self.writes:
            return
        r = self.run
        self._best = dict(
            model_state=copy.deepcopy(r.model.state_dict()),
            optimizer_state=copy.deepcopy(r.optimizer.state_dict()),
            scheduler_state=copy.deepcopy(r.scheduler.state_dict()),
            rng_state=_rng_state(r.rt.device),
            epoch=epoch,
        )

    def epoch_done(self, epoch: int) -> None:
        """After ``epoch``'s history record: flush if the interval has passed or it was the last."""
        now = time.perf_counter()
        if now - self._last_flush >= self.interval_s or epoch == self.run.cfg.train.epochs:
            self.flush(epoch)
            self._last_flush = now

    def stopped(self, epoch: int) -> None:
        """The run stops inside ``epoch``: save its weights as ``epoch - 1`` plus a partial epoch.

        Every rank waits until rank 0 has written (the launcher stops all ranks once one exits
        with an error).
        """
        self.flush(epoch - 1, partial=True)
        if self.run.dist is not None:
            self.run.dist.barrier()

    def finish(self) -> None:
        """At the end of the run: flush unless the last completed epoch already was."""
        if self.flushed != self.run.state.epoch:
            self.flush(self.run.state.epoch)

    def flush(self, epoch: int, partial: bool = False) -> None:
        """Write ``last.pt`` (``epoch`` epochs completed), a pending ``best.pt`` and the history."""
        self.flushed = epoch
        if not self.writes:
            return
        r = self.run
        live = dict(
            model_state=r.model.state_dict(),
            optimizer_state=r.optimizer.state_dict(),
            scheduler_state=r.scheduler.state_dict(),
            rng_state=_rng_state(r.rt.device),
            epoch=epoch,
        )
        save_checkpoint(self._checkpoint(**live, partial_epoch=partial), r.folder.checkpoint_last)
        if self._best is not None:
            save_checkpoint(self._checkpoint(**self._best), r.folder.checkpoint_best)
            self._best = None
        write_csv(pd.DataFrame(r.state.history, columns=HISTORY_COLUMNS), r.folder.history)

    def summary(self, summary: dict[str, Any]) -> None:
        """Write ``summary.json``."""
        if self.writes:
            write_json(summary, self.run.folder.summary)

    def _checkpoint(
        self,
        *,
        model_state: dict[str, Any],
        optimizer_state: dict[str, Any],
        scheduler_state: dict[str, Any],
        rng_state: dict[str, torch.Tensor],
        epoch: int,
        partial_epoch: bool = False,
    ) -> dict[str, Any]:
        """A checkpoint (:mod:`smcore.train.checkpoint`) with the run's bookkeeping as it is now."""
        r, st = self.run, self.run.state
        return {
            "model_state": _to_cpu(model_state),
            "optimizer_state": _to_cpu(optimizer_state),
            "scheduler_state": scheduler_state,
            "epoch": int(epoch),
            "best_val_loss": float(st.best_val_loss),
            "best_epoch": int(st.best_epoch),
            "bad_epochs": int(st.bad_epochs),
            "partial_epoch": bool(partial_epoch),
            "model_args": r.model.config.to_dict(),
            "config_json": r.cfg.to_json(),
            "channels": list(r.data.channels),
            "rng_state": _to_cpu(rng_state),
            "normalization": r.data.norm.to_state(),
            "prepared_fingerprint": r.fingerprint or "",
            "member": int(r.folder.member),
        }


def check_resumable(
    ckpt: dict[str, Any], model: YNet, data_channels: list[str], path: Path, fingerprint: str | None
) -> None:
    """Refuse a checkpoint of other prepared data, another network or other input models."""
    old = ckpt.get("prepared_fingerprint") or ""
    if old and fingerprint and old != fingerprint:
        raise ConfigError(
            f"cannot resume from {path}: the prepared data changed since; train afresh"
        )
    if ckpt["model_args"] != model.config.to_dict():
        raise ConfigError(
            f"cannot resume from {path}: its network {ckpt['model_args']} differs from the "
            f"configured {model.config.to_dict()}"
        )
    if list(ckpt["channels"]) != list(data_channels):
        raise ConfigError(f"cannot resume from {path}: it was trained on other input models")


def _rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: Any, device: torch.device) -> None:
    """Restore the random generators saved in a checkpoint (a dict, or a bare CPU state)."""
    if isinstance(state, dict):
        torch.set_rng_state(state["cpu"])
        if device.type == "cuda" and "cuda" in state:
            torch.cuda.set_rng_state(state["cuda"], device)
    elif isinstance(state, torch.Tensor):
        torch.set_rng_state(state)


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _read_history(path: Path, upto: int) -> list[dict[str, float]]:
    if not path.exists():
        return []
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InputError(path, f"cannot read training history: {exc}") from exc
    df = df[df["epoch"] <= upto]
    return [
        {k: (int(r[k]) if k == "epoch" else float(r[k])) for k in HISTORY_COLUMNS}
        for _, r in df.iterrows()
    ]
