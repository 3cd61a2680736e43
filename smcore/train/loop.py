"""The YNet training loop: ``train(cfg, workdir)``.

- loss: mean squared error over land pixels only, in normalised units, weighted per pixel in
  the ``local`` target normalisation so that it stays an MSE in m3 m-3 (:mod:`smcore.train.data`);
- Adam, ReduceLROnPlateau on the validation loss, early stopping, best-validation checkpoint;
- bf16 autocast and channels-last where the device supports it (:mod:`smcore.train.runtime`);
  a batch larger than the runtime's micro-batch runs in several forward/backward passes whose
  gradients add up to the batch gradient (on the CPU, to keep activations in cache);
  the data live on the device as whole tensors and per-step losses are accumulated there,
  so the host synchronises once per epoch (validation loss, scheduler, progress bar);
- ``WD/training/last.pt`` is written before the first epoch and then at most every
  ``checkpoint_interval_s`` seconds and at the end; ``best.pt`` holds the best-validation state.
  SIGINT/SIGTERM stop after the current step and save ``last.pt`` (``epoch`` = epochs completed,
  so ``--resume`` re-runs the interrupted epoch from the saved weights);
- deterministic on the CPU for a given seed (uninterrupted, or resumed at an epoch boundary);
- with ``dist`` (``smcore train --ddp`` under torchrun) the same steps run data-parallel: each
  rank takes its slice of every global batch, rank 0 alone writes files and shows progress
  (:mod:`smcore.train.ddp`).
"""

from __future__ import annotations

import contextlib
import copy
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import pandas as pd
import torch
from tqdm.auto import tqdm

from smcore.config import Config, TrainConfig
from smcore.errors import ConfigError, InputError, SmcoreError
from smcore.io.atomic import write_csv, write_json
from smcore.models.ynet import YNet, YNetConfig, count_parameters
from smcore.train.checkpoint import load_checkpoint, save_checkpoint
from smcore.train.data import (
    AUX_FIELDS,
    NORM_MODES,
    Normalization,
    TrainingData,
    forced_split_problem,
    load_training_data,
)
from smcore.train.runtime import Runtime, select_runtime
from smcore.workdir import WorkDir

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
    "build_model",
    "build_optimizer",
    "epoch_order",
    "check_config",
    "train",
]

HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "lr", "seconds"]
PLATEAU_FACTOR = 0.5
MIN_LR = 1e-7


class TrainingInterrupted(SmcoreError):
    """Training stopped on SIGINT/SIGTERM after saving ``last.pt``."""


def masked_mse(
    pred: torch.Tensor, target: torch.Tensor, land: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean squared error over land pixels, optionally weighted per pixel.

    ``pred``/``target`` (B, 1, H, W) in normalised units, ``land`` (1, 1, H, W) bool,
    ``weight`` (B, 1, H, W) or None. The sum of (weighted) squared errors is divided by
    the number of land pixels in the batch. Values outside land (even NaN) reach neither
    the loss nor its gradient. Computed in fp32; returns a 0-d tensor on the same device
    (no host sync).
    """
    zero = torch.zeros((), device=pred.device)
    clean = torch.where(land, target.float(), zero)
    sq = torch.where(land, pred.float() - clean, zero).square()
    if weight is not None:
        sq = sq * torch.where(land, weight.float(), zero)
    return sq.sum() / (land.sum() * pred.shape[0])


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
    progress: tqdm | None = None,
    dist: DistContext | None = None,
) -> EpochResult:
    """One pass over the months ``order`` (indices into ``data``) in mini-batches.

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
            part_loss = masked_mse(pred, y, land, w) * (x.shape[0] / n)
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
    model: torch.nn.Module, data: TrainingData, indices: torch.Tensor, batch_size: int, rt: Runtime
) -> EpochResult:
    """Loss over ``indices`` with the network in eval mode (dropout off)."""
    was_training = model.training
    model.eval()
    land = data.land if data.land.device == rt.device else data.land.to(rt.device)
    loss_sum = torch.zeros((), device=rt.device)
    samples = steps = 0
    for idx in _batches(indices, rt.pass_size(batch_size)):
        x, aux, y, w = batch_tensors(data, idx, rt)
        with rt.autocast():
            pred = model(x, aux)
        loss_sum += masked_mse(pred, y, land, w) * idx.shape[0]
        samples += int(idx.shape[0])
        steps += 1
    model.train(was_training)
    return EpochResult(loss_sum=loss_sum, samples=samples, steps=steps)


