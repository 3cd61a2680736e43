"""Training losses over land pixels: squared error, or the negative log-likelihood of a Gaussian.

Every loss takes the network's output ``pred`` (B, K, H, W), the scaled target (B, 1, H, W),
the land mask (1, 1, H, W) bool and optional per-pixel weights (B, 1, H, W); values outside
land (even NaN) reach neither the loss nor its gradient. Sums run in fp32 and are divided by
the number of land pixels in the batch; the result is a 0-d tensor on the device (no host
sync).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = [
    "Loss", "LOSSES", "LOG_VAR_RANGE", "masked_mse", "masked_gaussian_nll", "loss_for", "outputs_for",
]

Loss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]
"""``loss(pred, target, land, weight)`` → 0-d tensor."""

LOG_VAR_RANGE = (-12.0, 6.0)
"""Bounds of the predicted log-variance (scaled units): σ from 0.0025 to 20 units, so that a
few confident pixels cannot drive the loss to −∞ or its gradient to overflow in bf16."""


def _land_sum(values: torch.Tensor, land: torch.Tensor, weight: torch.Tensor | None,
              batch: int) -> torch.Tensor:
    zero = torch.zeros((), device=values.device)
    v = torch.where(land, values, zero)
    if weight is not None:
        v = v * torch.where(land, weight.float(), zero)
    return v.sum() / (land.sum() * batch)


def masked_mse(
    pred: torch.Tensor, target: torch.Tensor, land: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean squared error of the value (channel 0) over land pixels, optionally weighted."""
    zero = torch.zeros((), device=pred.device)
    clean = torch.where(land, target.float(), zero)
    sq = torch.where(land, pred[:, :1].float() - clean, zero).square()
    return _land_sum(sq, land, weight, pred.shape[0])


def masked_gaussian_nll(
    pred: torch.Tensor, target: torch.Tensor, land: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Negative log-likelihood of the target under N(μ, σ²) per pixel, over land.

    ``pred`` channel 0 is μ, channel 1 is log σ² (clamped to :data:`LOG_VAR_RANGE`). Per pixel
    ``½ (log σ² + (y − μ)² / σ² + log 2π)``, so that a perfect σ (= |y − μ| on average) is
    rewarded and the value is comparable with the textbook density.
    """
    zero = torch.zeros((), device=pred.device)
    mu = pred[:, :1].float()
    log_var = pred[:, 1:2].float().clamp(*LOG_VAR_RANGE)
    clean = torch.where(land, target.float(), zero)
    sq = torch.where(land, mu - clean, zero).square()
    nll = 0.5 * (log_var + sq * torch.exp(-log_var) + math.log(2 * math.pi))
    return _land_sum(nll, land, weight, pred.shape[0])


LOSSES = {"mse": masked_mse, "gaussian_nll": masked_gaussian_nll}
"""``train.loss`` → loss function."""


def loss_for(name: str) -> Loss:
    """The loss function called ``name`` (:data:`LOSSES`)."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; known: {', '.join(LOSSES)}") from None


def outputs_for(name: str) -> int:
    """YNet output fields a loss needs: 1 (value) or 2 (value and log-variance)."""
    loss_for(name)
    return 2 if name == "gaussian_nll" else 1
