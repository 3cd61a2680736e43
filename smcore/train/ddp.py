"""Data-parallel training across processes (``smcore train --ddp`` under ``torchrun``).

Each process (rank) holds the whole training data and a replica of YNet wrapped in
:class:`torch.nn.parallel.DistributedDataParallel`, which averages the gradients over ranks.

Sharding: not :class:`~torch.utils.data.DistributedSampler` (it pads and interleaves, so
the ranks' samples differ from a single process's batches) but an equivalent sharding of the
same seeded permutation. Every rank walks through the single-process global batches of
``batch_size`` months; rank ``r`` of ``W`` takes the ``r``-th of ``W`` contiguous, nearly equal
slices of each batch (:func:`shard_batch`), so the union of the ranks' months in every step is
exactly the single-process batch. The local loss (the land-only loss over the *local* batch)
is multiplied by ``W * n_local / n_global`` (1 when the batch splits evenly), so that DDP's mean
over ranks is the gradient of the single-process loss of the global batch; a rank whose slice of
a short last batch is empty runs one month with weight 0 (DDP needs every rank in every step).

Validation months are split the same way and the per-epoch loss sums are all-reduced, so every
rank sees the same train/validation losses and takes the same scheduler and early-stopping
decisions. The SIGINT/SIGTERM stop flag is all-reduced (max) after every step on a CPU (gloo)
group, which adds no GPU synchronisation; all ranks stop after the same step.

Without dropout the result equals single-process training up to floating-point summation
order. With dropout each rank draws its own masks (seeded ``seed + rank``), so results are
statistically, not bitwise, equivalent.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from smcore.config import TrainConfig
from smcore.errors import ConfigError
from smcore.train.runtime import Runtime, select_runtime

__all__ = [
    "TORCHRUN_VARS",
    "DistContext",
    "torchrun_env",
    "launch_rank",
    "check_world",
    "shard_batch",
    "session",
]

TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
LAUNCH_HINT = "launch with `torchrun --nproc-per-node N -m smcore train --ddp ...`"


@dataclass(frozen=True)
class DistContext:
    """The place of this process in the process group, and the helpers the loop calls.

    ``control`` is a gloo group for host-side flags (``None``: the default group, already gloo).
    """

    rank: int
    world_size: int
    local_rank: int
    backend: str
    control: Any = None

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only rank that writes files and shows progress."""
        return self.rank == 0

    def shard(self, batch: torch.Tensor) -> tuple[torch.Tensor, int, float]:
        """The share of this rank of a global batch: see :func:`shard_batch`."""
        return shard_batch(batch, self.rank, self.world_size)

    def local_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """The contiguous slice of ``indices`` of this rank (for evaluation; may be empty)."""
        return torch.tensor_split(indices, self.world_size)[self.rank]

    def agreed(self, local: Callable[[], bool]) -> Callable[[], bool]:
        """``local`` made collective: true on every rank once it is true on any rank.

        Every rank must call the result at the same points (once per training step).
        """

        def check() -> bool:
            flag = torch.tensor([1 if local() else 0], dtype=torch.int32)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self.control)
            return bool(flag.item())

        return check

    def sum(self, values: list[float | torch.Tensor], device: torch.device) -> list[float]:
        """Sums over ranks of ``values`` (numbers or 0-d tensors), in one all-reduce."""
        t = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=device).reshape(())
                         for v in values])
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return [float(v) for v in t.tolist()]

    def barrier(self) -> None:
        """Wait for every rank (on the host-side group)."""
        dist.barrier(group=self.control)

    def wrap(self, model: torch.nn.Module, rt: Runtime) -> torch.nn.Module:
        """``model`` in DistributedDataParallel (broadcasts rank 0's weights to all ranks)."""
        from torch.nn.parallel import DistributedDataParallel

        ids = [rt.device.index] if rt.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids, gradient_as_bucket_view=True)


def torchrun_env(environ: dict[str, str] | None = None) -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from the variables ``torchrun`` sets.

    One-line :class:`ConfigError` when any of :data:`TORCHRUN_VARS` is missing or malformed.
    """
    env = os.environ if environ is None else environ
    missing = [k for k in TORCHRUN_VARS if not env.get(k)]
    if missing:
        raise ConfigError(
            f"--ddp needs the torchrun environment ({', '.join(missing)} not set): {LAUNCH_HINT}"
        )
    try:
        rank, world, local = (int(env[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    except ValueError as exc:
        raise ConfigError(f"--ddp: malformed torchrun environment: {exc}") from exc
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ConfigError(
            f"--ddp: inconsistent torchrun environment (RANK={rank}, WORLD_SIZE={world})"
        )
    return rank, world, local


def launch_rank(environ: dict[str, str] | None = None) -> int | None:
    """The ``RANK`` set by the launcher, or ``None`` outside ``torchrun``/malformed."""
    try:
        return int((os.environ if environ is None else environ)["RANK"])
    except (KeyError, ValueError):
        return None


def check_world(batch_size: int, world_size: int) -> None:
    """The global batch must split evenly over the ranks."""
    if batch_size % world_size:
        raise ConfigError(
            f"--ddp: the global batch size {batch_size} is not divisible by the world size "
            f"{world_size}: choose --batch-size a multiple of {world_size}"
        )


def shard_batch(batch: torch.Tensor, rank: int, world_size: int) -> tuple[torch.Tensor, int, float]:
    """Rank ``rank``'s slice of the global batch ``batch`` (1-D month indices).

    Returns ``(indices, n_local, loss_factor)``: the ``rank``-th of ``world_size`` contiguous
    slices (``torch.tensor_split``: sizes differ by at most one), its length, and the factor
    ``world_size * n_local / len(batch)`` that makes the mean over ranks of the scaled local
    losses equal the loss of the whole batch. An empty slice comes back as the batch's first
    month with ``n_local = 0`` and factor 0, so that the rank still runs a forward/backward pass.
    """
    n = int(batch.shape[0])
    part = torch.tensor_split(batch, world_size)[rank]
    k = int(part.shape[0])
    if k == 0:
        return batch[:1], 0, 0.0
    return part, k, 1.0 if k * world_size == n else world_size * k / n


@contextlib.contextmanager
def session(t: TrainConfig, *, timeout_s: float = 1800.0) -> Iterator[DistContext]:
    """Join the ``torchrun`` process group for training with ``t``; leave it on exit.

    Checks the environment and the batch size before contacting any other rank, picks the
    device (``cuda:LOCAL_RANK`` on GPUs) and the backend (nccl on CUDA, gloo on the CPU).
    """
    rank, world, local = torchrun_env()
    check_world(t.batch_size, world)
    if not dist.is_available():
        raise ConfigError("--ddp: this PyTorch build has no torch.distributed")
    rt = select_runtime(t.device, t.amp, local_rank=local, micro_batch=t.micro_batch)
    if rt.device.type not in ("cuda", "cpu"):
        raise ConfigError(f"--ddp runs on CUDA GPUs or the CPU, not on {rt.device.type!r}")
    backend = "nccl" if rt.device.type == "cuda" else "gloo"
    if rt.device.type == "cuda":
        torch.cuda.set_device(rt.device)
    timeout = datetime.timedelta(seconds=timeout_s)
    dist.init_process_group(backend=backend, rank=rank, world_size=world, timeout=timeout)
    try:
        control = dist.new_group(backend="gloo", timeout=timeout) if backend != "gloo" else None
        yield DistContext(rank=rank, world_size=world, local_rank=local, backend=backend,
                          control=control)
    finally:
        dist.destroy_process_group()