def build_model(cfg: Config, n_channels: int, scale: int) -> YNet:
    """YNet for ``n_channels`` inputs at ``scale`` with the width/depth/dropout of ``cfg.train``."""
    t = cfg.train
    return YNet.from_config(
        YNetConfig(
            in_channels=n_channels,
            aux_channels=len(AUX_FIELDS),
            features=t.features,
            depth=t.depth,
            scale=scale,
            dropout=t.dropout,
        )
    )


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
    """Refuse hyper-parameters that cannot work and a config that contradicts the store."""
    t = cfg.train
    problems = []
    if t.epochs < 1:
        problems.append(f"epochs must be >= 1 (got {t.epochs})")
    if t.batch_size < 1:
        problems.append(f"batch size must be >= 1 (got {t.batch_size})")
    if not t.lr > 0:
        problems.append(f"learning rate must be > 0 (got {t.lr})")
    if t.features < 1 or t.depth < 1:
        problems.append(f"features and depth must be >= 1 (got {t.features}, {t.depth})")
    if not 0 <= t.dropout < 1:
        problems.append(f"dropout must be in [0, 1) (got {t.dropout})")
    for name in ("input_norm", "target_norm"):
        if getattr(t, name) not in NORM_MODES:
            problems.append(f"train.{name} must be one of {', '.join(NORM_MODES)} (got {getattr(t, name)!r})")
    if t.forced_window_years < 0:
        problems.append(f"train.forced_window_years must be >= 0 (got {t.forced_window_years})")
    elif problem := forced_split_problem(t.forced_window_years, t.input_norm, t.target_norm):
        problems.append(problem)
    if problems:
        raise ConfigError("; ".join(problems))
    for split in ("train", "val", "test"):
        stored, wanted = prepared.split(split), tuple(getattr(cfg.periods, split))
        if stored != wanted:
            raise ConfigError(
                f"the {split} period is {wanted[0]}-{wanted[1]} in the configuration but the data in "
                f"{prepared.path} were prepared with {stored[0]}-{stored[1]}: rerun `smcore prepare`"
            )
    nlat, nclat = prepared.static.sizes["lat"], prepared.static.sizes["clat"]
    if nclat * cfg.scale != nlat:
        raise ConfigError(
            f"scale {cfg.scale} in the configuration does not match the prepared grids "
            f"({nclat} coarse → {nlat} fine latitudes): rerun `smcore prepare`"
        )


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


@dataclass
class _State:
    """Mutable bookkeeping of a run (what goes into checkpoints besides the weights)."""

    epoch: int = 0
    best_val_loss: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


def _rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: Any, device: torch.device) -> None:
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


def _data_on_device(data: TrainingData, rt: Runtime) -> TrainingData:
    """Move all data to the device when it fits comfortably, else keep it on the host."""
    if rt.device.type == "cpu":
        return data
    if rt.device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(rt.device)
        if data.nbytes > 0.5 * free:
            return data  # batches are copied per step instead
    return data.to(rt.device)


def _read_history(path: Path, upto: int) -> list[dict[str, float]]:
    if not path.exists():
        return []
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InputError(path, f"cannot read training history: {exc}") from exc
    df = df[df["epoch"] <= upto]
    return [
        {k: (int(r[k]) if k == "epoch" else float(r[k])) for k in HISTORY_COLUMNS} for _, r in df.iterrows()
    ]


def _checkpoint_dict(
    *,
    model_state: dict[str, Any],
    optimizer_state: dict[str, Any],
    scheduler_state: dict[str, Any],
    rng_state: dict[str, torch.Tensor],
    st: _State,
    epoch: int,
    model: YNet,
    cfg: Config,
    data: TrainingData,
    fingerprint: str | None,
    partial_epoch: bool = False,
) -> dict[str, Any]:
    return {
        "model_state": _to_cpu(model_state),
        "optimizer_state": _to_cpu(optimizer_state),
        "scheduler_state": scheduler_state,
        "epoch": int(epoch),
        "best_val_loss": float(st.best_val_loss),
        "best_epoch": int(st.best_epoch),
        "bad_epochs": int(st.bad_epochs),
        "partial_epoch": bool(partial_epoch),
        "model_args": model.config.to_dict(),
        "config_json": cfg.to_json(),
        "channels": list(data.channels),
        "rng_state": _to_cpu(rng_state),
        "normalization": data.norm.to_state(),
        "prepared_fingerprint": fingerprint or "",
    }


def _check_resumable(
    ckpt: dict[str, Any], model: YNet, data_channels: list[str], path: Path, fingerprint: str | None
) -> None:
    old = ckpt.get("prepared_fingerprint") or ""
    if old and fingerprint and old != fingerprint:
        raise ConfigError(f"cannot resume from {path}: the prepared data changed since; train afresh")
    if ckpt["model_args"] != model.config.to_dict():
        raise ConfigError(
            f"cannot resume from {path}: its network {ckpt['model_args']} differs from the configured "
            f"{model.config.to_dict()}"
        )
    if list(ckpt["channels"]) != list(data_channels):
        raise ConfigError(f"cannot resume from {path}: it was trained on other input models")


