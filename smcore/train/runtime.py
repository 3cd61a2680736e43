"""Where and how YNet runs: device, mixed precision, memory format, micro-batches.

Decided once per run (nanoGPT style) and passed to the training and inference code. On a CPU
the precision and the micro-batch are measured at the run's shape, then cached
(:mod:`smcore.train.precision`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import ContextManager

import torch

from smcore.errors import ConfigError
from smcore.train.precision import Choice, ProbeShape, Timer, choose

__all__ = [
    "Runtime", "select_runtime", "cpu_supports_bf16", "DEVICES", "AMP_MODES",
]

DEVICES = ("auto", "cpu", "cuda", "mps")
AMP_MODES = ("auto", "bf16", "off")


def cpu_supports_bf16() -> bool:
    """True when oneDNN has native bf16 kernels on this CPU (AVX-512 BF16 or AMX)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@dataclass(frozen=True)
class Runtime:
    """How YNet runs on one device.

    Device, autocast dtype (``None`` = fp32), whether tensors go channels-last, the most
    months one forward/backward pass takes (``micro_batch``; ``None`` = the whole batch), and
    on a CPU how the precision and micro-batch were chosen (``choice``).
    """

    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool
    micro_batch: int | None = None
    choice: Choice | None = field(default=None, compare=False)

    @property
    def amp(self) -> str:
        """``"bf16"`` or ``"off"``."""
        return "bf16" if self.amp_dtype is torch.bfloat16 else "off"

    @property
    def name(self) -> str:
        """Human-readable device name (GPU model on CUDA)."""
        if self.device.type == "cuda":
            return torch.cuda.get_device_name(self.device)
        return self.device.type

    def autocast(self) -> ContextManager[object]:
        """Autocast context for forward passes (a no-op in fp32)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def pass_size(self, n: int) -> int:
        """Months per forward/backward pass for a batch of ``n`` months."""
        return n if self.micro_batch is None else min(n, self.micro_batch)

    def parts(self, n: int) -> list[slice]:
        """Slices of a batch of ``n`` months, one per forward/backward pass."""
        step = self.pass_size(n)
        return [slice(i, min(i + step, n)) for i in range(0, n, step)]

    def inference(self) -> Runtime:
        """The runtime for forward passes without gradients (``smcore predict``).

        On a CPU the tensors go channels-last whatever training chose: for YNet's inference
        oneDNN's channels-last convolutions measured about 30 % faster than the default layout
        in fp32 (0.037-0.043 s against 0.051-0.061 s per month on a 2-core AMD EPYC, passes of
        2 months; docs/scaling.md), while training, whose backward pass dominates, measured it
        slower. Other devices keep their layout.
        """
        return replace(self, channels_last=True) if self.device.type == "cpu" else self

    def place(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` moved to the device, in the runtime's memory format."""
        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def memory_format(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` in the runtime's memory format (4-D tensors only)."""
        if self.channels_last and t.ndim == 4:
            return t.contiguous(memory_format=torch.channels_last)
        return t


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def select_runtime(
    device: str = "auto",
    amp: str = "auto",
    *,
    local_rank: int | None = None,
    micro_batch: int = 0,
    shape: ProbeShape | None = None,
    report: Callable[[str], None] | None = None,
    timer: Timer | None = None,
) -> Runtime:
    """Resolve ``device`` (auto|cpu|cuda[:i]|mps), ``amp`` (auto|bf16|off) and ``micro_batch``.

    ``auto`` picks CUDA, then MPS, then the CPU. ``amp=auto`` means bf16 autocast on CUDA
    GPUs that support it; on a CPU, bf16 where it measured at least 10 % faster than fp32 for
    the network and grids ``shape`` (:func:`smcore.train.precision.choose`: timed once, then
    cached; without a shape, fp32). Channels-last is used with bf16, on CUDA, where it is the
    fast layout for convolutions, and in fp32 on a CPU where it measured faster. With
    ``local_rank`` (data-parallel training, one process per GPU) the GPU is
    ``cuda:local_rank`` and ``device`` must not name an index. ``micro_batch`` > 0 caps the
    months per forward/backward pass (a batch's gradients are accumulated over its passes); 0
    means the fastest of a few sizes on the CPU (measured with the precision) and the whole
    batch on a GPU. ``report`` gets one line saying what was chosen on a CPU and why;
    ``timer`` replaces the probe (tests).
    """
    kind = device.split(":")[0]
    if kind not in DEVICES:
        raise ConfigError(f"unknown device {device!r}: choose one of {', '.join(DEVICES)}")
    if amp not in AMP_MODES:
        raise ConfigError(f"unknown amp mode {amp!r}: choose one of {', '.join(AMP_MODES)}")
    if micro_batch < 0:
        raise ConfigError(f"micro-batch must be >= 0 (0 = auto), got {micro_batch}")
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu"
        device = kind
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA GPU is available")
    if kind == "mps" and not _mps_available():
        raise ConfigError("device 'mps' requested but MPS is not available")
    if local_rank is not None and kind == "cuda":
        if ":" in device:
            raise ConfigError(
                f"device {device!r}: with --ddp each process uses cuda:LOCAL_RANK; pass --device cuda"
            )
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA GPUs are "
                "visible: lower torchrun's --nproc-per-node"
            )
        device = f"cuda:{local_rank}"
    dev = torch.device(device)
    if kind == "cuda":
        bf16_ok = torch.cuda.is_bf16_supported()
    elif kind == "cpu":
        bf16_ok = cpu_supports_bf16()
    else:
        bf16_ok = False
    if amp == "bf16" and not bf16_ok:
        raise ConfigError(f"bf16 mixed precision is not supported on device {device!r}")
    if kind != "cpu":
        use_bf16 = amp == "bf16" or (amp == "auto" and bf16_ok)
        return Runtime(
            device=dev,
            amp_dtype=torch.bfloat16 if use_bf16 else None,
            channels_last=kind == "cuda" or use_bf16,
            micro_batch=micro_batch or None,
        )
    choice = choose(shape, amp, micro_batch, bf16_native=bf16_ok, timer=timer, report=report)
    if report is not None:
        report(choice.describe())
    return Runtime(
        device=dev,
        amp_dtype=torch.bfloat16 if choice.amp == "bf16" else None,
        channels_last=choice.channels_last,
        micro_batch=choice.micro_batch,
        choice=choice,
    )
