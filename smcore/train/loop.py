"""The YNet training loop: ``train(cfg, workdir)``.

- loss: mean squared error over land pixels only, in normalised units, weighted per pixel in
  the ``local`` target scaling so that it stays an MSE in m3 m-3 (:mod:`smcore.train.scaling`);
- Adam, ReduceLROnPlateau on the validation loss, early stopping, best-validation checkpoint;
- bf16 autocast and channels-last where the device supports it (:mod:`smcore.train.runtime`);
  a batch larger than the runtime's micro-batch runs in several forward/backward passes whose
  gradients add up to the batch gradient (on the CPU, to keep activations in cache);
  the data live on the device as whole tensors and per-step losses are accumulated there,
  so the host synchronises once per epoch (validation loss, scheduler, progress bar);
- ``WD/training/last.pt`` is written before the first epoch and then at most every
  ``checkpoint_interval_s`` seconds and at the end; ``best.pt`` holds the best-validation state
  (:class:`smcore.train.state.CheckpointWriter`).
  SIGINT/SIGTERM stop after the current step and save ``last.pt`` (``epoch`` = epochs completed,
  so ``--resume`` re-runs the interrupted epoch from the saved weights);
- deterministic on the CPU for a given seed (uninterrupted, or resumed at an epoch boundary);
- with ``dist`` (``smcore train --ddp`` under torchrun) the same steps run data-parallel: each
  rank takes its slice of every global batch, rank 0 alone writes files and shows progress
  (:mod:`smcore.train.ddp`).

Each epoch: seeded order → train → validate → reduce the losses (over ranks) → schedule and
track the best → save (:func:`_run`).
"""

from __future__ import annotations

import contextlib
import math
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from smcore.config import Config, TrainConfig
from smcore.errors import ConfigError, SmcoreError
from smcore.io.atomic import write_json
from smcore.models.ynet import YNet, YNetConfig, count_parameters
from smcore.progress import StepBar
from smcore.train.checkpoint import load_checkpoint
from smcore.train.data import TrainingData, load_training_data
from smcore.train.losses import Loss, loss_for, masked_mse, outputs_for
from smcore.train.normalization import Normalization
from smcore.train.precision import ProbeShape
from smcore.train.runtime import Runtime, select_runtime
from smcore.train.state import (
    CheckpointWriter,
    RunState,
    TrainingRun,
    check_resumable,
    set_rng_state,
)
from smcore.workdir import TrainingFolder, WorkDir

if TYPE_CHECKING:
    from smcore.prep.store import PreparedData
    from smcore.train.ddp import DistContext

__all__ = [
    "TrainingInterrupted",
    "EpochResult",
    "masked_mse",
    "batch_tensors",
    "train_epoch",
    "evaluate",
    "model_config",
    "build_model",
    "build_optimizer",
    "epoch_order",
    "mean_losses",
    "check_config",
    "train",
]

PLATEAU_FACTOR = 0.5
MIN_LR = 1e-7


class TrainingInterrupted(SmcoreError):
    """Training stopped on SIGINT/SIGTERM after saving ``last.pt``."""


