"""Training throughput of smcore's YNet loop against a naive loop, same model and data, same run.

The naive loop is what the reference code does: batch 1, fp32, the sample copied host →
device every step and ``loss.item()`` every step. The project loop is
:func:`smcore.train.loop.train_epoch`: batches of ``--batch-size`` run in passes of the
runtime's micro-batch, in the runtime's precision (on a CPU both measured at this shape by
:mod:`smcore.train.precision`, or read from its cache; bf16 autocast and channels-last on GPUs
that have bf16), data resident on the device, losses accumulated on the device.

Besides the two rates it prints the work per sample (counted by torch's FLOP counter), the
fp32 and bf16 rates of one dense 64→64 convolution, forward and both gradients: the most this
hardware gives a convolution, hence a ceiling for the project loop's samples/s; and the share
of the chosen precision's ceiling that the project loop reaches (``ceiling share:``).

Both start from the same weights and see the same synthetic data (C=25 models on the
18×33 coarse grid → 144×264, by default). The last line printed is::

    train_throughput ratio=<x> project=<samples/s> naive=<samples/s> device=<name>

Usage: ``python benchmarks/train_throughput.py [--device auto|cpu|cuda] [--seconds 20]``;
``--schedule 100`` also times the paper's whole schedule (100 epochs × 600 training months, with
validation) on synthetic in-memory data. The script needs only torch, numpy, pandas and xarray
(not netCDF4, zarr, dask or cftime), so it runs on a bare GPU node: on one H100,
``PYTHONPATH=. python benchmarks/train_throughput.py --device cuda --seconds 30 --schedule 100``
(``PYTHONPATH=.`` where smcore is not installed).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import math
import time
from typing import Callable

import numpy as np
import torch

from smcore.config import TrainConfig
from smcore.models.ynet import YNet, count_parameters
from smcore.train.data import StaticFields, TrainingData
from smcore.train.loop import (
    _data_on_device,
    build_optimizer,
    epoch_order,
    evaluate,
    masked_mse,
    train_epoch,
)
from smcore.train.normalization import AUX_FIELDS, AuxStats, Normalization
from smcore.train.precision import ProbeShape
from smcore.train.runtime import Runtime, cpu_supports_bf16, select_runtime
from smcore.train.scaling import StandardInput, StandardTarget


def synthetic_data(
    months: int, channels: int, h: int, w: int, scale: int, seed: int = 0, val_months: int = 0
) -> TrainingData:
    """Random, already-normalised tensors shaped like the prepared study data.

    The first ``months`` months are the training split, the ``val_months`` after them validation.
    """
    g = torch.Generator().manual_seed(seed)
    total = months + val_months
    H, W = h * scale, w * scale
    land = torch.zeros(H, W, dtype=torch.bool)
    land[H // 8 :, W // 6 :] = True
    inputs = StandardInput(np.zeros(channels, np.float32), np.ones(channels, np.float32))
    aux = AuxStats(AUX_FIELDS, elev_mean=0.0, elev_scale=1.0, clim_mean=0.0, clim_scale=1.0)
    norm = Normalization(inputs, StandardTarget(mean=0.0, scale=1.0), aux)
    static = StaticFields(land=land.numpy(), elevation=np.zeros((H, W), np.float32),
                          climatology=np.zeros((12, H, W), np.float32), lat=np.arange(H), lon=np.arange(W),
                          clat=np.arange(h), clon=np.arange(w))
    return TrainingData(
        x=torch.randn(total, channels, h, w, generator=g),
        y=torch.randn(total, 1, H, W, generator=g) * land,
        month=torch.arange(total) % 12,
        aux=torch.randn(12, len(AUX_FIELDS), H, W, generator=g),
        land=land[None, None],
        splits={"train": torch.arange(months), "val": torch.arange(months, total)},
        norm=norm,
        channels=[f"M{i}" for i in range(channels)],
        time=np.arange(total),
        static=static,
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class ProjectLoop:
    """smcore's training loop: batches, bf16/channels-last where supported, resident data."""

    def __init__(self, model: YNet, data: TrainingData, rt: Runtime, batch_size: int) -> None:
        self.rt, self.batch_size = rt, batch_size
        self.model = rt.place(model)
        self.opt, _ = build_optimizer(self.model, TrainConfig(), rt)
        self.data = _data_on_device(data, rt)
        self.order = self.data.splits["train"].to(self.data.x.device)
        train_epoch(self.model, self.opt, self.data, self.order[: 2 * batch_size], batch_size, rt)  # warm-up
        _sync(rt.device)

    def run(self, seconds: float, clock: Callable[[], float]) -> tuple[int, float]:
        """Train for about ``seconds``; return (samples, elapsed) on ``clock``."""
        samples, t0 = 0, clock()
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            res = train_epoch(self.model, self.opt, self.data, self.order, self.batch_size, self.rt,
                              deadline=deadline)
            samples += res.samples
            res.mean()  # the once-per-epoch host sync of the real loop
        _sync(self.rt.device)
        return samples, clock() - t0