def train(
    cfg: Config,
    workdir: str | Path | WorkDir,
    *,
    resume: bool = False,
    progress: bool = True,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    checkpoint_interval_s: float = 10.0,
    dist: DistContext | None = None,
) -> dict[str, Any]:
    """Train YNet on the prepared store of ``workdir``; returns the summary also written to disk.

    Writes ``training/last.pt``, ``training/best.pt``, ``training/history.csv`` and
    ``training/summary.json`` (docs/workdir.md). ``on_epoch(epoch, record)`` is called after
    each completed epoch (on every rank). Raises :class:`TrainingInterrupted` after saving on
    SIGINT/SIGTERM. ``dist``: train data-parallel in a joined process group
    (:func:`smcore.train.ddp.session`); only rank 0 writes and shows progress.
    """
    from smcore.prep.store import (
        open_prepared,  # here, so that the loop imports without the file stack
    )

    wd = workdir if isinstance(workdir, WorkDir) else WorkDir(workdir)
    prepared = open_prepared(wd)
    check_config(cfg, prepared)
    t = cfg.train
    rt = select_runtime(t.device, t.amp, local_rank=None if dist is None else dist.local_rank,
                        micro_batch=t.micro_batch)
    fingerprint = prepared.manifest.get("fingerprint")

    ckpt: dict[str, Any] | None = None
    if resume and wd.checkpoint_last.exists():
        ckpt = load_checkpoint(wd.checkpoint_last)
    norm = Normalization.from_state(ckpt["normalization"]) if ckpt else None
    data = load_training_data(
        prepared, input_norm=t.input_norm, target_norm=t.target_norm,
        forced_window=t.forced_window_years, norm=norm,
    )
    scale = data.static.scale

    deterministic_before = torch.are_deterministic_algorithms_enabled()
    if rt.device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    elif rt.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    try:
        torch.manual_seed(t.seed)
        model = build_model(cfg, len(data.channels), scale)
        if ckpt is not None:
            _check_resumable(ckpt, model, data.channels, wd.checkpoint_last, fingerprint)
            model.load_state_dict(ckpt["model_state"])
        model = rt.place(model)
        optimizer, scheduler = build_optimizer(model, t, rt)
        st = _State()
        if ckpt is not None:
            optimizer.load_state_dict(ckpt["optimizer_state"])
            scheduler.load_state_dict(ckpt["scheduler_state"])
            st = _State(
                epoch=int(ckpt["epoch"]),
                best_val_loss=float(ckpt["best_val_loss"]),
                best_epoch=int(ckpt.get("best_epoch", 0)),
                bad_epochs=int(ckpt.get("bad_epochs", 0)),
                history=_read_history(wd.history, int(ckpt["epoch"])),
            )
            _set_rng_state(ckpt["rng_state"], rt.device)
        if dist is not None:
            # own dropout streams per rank (a resumed run must not repeat the first epochs' masks)
            torch.manual_seed(t.seed + dist.rank + 7919 * st.epoch)
        return _run(cfg, wd, rt, model, optimizer, scheduler, data, st, fingerprint, progress, on_epoch,
                    checkpoint_interval_s, dist)
    finally:
        torch.use_deterministic_algorithms(deterministic_before)