def batch_tensors(
    data: TrainingData, idx: torch.Tensor, rt: Runtime
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Inputs (B, C, h, w), auxiliary fields (B, A, H, W), target (B, 1, H, W) and loss
    weights (B, 1, H, W) or None, of months ``idx``, on the runtime's device."""
    month = data.month.index_select(0, idx)
    x = data.x.index_select(0, idx)
    aux = data.aux.index_select(0, month)
    y = data.y.index_select(0, idx)
    w = None if data.weight is None else data.weight.index_select(0, month)
    if x.device != rt.device:
        x, aux, y = (t.to(rt.device, non_blocking=True) for t in (x, aux, y))
        w = None if w is None else w.to(rt.device, non_blocking=True)
    return rt.memory_format(x), rt.memory_format(aux), y, w


@dataclass
class EpochResult:
    """Sum of per-sample losses (a device tensor, not yet synchronised) and counts."""

    loss_sum: torch.Tensor
    samples: int
    steps: int
    stopped: bool = False

    def mean(self) -> float:
        """Mean loss per sample (synchronises with the device)."""
        return float(self.loss_sum.item()) / max(self.samples, 1)


def _batches(order: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    for start in range(0, order.shape[0], batch_size):
        yield order[start : start + batch_size]


def train_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    data: TrainingData,
    order: torch.Tensor,
    batch_size: int,
    rt: Runtime,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    deadline: float | None = None,
    progress: StepBar | None = None,
    dist: DistContext | None = None,
    loss_fn: Loss = masked_mse,
) -> EpochResult:
    """One pass over the months ``order`` (indices into ``data``) in mini-batches.

    ``loss_fn`` (:mod:`smcore.train.losses`) is minimised; its mean over the months is returned.

    Stops early when ``should_stop()`` turns true or ``time.perf_counter()`` passes ``deadline``.
    With ``dist``, ``batch_size`` is the global batch, ``model`` is DDP-wrapped, this rank trains
    on its slice of each batch and the result counts this rank's months only; ``should_stop``
    must then agree on all ranks and ``deadline`` must be ``None``.
    """
    model.train()
    land = data.land if data.land.device == rt.device else data.land.to(rt.device)
    loss_sum = torch.zeros((), device=rt.device)
    samples = steps = 0
    stopped = False
    for idx in _batches(order, batch_size):
        n_global = n = int(idx.shape[0])
        factor = 1.0
        if dist is not None:
            idx, n, factor = dist.shard(idx)
        optimizer.zero_grad(set_to_none=True)
        parts = rt.parts(n)
        loss = torch.zeros((), device=rt.device)
        for k, part in enumerate(parts):
            x, aux, y, w = batch_tensors(data, idx[part], rt)
            with rt.autocast():
                pred = model(x, aux)
            # The batch loss is the mean over its months, so each pass is weighted by its share.
            part_loss = loss_fn(pred, y, land, w) * (x.shape[0] / n)
            sync = contextlib.nullcontext() if dist is None or k == len(parts) - 1 else model.no_sync()
            with sync:
                (part_loss if factor == 1.0 else part_loss * factor).backward()
            loss += part_loss.detach()
        optimizer.step()
        loss_sum += loss * n
        samples += n
        steps += 1
        if progress is not None:
            progress.update(n_global)
        if should_stop():
            stopped = True
            break
        if deadline is not None and time.perf_counter() >= deadline:
            break
    return EpochResult(loss_sum=loss_sum, samples=samples, steps=steps, stopped=stopped)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, data: TrainingData, indices: torch.Tensor, batch_size: int, rt: Runtime,
    loss_fn: Loss = masked_mse,
) -> EpochResult:
    """Loss ``loss_fn`` over ``indices`` with the network in eval mode (dropout off)."""
    was_training = model.training
    model.eval()
    land = data.land if data.land.device == rt.device else data.land.to(rt.device)
    loss_sum = torch.zeros((), device=rt.device)
    samples = steps = 0
    for idx in _batches(indices, rt.pass_size(batch_size)):
        x, aux, y, w = batch_tensors(data, idx, rt)
        with rt.autocast():
            pred = model(x, aux)
        loss_sum += loss_fn(pred, y, land, w) * idx.shape[0]
        samples += int(idx.shape[0])
        steps += 1
    model.train(was_training)
    return EpochResult(loss_sum=loss_sum, samples=samples, steps=steps)


def model_config(cfg: Config, n_channels: int, scale: int) -> YNetConfig:
    """The network of :func:`build_model` (``n_channels`` inputs, ``scale``, ``cfg.train``)."""
    t = cfg.train
    return YNetConfig(
        in_channels=n_channels,
        aux_channels=len(t.aux_fields),
        features=t.features,
        depth=t.depth,
        scale=scale,
        dropout=t.dropout,
        outputs=outputs_for(t.loss),
    )


def build_model(cfg: Config, n_channels: int, scale: int) -> YNet:
    """YNet for ``n_channels`` inputs at ``scale`` with the width/depth/dropout of ``cfg.train``."""
    return YNet.from_config(model_config(cfg, n_channels, scale))


def build_optimizer(
    model: torch.nn.Module, t: TrainConfig, rt: Runtime
) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.ReduceLROnPlateau]:
    """Adam at ``t.lr`` (fused on CUDA) and the plateau schedule on the validation loss."""
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr, fused=rt.device.type == "cuda")
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=PLATEAU_FACTOR, patience=t.plateau_patience, min_lr=MIN_LR
    )
    return optimizer, scheduler


def epoch_order(train_idx: torch.Tensor, seed: int, epoch: int) -> torch.Tensor:
    """The training months ``train_idx`` in the seeded random order of ``epoch`` (same device)."""
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return train_idx[torch.randperm(train_idx.shape[0], generator=gen).to(train_idx.device)]


