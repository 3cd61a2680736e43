"""Training throughput of smcore's YNet loop against a naive loop, same model and data, same run.

The naive loop is what the reference code does: batch 1, fp32, the sample copied host →
device every step and ``loss.item()`` every step. The project loop is
:func:`smcore.train.loop.train_epoch`: batches of ``--batch-size`` (run in passes of the
runtime's micro-batch, 4 months on the CPU), bf16 autocast and channels-last where the device
supports them, data resident on the device, losses accumulated on the device.

Besides the two rates it prints the work per sample (counted by torch's FLOP counter), and,
where the project runs in bf16, the fp32 and bf16 rates of one dense 64→64 convolution: the
most this hardware gives a convolution, hence a ceiling for the project loop's samples/s.

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
from smcore.train.data import AUX_FIELDS, Normalization, StaticFields, TrainingData
from smcore.train.loop import (
    _data_on_device,
    build_optimizer,
    epoch_order,
    evaluate,
    masked_mse,
    train_epoch,
)
from smcore.train.runtime import Runtime, select_runtime


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
    norm = Normalization("standard", "standard", np.zeros(channels, np.float32), np.ones(channels, np.float32),
                         None, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0)
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


def conv_rates(
    rt: Runtime, features: int, size: tuple[int, int], batch: int, seconds: float
) -> tuple[float, float]:
    """GFLOP/s of a dense ``features``→``features`` 3×3 convolution, fp32 and project precision.

    Times forward + weight gradient on a (``batch``, ``features``, *size) input, same input in
    both precisions/layouts.
    """
    conv = torch.nn.Conv2d(features, features, 3, padding=1).to(rt.device)
    x = torch.randn(batch, features, *size, device=rt.device)

    def rate(amp: bool) -> float:
        c = conv.to(memory_format=torch.channels_last) if amp and rt.channels_last else conv
        xi = rt.memory_format(x) if amp else x.contiguous()
        ctx = rt.autocast if amp else contextlib.nullcontext
        n, t0 = 0, time.perf_counter()
        while n < 2 or time.perf_counter() - t0 < seconds:
            with ctx():
                out = c(xi.requires_grad_(False))
            out.float().sum().backward()
            n += 1
        _sync(rt.device)
        return n / (time.perf_counter() - t0)

    rate(False), rate(True)  # warm-up
    flops = 2 * 2 * features * features * 9 * batch * size[0] * size[1]  # forward + weight gradient
    return rate(False) * flops / 1e9, rate(True) * flops / 1e9


def conv_ceiling(
    rt: Runtime, features: int, coarse: tuple[int, int], scale: int, batch: int, seconds: float
) -> tuple[float, float]:
    """Best fp32 and best project-precision GFLOP/s over the convolution shapes YNet trains with.

    The shapes: its trunk's (coarse grid, ``batch`` months) and its fine-grid layers' (one month
    and ``batch`` months), all at width ``features``. Their best rate is about what this hardware
    gives a convolution at all, so the whole loop, with its narrower layers, element-wise work
    and optimiser, cannot train faster than ``best / (FLOPs per sample)`` samples/s.
    """
    fine = (coarse[0] * scale, coarse[1] * scale)
    rates = [conv_rates(rt, features, size, b, seconds) for size, b in ((coarse, batch), (fine, 1), (fine, batch))]
    return max(r[0] for r in rates), max(r[1] for r in rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    ap.add_argument("--seconds", type=float, default=20.0, help="timed seconds per loop (all rounds)")
    ap.add_argument("--batch-size", type=int, default=None, help="project batch size (default 8; 32 on CUDA)")
    ap.add_argument("--amp", default="auto", help="project precision: auto | bf16 | off")
    ap.add_argument("--micro-batch", type=int, default=0,
                    help="project months per forward/backward pass (0 = auto: 4 on the CPU, whole batch on GPUs)")
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
                    help="skip the fp32-vs-project-precision convolution measurement")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rt = select_runtime(args.device, args.amp, micro_batch=args.micro_batch)
    bs = args.batch_size or (32 if rt.device.type == "cuda" else 8)
    if rt.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    h, w = (int(v) for v in args.coarse.lower().split("x"))
    data = synthetic_data(args.months, args.channels, h, w, args.scale)
    torch.manual_seed(0)
    model = YNet(args.channels, len(AUX_FIELDS), args.features, args.depth, args.scale, dropout=0.1)
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
    if args.ceiling and rt.amp_dtype is not None:
        micro = min(bs, rt.micro_batch or bs)
        fp32, amp = conv_ceiling(rt, args.features, (h, w), args.scale, micro, max(1.0, args.seconds / 20))
        print(f"precision ceiling: YNet's {args.features}->{args.features} 3x3 convs run at best {amp:.0f} GFLOP/s in "
              f"{rt.amp} and {fp32:.0f} GFLOP/s in fp32 on this device ({amp / fp32:.2f}x)")
        print(f"a loop running entirely at that {rt.amp} rate would train {amp / gflop:.1f} samples/s: "
              f"ratio {amp / gflop / naive:.2f} (the project loop reaches {project * gflop / amp:.0%} of it, "
              f"the naive loop {naive * gflop / fp32:.0%} of the fp32 rate)")
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
