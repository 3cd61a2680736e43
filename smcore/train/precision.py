"""Which precision and micro-batch YNet trains fastest in on this CPU: measured once, then cached.

A CPU with bf16 instructions does not make bf16 autocast faster: YNet's 64→64 convolutions ran
at best 131 GFLOP/s in bf16 against 173 in fp32 on a 2-core Intel Xeon with AVX-512 BF16 (no
AMX), but about 1.7× faster in bf16 on a 2-core AMD EPYC (Zen 4). So with ``amp=auto`` on a CPU,
:func:`choose` times YNet's dominant convolutions, forward and backward, at the run's shape
(:class:`ProbeShape`) in fp32 and in bf16/channels-last, for passes of 2, 4 and 8 months (about
a second or two), and keeps the fastest: bf16 only when it is at least :data:`BF16_MARGIN`
times as fast as fp32, and the micro-batch that trains fastest in the chosen precision. The
timings are cached per CPU model, thread count, torch version and network shape in
``precision.json`` under :func:`cache_dir`, so later runs (and ``smcore predict``) do not pay
for them; delete the file to measure again.

The probe (:class:`ProbeTimer`) times a training pass of ``m`` months through YNet with its
trunk cut to one layer (the fine-grid layers, which hold most of the work and all the large
activations, run as they train, element-wise work and cache misses included), plus the
trunk's ``features → features`` 3×3 convolution, scaled to the trunk layers left out
(:meth:`ProbeShape.train_flops`). fp32 is timed in both layouts. Each timing is the best of a
few interleaved rounds, so that load from other processes hits all variants alike; a probe
during which other processes kept the CPUs busy is used but not cached.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import platform
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from smcore.progress import StepBar

if TYPE_CHECKING:
    from smcore.models.ynet import YNetConfig

__all__ = [
    "BF16_MARGIN",
    "PROBE_MICRO_BATCHES",
    "FALLBACK_MICRO_BATCH",
    "MIN_PROBE_FLOPS",
    "CACHE_FILE",
    "VARIANTS",
    "ProbeShape",
    "Choice",
    "Timer",
    "ProbeTimer",
    "cache_dir",
    "cache_key",
    "choose",
]

BF16_MARGIN = 1.10  # bf16 autocast only when at least this many times as fast as fp32
PROBE_MICRO_BATCHES = (2, 4, 8)  # months per forward/backward pass tried when --micro-batch is 0
FALLBACK_MICRO_BATCH = 4  # months per pass where nothing was measured
MIN_PROBE_FLOPS = 1e8  # training work per month below which nothing is measured (tiny networks)
CACHE_FILE = "precision.json"
CACHE_VERSION = 1
PROBE_ROUNDS = 2  # timed rounds per cell, after one warm-up round
PROBE_DROPOUT = 0.1  # the probe network's (the default) feature-map dropout
# CPUs that other processes may keep busy (beyond those torch leaves free) while the probe
# runs; busier, its timings are used for this run but not cached
MAX_OTHER_LOAD = 0.25

# what the probe compares: name -> (amp, channels-last)
VARIANTS = {"fp32": ("off", False), "fp32-cl": ("off", True), "bf16": ("bf16", True)}

Timer = Callable[[str, int], float]
"""``timer(variant, m)``: estimated seconds of one training month in passes of ``m`` months,
``variant`` one of :data:`VARIANTS` (one measurement; :func:`choose` keeps the best)."""


@dataclass(frozen=True)
class ProbeShape:
    """The shape of a YNet run that decides its speed: the network's widths and the grids."""

    in_channels: int
    aux_channels: int
    features: int
    depth: int
    coarse: tuple[int, int]
    scale: int

    @classmethod
    def of(cls, config: YNetConfig, coarse: Iterable[int]) -> ProbeShape:
        """The shape of the network ``config`` on a coarse grid of ``coarse`` (h, w) cells."""
        h, w = (int(v) for v in coarse)
        return cls(config.in_channels, config.aux_channels, config.features, config.depth, (h, w),
                   config.scale)

    @property
    def fine(self) -> tuple[int, int]:
        """The fine grid (H, W)."""
        return self.coarse[0] * self.scale, self.coarse[1] * self.scale

    @property
    def key(self) -> str:
        """A compact name of the shape (part of the cache key)."""
        h, w = self.coarse
        return (f"C{self.in_channels}-A{self.aux_channels}-F{self.features}-D{self.depth}"
                f"-{h}x{w}-x{self.scale}")

    def train_flops(self, depth: int | None = None) -> tuple[float, float]:
        """FLOPs of one training month (forward and backward) on the coarse and on the fine grid.

        Convolutions only, of the network ``depth`` layers deep (default: its own depth); the
        first encoder layer and the fusion layer's constant part (inputs and auxiliary fields)
        need no input gradient.
        """
        c, f, a = self.in_channels, self.features, self.aux_channels
        d = self.depth if depth is None else depth
        hw = self.coarse[0] * self.coarse[1]
        fine = hw * self.scale**2
        trunk = 9 * hw * (3 * (c * f + (3 * d - 2) * f * f + f * c + c * c) - c * f)
        head = 9 * fine * (3 * (c * c + c * f) + 2 * (c + a) * f) + 3 * fine * f
        return 2.0 * trunk, 2.0 * head

    def conv_flops(self, m: int) -> float:
        """FLOPs of a trunk convolution (features → features, forward, backward) on m months."""
        return float(3 * 2 * 9 * m * self.coarse[0] * self.coarse[1] * self.features**2)