def check_config(cfg: Config, prepared: PreparedData) -> None:
    """Refuse a configuration that contradicts the prepared store (periods, scale).

    The hyper-parameters checked themselves when ``cfg.train`` was built
    (:meth:`smcore.config.TrainConfig.problems`).
    """
    for split in ("train", "val", "test"):
        stored, wanted = prepared.split(split), tuple(getattr(cfg.periods, split))
        if stored != wanted:
            raise ConfigError(
                f"the {split} period is {wanted[0]}-{wanted[1]} in the configuration but the data "
                f"in {prepared.path} were prepared with {stored[0]}-{stored[1]}: "
                "rerun `smcore prepare`"
            )
    nlat, nclat = prepared.static.sizes["lat"], prepared.static.sizes["clat"]
    if nclat * cfg.scale != nlat:
        raise ConfigError(
            f"scale {cfg.scale} in the configuration does not match the prepared grids "
            f"({nclat} coarse → {nlat} fine latitudes): rerun `smcore prepare`"
        )


def mean_losses(
    res: EpochResult, val: EpochResult, dist: DistContext | None, device: torch.device
) -> tuple[float, float]:
    """Mean training and validation loss per month: the one host sync of an epoch.

    With ``dist`` the sums are all-reduced first, so that every rank gets the same numbers and
    takes the same decisions.
    """
    if dist is None:
        return res.mean(), val.mean()
    tl, tn, vl, vn = dist.sum([res.loss_sum, res.samples, val.loss_sum, val.samples], device)
    return tl / max(tn, 1.0), vl / max(vn, 1.0)


class _StopFlag:
    """SIGINT/SIGTERM handler that asks the loop to stop after the current step.

    A second SIGINT raises KeyboardInterrupt at once. Handlers are installed only in
    the main thread and restored on exit.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.signum is not None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> "_StopFlag":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _data_on_device(data: TrainingData, rt: Runtime) -> TrainingData:
    """Move all data to the device when it fits comfortably, else keep it on the host."""
    if rt.device.type == "cpu":
        return data
    if rt.device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(rt.device)
        if data.nbytes > 0.5 * free:
            return data  # batches are copied per step instead
    return data.to(rt.device)


def train(
    cfg: Config,
    workdir: str | Path | WorkDir,
    *,
    resume: bool = False,
    progress: bool = True,
    report: Callable[[str], None] = print,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    checkpoint_interval_s: float = 10.0,
    dist: DistContext | None = None,
) -> dict[str, Any]:
    """Train YNet on the prepared store of ``workdir``; returns the summary also written to disk.

    Writes ``training/last.pt``, ``training/best.pt``, ``training/history.csv`` and
    ``training/summary.json`` (docs/workdir.md). With ``train.members = K`` > 1 it trains a
    deep ensemble: K networks one after the other, member k with seed ``train.seed + k`` and
    the same data and scaling, member k ≥ 1 in ``training/members/m<k>``; folders of members
    ≥ K left by an earlier run are removed, and ``training/summary.json`` gains ``members``,
    ``member_seeds`` and ``member_best_val_loss``. ``on_epoch(epoch, record)`` is called after
    each completed epoch (on every rank). Raises :class:`TrainingInterrupted` after saving on
    SIGINT/SIGTERM. ``dist``: train data-parallel in a joined process group
    (:func:`smcore.train.ddp.session`); only rank 0 writes and shows progress. ``report`` takes
    one-line messages: the precision and micro-batch chosen on a CPU (rank 0 only); progress
    goes to the bars.
    """
    from smcore.prep.store import (
        open_prepared,  # here, so that the loop imports without the file stack
    )

    wd = workdir if isinstance(workdir, WorkDir) else WorkDir(workdir)
    main = dist is None or dist.is_main
    if main:
        wd.sweep()  # temporaries of a killed earlier run
    prepared = open_prepared(wd)
    check_config(cfg, prepared)
    t = cfg.train
    rt = _select(cfg, prepared, dist, report)
    fingerprint = prepared.manifest.get("fingerprint")
    if main:
        for stale in wd.stale_members(t.members):  # an earlier, larger ensemble
            shutil.rmtree(stale)
    def last_state(folder: TrainingFolder) -> dict[str, Any] | None:
        """The state to resume ``folder``'s member from (None: it starts afresh)."""
        if resume and folder.checkpoint_last.exists():
            return load_checkpoint(folder.checkpoint_last)
        return None

    first = wd.member(0)
    first_ckpt = last_state(first)
    norm = Normalization.from_state(first_ckpt["normalization"]) if first_ckpt else None
    data = load_training_data(
        prepared, input_norm=t.input_norm, target_norm=t.target_norm,
        forced_window=t.forced_window_years, forced_method=t.forced_method,
        continuation=t.scenario_continuation, aux_fields=t.aux_fields, norm=norm,
    )
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    if rt.device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    elif rt.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    summaries = []
    try:
        for k in range(t.members):
            folder = wd.member(k)
            member_cfg = cfg if k == 0 else cfg.override(**{"train.seed": t.seed + k})
            if t.members > 1 and main:
                report(f"ensemble member {k + 1} of {t.members} (seed {member_cfg.train.seed})")
            ckpt = first_ckpt if k == 0 else last_state(folder)
            run = _start(member_cfg, wd, rt, data, ckpt, fingerprint, dist, folder)
            summaries.append(
                _run(run, progress=progress, on_epoch=on_epoch, interval_s=checkpoint_interval_s)
            )
    finally:
        torch.use_deterministic_algorithms(deterministic_before)
    summary = summaries[0]
    if t.members > 1:
        summary = {
            **summary,
            "members": t.members,
            "member_seeds": [t.seed + k for k in range(t.members)],
            "member_best_val_loss": [s["best_val_loss"] for s in summaries],
            "seconds": sum(s["seconds"] for s in summaries),
        }
        if main:
            write_json(summary, first.summary)
    return summary


