"""YNet: fusion and downscaling of many coarse fields into one fine field.

The structure follows Liu, Ganguly & Dy (2020) as used by Feng et al. (2022):

1. a trunk on the coarse grid (no pooling): ``depth`` conv 3×3 + ReLU layers, then
   ``depth`` decoder blocks [transposed conv 3×3 + ReLU → conv 3×3 (+ ReLU)] with
   symmetric additive skips from every second encoder layer, and a global residual;
2. an upsampler: conv 3×3 → ReLU → bilinear ×``scale`` → conv 3×3 → ReLU;
3. a fusion head on the fine grid: concat [upsampled trunk features, inputs
   bilinearly interpolated to the fine grid, static auxiliary fields] →
   conv 3×3 → ReLU → (feature-map dropout) → conv 1×1, linear output.

With ``in_channels=25``, ``features=64``, ``depth=15`` and 3 auxiliary fields the
network has about 1.67 M parameters (the authors report ~1.7 M).

This module holds the network only: no I/O, no training.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["YNetConfig", "YNet", "count_parameters"]


@dataclass(frozen=True)
class YNetConfig:
    """Architecture hyper-parameters of :class:`YNet` (what a checkpoint needs to rebuild it).

    Attributes
    ----------
    in_channels : number of coarse input fields (C; one per climate model).
    aux_channels : number of static fine-grid auxiliary fields (A).
    features : width F of the trunk and of the fusion layer.
    depth : number of encoder convs (= number of decoder blocks); 15 in the paper.
    scale : integer upsampling factor from the coarse to the fine grid (8 in the paper).
    dropout : probability of dropping whole feature maps of the fusion layer's hidden
        features during training (``nn.Dropout2d``; 0 disables it).
    outputs : output fields: 1, the value; 2, the value and the log-variance of a Gaussian
        predictive distribution around it (both in the scaled target's units).
    """

    in_channels: int
    aux_channels: int = 3
    features: int = 64
    depth: int = 15
    scale: int = 8
    dropout: float = 0.0
    outputs: int = 1

    def __post_init__(self) -> None:
        if self.in_channels < 1 or self.aux_channels < 0 or self.features < 1:
            raise ValueError(f"invalid YNet channel counts: {self}")
        if self.depth < 1 or self.scale < 1:
            raise ValueError(f"YNet depth and scale must be >= 1: {self}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"YNet dropout must be in [0, 1): {self.dropout}")
        if self.outputs not in (1, 2):
            raise ValueError(f"YNet outputs must be 1 (value) or 2 (value, log-variance): {self.outputs}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the constructor arguments (stored in checkpoints)."""
        return asdict(self)


def _skip_layout(depth: int) -> tuple[list[int], list[int]]:
    """Encoder layers whose outputs are kept, and decoder blocks that receive them.

    Both are 0-based indices. The encoder keeps layers 2, 4, … (1-based) up to
    ``ceil(depth/2) - 1`` of them; the decoder adds them, deepest first, after
    the blocks whose 1-based index has the parity of ``depth`` (1, 3, …, 13 for 15).
    """
    n_skips = max(math.ceil(depth / 2) - 1, 0)
    sources = [i for i in range(depth) if (i + 1) % 2 == 0][:n_skips]
    targets = [i for i in range(depth) if (i + 1 + depth) % 2 == 0][:n_skips]
    return sources, targets


class YNet(nn.Module):
    """YNet for ×``scale`` fusion-downscaling.

    ``forward(x, aux)`` takes coarse inputs ``x`` of shape (B, C, h, w) and fine auxiliary
    fields ``aux`` of shape (B, A, h·scale, w·scale) and returns (B, outputs, h·scale, w·scale):
    the value, and with ``outputs=2`` the log-variance of a Gaussian around it. Units are
    those of the (normalised) training data.
    """

    def __init__(
        self,
        in_channels: int,
        aux_channels: int = 3,
        features: int = 64,
        depth: int = 15,
        scale: int = 8,
        dropout: float = 0.0,
        outputs: int = 1,
    ) -> None:
        super().__init__()
        self.config = YNetConfig(in_channels, aux_channels, features, depth, scale, dropout, outputs)
        c, f = in_channels, features
        self.encoder = nn.ModuleList(
            [nn.Conv2d(c if i == 0 else f, f, 3, padding=1) for i in range(depth)]
        )
        self.deconvs = nn.ModuleList(
            [nn.ConvTranspose2d(f, f, 3, stride=1, padding=1) for _ in range(depth)]
        )
        self.decoder_convs = nn.ModuleList(
            [nn.Conv2d(f, c if i == depth - 1 else f, 3, padding=1) for i in range(depth)]
        )
        self._skip_sources, self._skip_targets = _skip_layout(depth)
        self.up_pre = nn.Conv2d(c, c, 3, padding=1)
        self.up_post = nn.Conv2d(c, c, 3, padding=1)
        self.fuse = nn.Conv2d(2 * c + aux_channels, f, 3, padding=1)
        # Channel-wise (spatial) dropout: neighbouring pixels of a feature map are strongly
        # correlated, and one draw per map is far cheaper than one per pixel of the fine grid.
        self.drop = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Conv2d(f, outputs, 1)
        self.split_fusion = True

    @classmethod
    def from_config(cls, config: YNetConfig | dict[str, Any]) -> "YNet":
        """Build a network from a :class:`YNetConfig` or its dict form."""
        kwargs = config.to_dict() if isinstance(config, YNetConfig) else dict(config)
        return cls(**kwargs)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """Coarse-grid feature extractor: (B, C, h, w) → (B, C, h, w)."""
        skips: list[torch.Tensor] = []
        h = x
        for i, conv in enumerate(self.encoder):
            h = F.relu(conv(h))
            if i in self._skip_sources:
                skips.append(h)
        last = len(self.deconvs) - 1
        for i, (deconv, conv) in enumerate(zip(self.deconvs, self.decoder_convs)):
            h = conv(F.relu(deconv(h)))
            if i != last:
                h = F.relu(h)
            if i in self._skip_targets:
                h = F.relu(h + skips.pop())
        return F.relu(h + x)

    def forward(self, x: torch.Tensor, aux: torch.Tensor) -> torch.Tensor:
        """Fused fine field (B, outputs, h·scale, w·scale) from inputs (B, C, h, w) and aux
        (B, A, H, W)."""
        cfg = self.config
        if x.ndim != 4 or x.shape[1] != cfg.in_channels:
            raise ValueError(f"YNet expects x of shape (B, {cfg.in_channels}, h, w), got {tuple(x.shape)}")
        size = (x.shape[2] * cfg.scale, x.shape[3] * cfg.scale)
        if aux.ndim != 4 or aux.shape[1] != cfg.aux_channels or tuple(aux.shape[2:]) != size:
            raise ValueError(
                f"YNet expects aux of shape (B, {cfg.aux_channels}, {size[0]}, {size[1]}), got {tuple(aux.shape)}"
            )
        feats = F.relu(self.up_pre(self.trunk(x)))
        feats = F.interpolate(feats, size=size, mode="bilinear", align_corners=False)
        feats = F.relu(self.up_post(feats))
        x_up = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        if self.split_fusion and torch.is_grad_enabled():
            # conv(cat[a, b]) == conv_a(a) + conv_b(b): the same weights, but in training no
            # input gradient is computed for the constant part (inputs and aux fields).
            # The sum goes in place into the constant part's output and the ReLU in place into
            # the sum (neither convolution's backward needs its output): two passes over the
            # largest activations fewer, about 5 % of a CPU training step.
            c = cfg.in_channels
            w = self.fuse.weight
            const = torch.cat([x_up, aux.to(x_up.dtype)], dim=1)
            fused = F.conv2d(const, w[:, c:], self.fuse.bias, padding=1)
            fused = F.relu_(fused.add_(F.conv2d(feats, w[:, :c], None, padding=1)))
            return self._dropout_head(fused)
        fused = self.fuse(torch.cat([feats, x_up, aux.to(feats.dtype)], dim=1))
        return self.head(self.drop(F.relu(fused)))

    def _dropout_head(self, hidden: torch.Tensor) -> torch.Tensor:
        """``head(drop(hidden))``; in training with dropout as one batched product.

        Feature-map dropout scales whole channels of each month, so it folds into a per-month
        copy of the 1×1 head's weights: the masked features (the largest activation) are never
        written, nor their gradient. The mask is drawn as ``F.dropout2d`` draws it (same random
        numbers, same result up to rounding).
        """
        if not (self.training and isinstance(self.drop, nn.Dropout2d) and self.drop.p > 0):
            return self.head(self.drop(hidden))
        p = self.drop.p
        b, f, h, w = hidden.shape
        mask = hidden.new_empty((b, f, 1, 1)).bernoulli_(1 - p).div_(1 - p)
        weight = self.head.weight.view(1, -1, f).to(hidden.dtype) * mask.view(b, 1, f)  # (b, o, f)
        bias = self.head.bias.to(hidden.dtype).view(1, -1, 1, 1)
        if hidden.is_contiguous(memory_format=torch.channels_last) and not hidden.is_contiguous():
            out = torch.bmm(hidden.permute(0, 2, 3, 1).reshape(b, h * w, f), weight.transpose(1, 2))
            out = out.view(b, h, w, -1).permute(0, 3, 1, 2)
        else:
            out = torch.bmm(weight, hidden.reshape(b, f, h * w)).view(b, -1, h, w)
        return out + bias


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