class NaiveLoop:
    """The reference-style loop: batch 1, fp32, host→device copy and ``.item()`` every step."""

    def __init__(self, model: YNet, data: TrainingData, device: torch.device) -> None:
        self.device, self.data = device, data
        self.model = model.to(device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-4)
        self.land = data.land.to(device)
        self.i = 0
        self.losses: list[float] = []
        for _ in range(2):  # warm-up
            self.step()

    def step(self) -> None:
        i, d = self.i % self.data.x.shape[0], self.data
        x = d.x[i : i + 1].to(self.device)
        aux = d.aux[d.month[i : i + 1]].to(self.device)
        y = d.y[i : i + 1].to(self.device)
        loss = masked_mse(self.model(x, aux), y, self.land)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.losses.append(loss.item())
        self.i += 1

    def run(self, seconds: float, clock: Callable[[], float]) -> tuple[int, float]:
        """Train for about ``seconds``; return (samples, elapsed) on ``clock``."""
        samples, t0 = 0, clock()
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            self.step()
            samples += 1
        return samples, clock() - t0


def schedule_seconds(model: YNet, data: TrainingData, rt: Runtime, batch_size: int, epochs: int,
                     seed: int = 123) -> float:
    """Wall seconds of ``epochs`` epochs as :func:`smcore.train.loop.train` runs them, files aside.

    Each epoch: a seeded permutation of the training months, :func:`train_epoch`, validation
    with :func:`evaluate`, the one host sync for both losses, the plateau scheduler, and a copy
    of the model and optimiser states when validation improves. No early stopping (the data are
    noise), no checkpoint writes. The time includes moving the data to the device.
    """
    t0 = time.perf_counter()
    model = rt.place(model)
    opt, plateau = build_optimizer(model, TrainConfig(), rt)
    data = _data_on_device(data, rt)
    train_idx, val_idx = (data.splits[k].to(data.x.device) for k in ("train", "val"))
    best, snapshot = math.inf, None
    for epoch in range(1, epochs + 1):
        order = epoch_order(train_idx, seed, epoch)
        res = train_epoch(model, opt, data, order, batch_size, rt)
        val = evaluate(model, data, val_idx, max(batch_size, 8), rt)
        train_loss, val_loss = res.mean(), val.mean()
        if not math.isfinite(train_loss):
            raise RuntimeError(f"schedule diverged in epoch {epoch}")
        plateau.step(val_loss)
        if val_loss < best:
            best = val_loss
            snapshot = (copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()))
    _sync(rt.device)
    del snapshot
    return time.perf_counter() - t0