def _run(
    cfg: Config,
    wd: WorkDir,
    rt: Runtime,
    model: YNet,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau,
    data: TrainingData,
    st: _State,
    fingerprint: str | None,
    progress: bool,
    on_epoch: Callable[[int, dict[str, float]], None] | None,
    checkpoint_interval_s: float,
    dist: DistContext | None = None,
) -> dict[str, Any]:
    t = cfg.train
    data = _data_on_device(data, rt)
    train_idx = data.splits["train"].to(data.x.device)
    val_idx = data.splits["val"].to(data.x.device)
    common = dict(model=model, cfg=cfg, data=data, fingerprint=fingerprint)
    # ``model`` stays the bare YNet (checkpoints, evaluation); ``net`` is what takes the steps
    net: torch.nn.Module = model
    writer = dist is None or dist.is_main
    progress = progress and writer
    if dist is not None:
        net = dist.wrap(model, rt)
        val_idx = dist.local_indices(val_idx)

    def current_checkpoint(epoch: int, partial: bool = False) -> dict[str, Any]:
        return _checkpoint_dict(
            model_state=model.state_dict(),
            optimizer_state=optimizer.state_dict(),
            scheduler_state=scheduler.state_dict(),
            rng_state=_rng_state(rt.device),
            st=st,
            epoch=epoch,
            partial_epoch=partial,
            **common,  # type: ignore[arg-type]
        )

    best_snapshot: dict[str, Any] | None = None
    flushed = -1

    def flush(epoch: int, partial: bool = False) -> None:
        nonlocal best_snapshot, flushed
        flushed = epoch
        if not writer:
            return
        save_checkpoint(current_checkpoint(epoch, partial), wd.checkpoint_last)
        if best_snapshot is not None:
            save_checkpoint(_checkpoint_dict(st=st, **best_snapshot, **common), wd.checkpoint_best)  # type: ignore[arg-type]
            best_snapshot = None
        write_csv(pd.DataFrame(st.history, columns=HISTORY_COLUMNS), wd.history)

    if writer:
        wd.training.mkdir(parents=True, exist_ok=True)
    if st.epoch == 0:
        flush(0)  # an interrupt before the first epoch ends still leaves a usable checkpoint
    n_params = count_parameters(model)
    t_start = time.perf_counter()
    last_flush = time.perf_counter()
    stopped_early = False
    outer = tqdm(
        total=t.epochs, initial=min(st.epoch, t.epochs), desc="train", unit="epoch", disable=not progress,
        dynamic_ncols=True,
    )
    with _StopFlag() as local_stop, outer:
        stop = local_stop if dist is None else dist.agreed(local_stop)
        epoch = st.epoch
        while epoch < t.epochs:
            if t.early_stopping > 0 and st.bad_epochs >= t.early_stopping:
                stopped_early = True
                break
            epoch += 1
            t0 = time.perf_counter()
            order = epoch_order(train_idx, t.seed, epoch)
            with tqdm(
                total=int(order.shape[0]), desc=f"epoch {epoch}", unit="month", leave=False,
                disable=not progress, dynamic_ncols=True,
            ) as inner:
                res = train_epoch(net, optimizer, data, order, t.batch_size, rt, should_stop=stop,
                                  progress=inner, dist=dist)
            if res.stopped:
                flush(epoch - 1, partial=True)
                if dist is not None:
                    dist.barrier()  # the launcher stops all ranks once one exits non-zero
                raise TrainingInterrupted(
                    f"training interrupted in epoch {epoch}: {wd.checkpoint_last} holds the weights "
                    f"after {epoch - 1} full epochs plus the partial one; continue with "
                    "`smcore train --resume`"
                )
            val = evaluate(model, data, val_idx, max(t.batch_size, 8), rt)
            if dist is None:
                train_loss, val_loss = res.mean(), val.mean()  # the one host sync per epoch
            else:  # the same numbers on every rank, so that all take the same decisions
                sums = [res.loss_sum, res.samples, val.loss_sum, val.samples]
                tl, tn, vl, vn = dist.sum(sums, rt.device)
                train_loss, val_loss = tl / max(tn, 1.0), vl / max(vn, 1.0)
            if not math.isfinite(train_loss):
                flush(epoch - 1, partial=True)
                if dist is not None:
                    dist.barrier()
                raise SmcoreError(f"training diverged in epoch {epoch} (loss {train_loss}); lower --lr")
            lr = float(optimizer.param_groups[0]["lr"])
            scheduler.step(val_loss)
            st.epoch = epoch
            if val_loss < st.best_val_loss:
                st.best_val_loss, st.best_epoch, st.bad_epochs = val_loss, epoch, 0
                best_snapshot = None if not writer else dict(
                    model_state=copy.deepcopy(model.state_dict()),
                    optimizer_state=copy.deepcopy(optimizer.state_dict()),
                    scheduler_state=copy.deepcopy(scheduler.state_dict()),
                    rng_state=_rng_state(rt.device),
                    epoch=epoch,
                )
            else:
                st.bad_epochs += 1
            record = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "lr": lr,
                      "seconds": time.perf_counter() - t0}
            st.history.append(record)
            outer.update(1)
            outer.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}", lr=f"{lr:.1e}")
            now = time.perf_counter()
            if now - last_flush >= checkpoint_interval_s or epoch == t.epochs:
                flush(epoch)
                last_flush = now
            if on_epoch is not None:
                on_epoch(epoch, record)
        if flushed != st.epoch:
            flush(st.epoch)
    seconds = time.perf_counter() - t_start
    trained = len(st.history)
    summary = {
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
        "world_size": 1 if dist is None else dist.world_size,
        "input_norm": data.norm.input_norm,
        "target_norm": data.norm.target_norm,
        "forced_window_years": data.norm.forced_window,
        "train_months": int(data.splits["train"].shape[0]),
        "seconds_per_epoch": (
            sum(r["seconds"] for r in st.history) / trained if trained else float("nan")
        ),
    }
    if writer:
        write_json(summary, wd.training / "summary.json")
    return summary