def _select(
    cfg: Config, prepared: PreparedData, dist: DistContext | None, report: Callable[[str], None]
) -> Runtime:
    """The run's runtime, its CPU precision and micro-batch measured at the run's shape.

    Rank 0 (or the single process) reports the choice. Data-parallel on the CPU, rank 0
    measures alone while the other ranks wait, then they read its answer from the cache.
    """
    t = cfg.train
    shape = ProbeShape.of(
        model_config(cfg, len(prepared.channels), cfg.scale),
        (prepared.static.sizes["clat"], prepared.static.sizes["clon"]),
    )
    main = dist is None or dist.is_main
    serial = dist is not None and dist.backend == "gloo"
    if serial and not main:
        dist.barrier()
    try:
        return select_runtime(
            t.device, t.amp, local_rank=None if dist is None else dist.local_rank,
            micro_batch=t.micro_batch, shape=shape, report=report if main else None,
        )
    finally:
        if serial and main:
            dist.barrier()


def _start(
    cfg: Config,
    wd: WorkDir,
    rt: Runtime,
    data: TrainingData,
    ckpt: dict[str, Any] | None,
    fingerprint: str | None,
    dist: DistContext | None,
    folder: TrainingFolder,
) -> TrainingRun:
    """The run's objects: a seeded network and its optimiser, or those of ``ckpt`` when resuming;
    its files go to ``folder``."""
    t = cfg.train
    torch.manual_seed(t.seed)
    model = build_model(cfg, len(data.channels), data.static.scale)
    if ckpt is not None:
        check_resumable(ckpt, model, data.channels, folder.checkpoint_last, fingerprint)
        model.load_state_dict(ckpt["model_state"])
    model = rt.place(model)
    optimizer, scheduler = build_optimizer(model, t, rt)
    state = RunState()
    if ckpt is not None:
        optimizer.load_state_dict(ckpt["optimizer_state"])
        scheduler.load_state_dict(ckpt["scheduler_state"])
        state = RunState.resumed(ckpt, folder.history)
        set_rng_state(ckpt["rng_state"], rt.device)
    if dist is not None:
        # own dropout streams per rank (a resumed run must not repeat the first epochs' masks)
        torch.manual_seed(t.seed + dist.rank + 7919 * state.epoch)
    data = _data_on_device(data, rt)
    train_idx = data.splits["train"].to(data.x.device)
    val_idx = data.splits["val"].to(data.x.device)
    net: torch.nn.Module = model
    if dist is not None:
        net = dist.wrap(model, rt)
        val_idx = dist.local_indices(val_idx)
    return TrainingRun(
        cfg=cfg, wd=wd, rt=rt, model=model, net=net, optimizer=optimizer, scheduler=scheduler,
        data=data, train_idx=train_idx, val_idx=val_idx, state=state, fingerprint=fingerprint,
        folder=folder, dist=dist,
    )