def train_flops_per_sample(model: YNet, data: TrainingData) -> float:
    """FLOPs of one training sample (forward + backward, batch 1), counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    m = copy.deepcopy(model).float().cpu()
    with FlopCounterMode(display=False) as counter:
        m(data.x[:1], data.aux[:1]).sum().backward()
    return float(counter.get_total_flops())


def conv_rate(
    device: torch.device, amp_dtype: torch.dtype | None, channels_last: bool, features: int,
    size: tuple[int, int], batch: int, seconds: float,
) -> float:
    """Best GFLOP/s of a dense ``features``→``features`` 3×3 convolution as training runs it.

    Forward, input gradient and weight gradient on a (``batch``, ``features``, *size) input, in
    autocast ``amp_dtype`` (None: fp32) and channels-last or not; the fastest of the passes that
    fit in ``seconds`` (at least 3, after a warm-up), so that load from other processes, which
    only slows passes down, hardly lowers it.
    """
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    g = torch.Generator().manual_seed(0)
    w = (torch.randn(features, features, 3, 3, generator=g) * 0.05).to(device, memory_format=fmt)
    x = torch.randn(batch, features, *size, generator=g).to(device, memory_format=fmt)
    grad = torch.randn(batch, features, *size, generator=g).to(device, amp_dtype or torch.float32)
    grad = grad.contiguous(memory_format=fmt)
    w.requires_grad_(True)
    x.requires_grad_(True)
    ctx = (contextlib.nullcontext if amp_dtype is None
           else lambda: torch.autocast(device_type=device.type, dtype=amp_dtype))

    def one() -> float:
        t0 = time.perf_counter()
        with ctx():
            out = torch.nn.functional.conv2d(x, w, padding=1)
        out.backward(grad)
        _sync(device)
        w.grad = x.grad = None
        return time.perf_counter() - t0

    one()  # warm-up
    best, n, t_end = math.inf, 0, time.perf_counter() + seconds
    while n < 3 or time.perf_counter() < t_end:
        best = min(best, one())
        n += 1
    flops = 3 * 2 * features * features * 9 * batch * size[0] * size[1]  # forward + 2 gradients
    return flops / best / 1e9


def conv_ceiling(
    device: torch.device, amp_dtype: torch.dtype | None, features: int, coarse: tuple[int, int],
    scale: int, batch: int, seconds: float,
) -> float:
    """Best GFLOP/s in ``amp_dtype`` (None: fp32) over the convolution shapes YNet trains with.

    The shapes: its trunk's (coarse grid, ``batch`` months) and its fine-grid layers' (one month
    and ``batch`` months), all at width ``features``, channels-last (bf16) or in the faster
    layout (fp32). Their best rate is about what this hardware gives a convolution at all, so the
    whole loop, with its narrower layers, element-wise work and optimiser, cannot train faster
    than ``best / (FLOPs per sample)`` samples/s.
    """
    fine = (coarse[0] * scale, coarse[1] * scale)
    layouts = (True,) if amp_dtype is not None else (False, True)  # fp32: the faster layout
    return max(conv_rate(device, amp_dtype, cl, features, size, b, seconds)
               for size, b in ((coarse, batch), (fine, 1), (fine, batch)) for cl in layouts)


def _bf16_ok(rt: Runtime) -> bool:
    if rt.device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    return rt.device.type == "cpu" and cpu_supports_bf16()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    ap.add_argument("--seconds", type=float, default=20.0, help="timed seconds per loop (all rounds)")
    ap.add_argument("--batch-size", type=int, default=None, help="project batch size (default 8; 32 on CUDA)")
    ap.add_argument("--amp", default="auto",
                    help="project precision: auto (measured on a CPU) | bf16 | off")
    ap.add_argument("--micro-batch", type=int, default=0,
                    help="project months per forward/backward pass (0 = auto: measured on the CPU, "
                    "the whole batch on GPUs)")
    ap.add_argument("--months", type=int, default=96, help="synthetic months held in memory")
    ap.add_argument("--channels", type=int, default=25)
    ap.add_argument("--coarse", default="18x33", help="coarse grid h x w")
    ap.add_argument("--scale", type=int, default=8)
    ap.add_argument("--features", type=int, default=64)
    ap.add_argument("--depth", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=4, help="alternating timed rounds per loop")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall: samples per second; cpu: per CPU-second of this process (CPU only)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--schedule", type=int, default=0, metavar="EPOCHS",
                    help="also time EPOCHS epochs of the whole schedule (the paper: 100), see --schedule-months")
    ap.add_argument("--schedule-months", type=int, default=600, help="training months of --schedule")
    ap.add_argument("--schedule-val", type=int, default=96, help="validation months of --schedule")
    ap.add_argument("--no-ceiling", dest="ceiling", action="store_false",
                    help="skip the fp32 and bf16 convolution ceilings")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    h, w = (int(v) for v in args.coarse.lower().split("x"))
    torch.manual_seed(0)
    model = YNet(args.channels, len(AUX_FIELDS), args.features, args.depth, args.scale, dropout=0.1)
    # on a CPU, amp=auto and micro-batch 0 are measured at this shape (or read from the cache)
    rt = select_runtime(args.device, args.amp, micro_batch=args.micro_batch,
                        shape=ProbeShape.of(model.config, (h, w)), report=print)
    bs = args.batch_size or (32 if rt.device.type == "cuda" else 8)
    if rt.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    data = synthetic_data(args.months, args.channels, h, w, args.scale)
    print(f"device={rt.name} amp={rt.amp} channels_last={rt.channels_last} batch={bs} "
          f"micro_batch={rt.micro_batch or bs} "
          f"threads={torch.get_num_threads()} params={count_parameters(model):,} "
          f"grid={h}x{w}->{h * args.scale}x{w * args.scale} C={args.channels}", flush=True)
    # The two loops alternate in rounds so that load from other processes hits both alike.
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    naive_loop = NaiveLoop(copy.deepcopy(model), data, rt.device)
    project_loop = ProjectLoop(copy.deepcopy(model), data, rt, bs)
    totals = {"naive": [0, 0.0], "project": [0, 0.0]}
    for r in range(args.rounds):
        for name, loop in (("naive", naive_loop), ("project", project_loop)):
            n, dt = loop.run(args.seconds / args.rounds, clock)
            totals[name][0] += n
            totals[name][1] += dt
            print(f"  round {r + 1}/{args.rounds} {name:7s}: {n / dt:8.2f} samples/s", flush=True)
    naive = totals["naive"][0] / totals["naive"][1]
    project = totals["project"][0] / totals["project"][1]
    print(f"naive   (batch 1, fp32, copy + .item() per step): {naive:8.2f} samples/s")
    print(f"project (batch {bs}, {rt.amp}, resident data):     {project:8.2f} samples/s")
    print(f"seconds per epoch of 600 training months: project {600 / project:.1f} s, naive {600 / naive:.1f} s")
    gflop = train_flops_per_sample(model, data) / 1e9
    print(f"work: {gflop:.3g} GFLOP per training sample; project {project * gflop:.0f} GFLOP/s, "
          f"naive {naive * gflop:.0f} GFLOP/s")
    if args.ceiling:
        micro = min(bs, rt.micro_batch or bs)
        secs = max(1.0, args.seconds / 20)
        dtypes = [None] + ([torch.bfloat16] if rt.amp_dtype is not None or _bf16_ok(rt) else [])
        ceil = {
            "fp32" if d is None else "bf16":
                conv_ceiling(rt.device, d, args.features, (h, w), args.scale, micro, secs)
            for d in dtypes
        }
        chosen = "bf16" if rt.amp_dtype is not None else "fp32"
        rates = " and ".join(f"{v:.0f} GFLOP/s in {k}" for k, v in ceil.items())
        ratio = f" (bf16/fp32 {ceil['bf16'] / ceil['fp32']:.2f}x)" if len(ceil) == 2 else ""
        top = ceil[chosen]
        print(f"precision ceiling: YNet's {args.features}->{args.features} 3x3 convs (forward and "
              f"both gradients) run at best {rates} on this device{ratio}; chosen: {chosen}")
        print(f"a loop running entirely at that {chosen} rate would train {top / gflop:.1f} "
              f"samples/s: ratio {top / gflop / naive:.2f} (the naive loop reaches "
              f"{naive * gflop / ceil['fp32']:.0%} of the fp32 rate)")
        print(f"ceiling share: the project loop ({chosen}) reaches {project * gflop / top:.0%} of "
              f"the {chosen} ceiling ({project * gflop:.0f} of {top:.0f} GFLOP/s)")
    if args.schedule > 0:
        sched = synthetic_data(args.schedule_months, args.channels, h, w, args.scale, seed=1,
                               val_months=args.schedule_val)
        secs = schedule_seconds(copy.deepcopy(model), sched, rt, bs, args.schedule)
        print(f"schedule: {args.schedule} epochs x {args.schedule_months} training months "
              f"(+{args.schedule_val} validation) in {secs:.1f} s on {rt.name} "
              f"({args.schedule * args.schedule_months / secs:.1f} training months/s)", flush=True)
    print(f"train_throughput ratio={project / naive:.2f} project={project:.2f} naive={naive:.2f} "
          f"device={rt.name.replace(' ', '_')}")


if __name__ == "__main__":
    main()