@dataclass(frozen=True)
class Choice:
    """The precision, layout and micro-batch of a CPU run, and where they came from.

    ``source``: ``"measured"`` (the probe ran now), ``"cache"`` (an earlier probe's timings),
    ``"forced"`` (``--amp bf16|off`` and ``--micro-batch N``) or ``"fixed"`` (not measured:
    a network too small to time, or no shape given). ``bf16_speedup``: fp32 seconds over bf16
    seconds of a training month, each at its fastest layout and micro-batch (None when not
    measured). ``seconds``: the timings per variant (:data:`VARIANTS`) and micro-batch.
    ``cache``: the file the timings came from or went to (None when they could not be cached);
    ``disturbed``: the CPUs other processes kept busy during a probe that was therefore not
    cached.
    """

    amp: str
    micro_batch: int
    source: str
    channels_last: bool = False
    bf16_speedup: float | None = None
    seconds: Mapping[str, Mapping[int, float]] = field(default_factory=dict)
    probe_seconds: float = 0.0
    cache: Path | None = None
    disturbed: float | None = None  # CPUs other processes kept busy during an uncached probe

    @property
    def cached(self) -> bool:
        """True when the choice came from an earlier run's measurement."""
        return self.source == "cache"

    def describe(self) -> str:
        """One line for the user: the choice, the measured ratio and where it came from."""
        name = "bf16 autocast" if self.amp == "bf16" else "fp32"
        layout = "channels-last" if self.channels_last else "default layout"
        out = f"precision: {name} ({layout}), passes of {self.micro_batch} months"
        if self.bf16_speedup is not None:
            out += (f"; bf16 trains YNet's convolutions {self.bf16_speedup:.2f}x as fast as fp32 "
                    f"here (bf16 needs >= {BF16_MARGIN:.2f}x)")
        if self.source == "measured":
            out += f"; measured in {self.probe_seconds:.1f} s"
            if self.cache is not None:
                out += f", cached in {self.cache}"
            elif self.disturbed is not None:
                out += (f" while other processes kept {self.disturbed:.1f} CPUs busy: not cached, "
                        "measured again next time")
            else:
                out += " (the cache could not be written)"
        elif self.source == "cache":
            out += f"; measured earlier ({self.cache})"
        elif self.source == "forced":
            out += "; as requested"
        else:
            out += "; not measured"
        return out