def _run(
    run: TrainingRun,
    *,
    progress: bool,
    on_epoch: Callable[[int, dict[str, float]], None] | None,
    interval_s: float,
) -> dict[str, Any]:
    """The epochs of ``run`` up to ``train.epochs`` (or early stopping); returns the summary."""
    t, st = run.cfg.train, run.state
    writer = CheckpointWriter(run, interval_s)
    progress = progress and writer.writes
    writer.start()
    n_params = count_parameters(run.model)
    t_start = time.perf_counter()
    stopped_early = False
    outer = StepBar(
        total=t.epochs, initial=min(st.epoch, t.epochs), unit="epoch",
        desc="train" if t.members == 1 else f"train member {run.folder.member + 1}/{t.members}",
        disable=not progress, dynamic_ncols=True,
    )
    with _StopFlag() as local_stop, outer:
        stop = local_stop if run.dist is None else run.dist.agreed(local_stop)
        for epoch in range(st.epoch + 1, t.epochs + 1):
            if t.early_stopping > 0 and st.bad_epochs >= t.early_stopping:
                stopped_early = True
                break
            t0 = time.perf_counter()
            order = epoch_order(run.train_idx, t.seed, epoch)
            with StepBar(
                total=int(order.shape[0]), desc=f"epoch {epoch}", unit="month", leave=False,
                disable=not progress, dynamic_ncols=True,
            ) as inner:
                res = train_epoch(run.net, run.optimizer, run.data, order, t.batch_size, run.rt,
                                  should_stop=stop, progress=inner, dist=run.dist,
                                  loss_fn=loss_for(t.loss))
            if res.stopped:
                writer.stopped(epoch)
                raise TrainingInterrupted(
                    f"training interrupted in epoch {epoch}: {run.folder.checkpoint_last} holds the "
                    f"weights after {epoch - 1} full epochs plus the partial one; continue with "
                    "`smcore train --resume`"
                )
            val = evaluate(run.model, run.data, run.val_idx, max(t.batch_size, 8), run.rt,
                           loss_fn=loss_for(t.loss))
            train_loss, val_loss = mean_losses(res, val, run.dist, run.rt.device)
            if not math.isfinite(train_loss):
                writer.stopped(epoch)
                raise SmcoreError(
                    f"training diverged in epoch {epoch} (loss {train_loss}); lower --lr"
                )
            lr = float(run.optimizer.param_groups[0]["lr"])
            run.scheduler.step(val_loss)
            if st.end_epoch(epoch, val_loss):
                writer.improved(epoch)
            record = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "lr": lr,
                      "seconds": time.perf_counter() - t0}
            st.history.append(record)
            outer.update(1)
            outer.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}", lr=f"{lr:.1e}")
            writer.epoch_done(epoch)
            if on_epoch is not None:
                on_epoch(epoch, record)
        writer.finish()
    summary = _summary(run, n_params, time.perf_counter() - t_start, stopped_early)
    writer.summary(summary)
    return summary


def _summary(
    run: TrainingRun, n_params: int, seconds: float, stopped_early: bool
) -> dict[str, Any]:
    """What ``summary.json`` holds (docs/workdir.md)."""
    t, st, norm, rt = run.cfg.train, run.state, run.data.norm, run.rt
    trained = len(st.history)
    return {
        "n_parameters": n_params,
        "device": rt.name,
        "amp": rt.amp,
        "best_epoch": st.best_epoch,
        "best_val_loss": st.best_val_loss,
        "epochs_run": trained,
        "seconds": seconds,
        "stopped_early": stopped_early,
        "batch_size": t.batch_size,
        "micro_batch": rt.micro_batch or 0,
        "channels_last": rt.channels_last,
        "precision_source": (rt.choice.source if rt.choice is not None
                             else "forced" if t.amp != "auto" else "fixed"),
        "bf16_speedup": rt.choice.bf16_speedup if rt.choice is not None else None,
        "world_size": 1 if run.dist is None else run.dist.world_size,
        "loss": t.loss,
        "input_norm": norm.input_norm,
        "target_norm": norm.target_norm,
        "forced_window_years": norm.forced_window,
        "train_months": int(run.data.splits["train"].shape[0]),
        "seconds_per_epoch": (
            sum(r["seconds"] for r in st.history) / trained if trained else float("nan")
        ),
    }