def cache_dir() -> Path:
    """``$SMCORE_CACHE_DIR``, else ``$XDG_CACHE_HOME/smcore``, else ``~/.cache/smcore``."""
    own = os.environ.get("SMCORE_CACHE_DIR")
    if own:
        return Path(own)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "smcore"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown cpu"


def cache_key(shape: ProbeShape, bf16_native: bool) -> str:
    """What the timings depend on: CPU model (and native bf16), cores, threads, torch, shape."""
    return (f"{_cpu_model()}|bf16={int(bf16_native)}|cpus={os.cpu_count()}"
            f"|threads={torch.get_num_threads()}|torch={torch.__version__}|{shape.key}")


def _read_cache(path: Path, report: Callable[[str], None] | None) -> dict[str, Any]:
    """The cache's entries; a missing file is empty, a corrupt one is ignored (and replaced)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        if report is not None:
            report(f"precision: ignoring the unreadable cache {path} ({exc.__class__.__name__})")
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION or not isinstance(
        data.get("entries"), dict
    ):
        if report is not None:
            report(f"precision: ignoring the cache {path} (not a version-{CACHE_VERSION} cache)")
        return {}
    return data["entries"]


def _cells(entry: Any) -> dict[str, dict[int, float]]:
    """The valid timings of a cache entry (anything malformed is dropped)."""
    out: dict[str, dict[int, float]] = {}
    seconds = entry.get("seconds") if isinstance(entry, dict) else None
    if not isinstance(seconds, dict):
        return out
    for prec, row in seconds.items():
        if prec not in VARIANTS or not isinstance(row, dict):
            continue
        for m, s in row.items():
            with contextlib.suppress(TypeError, ValueError):
                m_i, s_f = int(m), float(s)
                if m_i > 0 and math.isfinite(s_f) and s_f > 0:
                    out.setdefault(prec, {})[m_i] = s_f
    return out


def _write_cache(path: Path, entries: dict[str, Any]) -> bool:
    """Write the cache atomically (temp file, then rename); False when it cannot be written."""
    from smcore.io.atomic import atomic_path

    try:
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps({"version": CACHE_VERSION, "entries": entries}, indent=1,
                                      sort_keys=True), encoding="utf-8")
    except OSError:
        return False
    return True


class _OtherLoad:
    """CPUs kept busy by other processes while this one measures (Linux ``/proc/stat``).

    ``cores()`` is their average number of busy CPUs since construction, None where the system
    does not say.
    """

    def __init__(self) -> None:
        self._start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat", encoding="ascii") as f:
                # user nice system idle iowait irq softirq steal (guest time is within user)
                ticks = [int(v) for v in f.readline().split()[1:9]]
            hz = os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, AttributeError):
            return None
        if len(ticks) < 5:
            return None
        busy = (sum(ticks) - ticks[3] - ticks[4]) / hz  # steal counts: it slows the probe too
        own = sum(os.times()[:2])
        return busy, own, time.perf_counter()

    def cores(self) -> float | None:
        end = self._sample()
        if self._start is None or end is None or end[2] <= self._start[2]:
            return None
        others = (end[0] - self._start[0]) - (end[1] - self._start[1])
        return max(0.0, others / (end[2] - self._start[2]))


def _fastest(row: Mapping[int, float], micros: list[int]) -> float | None:
    """The best seconds of ``row`` over ``micros`` (None unless all of them were timed)."""
    return min(row[m] for m in micros) if all(m in row for m in micros) else None


def measure(
    cells: list[tuple[str, int]], timer: Timer, rounds: int = PROBE_ROUNDS
) -> dict[str, dict[int, float]]:
    """Best seconds per cell (precision, micro-batch) over ``rounds`` interleaved rounds.

    Not drawn in the terminal (the choice is reported in one line), but counted for the
    dashboard while a step runs (:class:`smcore.progress.StepBar`).
    """
    best: dict[str, dict[int, float]] = {}
    with StepBar(total=len(cells) * (rounds + 1), desc="measuring the CPU's precision and "
                 "micro-batch", unit="timing", disable=True) as bar:
        for prec, m in cells:  # warm-up: oneDNN builds its kernels for each shape on first use
            timer(prec, m)
            bar.update()
        for _ in range(rounds):
            for prec, m in cells:
                s = float(timer(prec, m))
                row = best.setdefault(prec, {})
                row[m] = min(row.get(m, math.inf), s)
                bar.update()
    return best


def choose(
    shape: ProbeShape | None,
    amp: str,
    micro_batch: int,
    *,
    bf16_native: bool,
    timer: Timer | None = None,
    cache: Path | None = None,
    report: Callable[[str], None] | None = None,
) -> Choice:
    """The precision (``amp``: auto|bf16|off), layout and micro-batch (0 = auto) of a CPU run.

    Forced values are kept (forced fp32 in the default layout). Otherwise the timings of
    ``shape`` (:data:`VARIANTS` × micro-batches) come from the cache file ``cache`` (default
    :func:`cache_dir` / :data:`CACHE_FILE`) or, where it lacks some, from ``timer`` (default
    :class:`ProbeTimer`; tests pass a fake), and are then cached unless other processes disturbed
    the probe. ``auto`` picks bf16 only where ``bf16_native`` and at least :data:`BF16_MARGIN`
    times as fast as the faster fp32 layout. Without a shape, or for a network too small to
    time (:data:`MIN_PROBE_FLOPS`), ``auto`` means fp32 and passes of
    :data:`FALLBACK_MICRO_BATCH` months.
    """
    if amp != "auto" and micro_batch:
        return Choice(amp=amp, micro_batch=micro_batch, source="forced",
                      channels_last=amp == "bf16")
    if shape is None or sum(shape.train_flops()) < MIN_PROBE_FLOPS:
        amp = "off" if amp == "auto" else amp
        return Choice(amp=amp, micro_batch=micro_batch or FALLBACK_MICRO_BATCH, source="fixed",
                      channels_last=amp == "bf16")
    if amp == "bf16":
        variants = ["bf16"]
    else:
        variants = ["fp32", "fp32-cl"] + (["bf16"] if amp == "auto" and bf16_native else [])
    micros = [micro_batch] if micro_batch else list(PROBE_MICRO_BATCHES)
    path = cache if cache is not None else cache_dir() / CACHE_FILE
    key = cache_key(shape, bf16_native)
    entries = _read_cache(path, report)
    table = _cells(entries.get(key))
    missing = [(v, m) for v in variants for m in micros if m not in table.get(v, {})]
    probe_s, stored, busy = 0.0, False, None
    if missing:
        t0, load = time.perf_counter(), _OtherLoad()
        new = measure(missing, timer if timer is not None else ProbeTimer(shape))
        probe_s, busy = time.perf_counter() - t0, load.cores()
        for v, row in new.items():
            table.setdefault(v, {}).update(row)
        spare = max(0, (os.cpu_count() or 1) - torch.get_num_threads())
        if busy is None or busy <= spare + MAX_OTHER_LOAD:
            entries[key] = {
                "seconds": {v: {str(m): s for m, s in sorted(row.items())}
                            for v, row in table.items()},
                "measured": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
            stored = _write_cache(path, entries)
        else:
            busy = round(busy, 2)
    # the fastest (variant, micro-batch) of each precision
    best = {
        prec: min(((table[v][m], v, m) for v in variants if VARIANTS[v][0] == prec for m in micros),
                  default=None)
        for prec in ("off", "bf16")
    }
    fp32s = [t for v in ("fp32", "fp32-cl") if (t := _fastest(table.get(v, {}), micros))]
    bf16 = _fastest(table.get("bf16", {}), micros)
    speedup = min(fp32s) / bf16 if fp32s and bf16 is not None else None
    if amp == "auto":
        faster = "bf16" in variants and speedup is not None and speedup >= BF16_MARGIN
        amp = "bf16" if faster else "off"
    _, variant, m_best = best[amp] or (0.0, "fp32", FALLBACK_MICRO_BATCH)  # (never None)
    return Choice(
        amp=amp,
        micro_batch=micro_batch or m_best,
        source="measured" if missing else "cache",
        channels_last=VARIANTS[variant][1],
        bf16_speedup=speedup,
        seconds={v: dict(row) for v, row in table.items()},
        probe_seconds=probe_s,
        cache=path if not missing or stored else None,
        disturbed=busy if missing and not stored and busy is not None else None,
    )


class ProbeTimer:
    """The probe (a :data:`Timer`): YNet's training pass at ``shape``, its trunk cut short.

    Times the forward and backward pass of a YNet one layer deep on ``m`` months at the run's
    grids (the fine-grid layers, which hold most of the work and all the large activations, as
    they train), then the trunk's ``features → features`` 3×3 convolution on the coarse grid,
    scaled to the trunk layers left out. fp32 in the default layout and channels-last, bf16 as
    training runs it: autocast and channels-last. Inputs are drawn once, for the largest
    micro-batch, and sliced; torch's random generator is left as it was.
    """

    def __init__(self, shape: ProbeShape, seed: int = 0) -> None:
        from smcore.models.ynet import YNet

        self.shape = shape
        self._seed = seed
        self._months = 0
        self._inputs: dict[str, tuple[torch.Tensor, ...]] = {}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = YNet(shape.in_channels, shape.aux_channels, shape.features, 1, shape.scale,
                       dropout=PROBE_DROPOUT)
        cl = copy.deepcopy(net).to(memory_format=torch.channels_last)
        self._nets = {"fp32": net, "fp32-cl": cl, "bf16": cl}
        trunk, _ = shape.train_flops()
        short, _ = shape.train_flops(depth=1)
        self._missing = trunk - short  # FLOPs per month of the trunk layers left out

    def _draw(self, months: int) -> None:
        s, g = self.shape, torch.Generator().manual_seed(self._seed)
        f = s.features
        base = (
            torch.randn(months, s.in_channels, *s.coarse, generator=g),  # inputs
            torch.randn(months, s.aux_channels, *s.fine, generator=g),  # auxiliary fields
            torch.randn(months, f, *s.coarse, generator=g),  # trunk layer: input,
            torch.randn(f, f, 3, 3, generator=g) * (2.0 / (9 * f)) ** 0.5,  # weights
            torch.randn(months, f, *s.coarse, generator=g),  # and output gradient
        )
        cl = tuple(t.contiguous(memory_format=torch.channels_last) for t in base)
        self._inputs = {"fp32": base, "fp32-cl": cl, "bf16": cl[:4] + (cl[4].to(torch.bfloat16),)}
        self._months = months

    def __call__(self, variant: str, m: int) -> float:
        """Estimated seconds of one training month in passes of ``m`` months, as ``variant``."""
        if m > self._months:
            self._draw(max(m, *PROBE_MICRO_BATCHES))
        net = self._nets[variant]
        x, aux, xt, wt, gt = self._inputs[variant]
        x, aux, gt = x[:m], aux[:m], gt[:m]
        xt, wt = (t.detach().requires_grad_(True) for t in (xt[:m], wt))
        ctx = (torch.autocast("cpu", dtype=torch.bfloat16) if variant == "bf16"
               else contextlib.nullcontext())
        net.train()
        with torch.random.fork_rng(devices=[]):  # dropout draws
            t0 = time.perf_counter()
            with ctx:
                out = net(x, aux)
            out.float().square().mean().backward()
            t1 = time.perf_counter()
            with ctx:
                yt = F.conv2d(xt, wt, padding=1)
            yt.backward(gt)
            t2 = time.perf_counter()
        net.zero_grad(set_to_none=True)
        return (t1 - t0) / m + (t2 - t1) * self._missing / self.shape.conv_flops(m)
