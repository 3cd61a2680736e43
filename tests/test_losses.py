"""The training losses against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from smcore.models.ynet import YNet
from smcore.train.losses import LOG_VAR_RANGE, loss_for, masked_gaussian_nll, masked_mse, outputs_for


def _batch():
    # two pixels on land, one off land holding NaN
    land = torch.tensor([[[[True, True, False]]]])
    target = torch.tensor([[[[1.0, -1.0, float("nan")]]]])
    return land, target


def test_gaussian_nll_by_hand():
    land, target = _batch()
    mu = torch.tensor([[[[0.5, -1.0, 7.0]]]])
    log_var = torch.tensor([[[[0.0, math.log(0.25), 3.0]]]])
    pred = torch.cat([mu, log_var], dim=1)
    # pixel 1: ½(0 + 0.25/1 + log 2π); pixel 2: ½(log 0.25 + 0 + log 2π); mean over 2
    expect = 0.5 * ((0.25 + math.log(2 * math.pi)) + (math.log(0.25) + math.log(2 * math.pi))) / 2
    assert masked_gaussian_nll(pred, target, land).item() == pytest.approx(expect, rel=1e-6)
    # weights multiply each pixel's term
    w = torch.tensor([[[[2.0, 0.0, 5.0]]]])
    expect_w = 0.5 * 2 * (0.25 + math.log(2 * math.pi)) / 2
    assert masked_gaussian_nll(pred, target, land, w).item() == pytest.approx(expect_w, rel=1e-6)


def test_gaussian_nll_is_smallest_at_the_true_spread_and_its_gradient_stays_on_land():
    land, target = _batch()
    mu = torch.tensor([[[[0.0, 0.0, 0.0]]]])  # errors 1 and 1: the best σ² is 1
    values = []
    for lv in (-1.0, 0.0, 1.0):
        values.append(masked_gaussian_nll(torch.cat([mu, torch.full_like(mu, lv)], 1), target, land).item())
    assert values[1] < values[0] and values[1] < values[2]
    pred = torch.cat([mu, torch.zeros_like(mu)], 1).requires_grad_(True)
    masked_gaussian_nll(pred, target, land).backward()
    assert torch.isfinite(pred.grad).all() and (pred.grad[..., 2] == 0).all()
    # the clamp keeps an absurd log-variance finite
    pred = torch.cat([mu, torch.full_like(mu, -1e4)], 1)
    assert torch.isfinite(masked_gaussian_nll(pred, target, land))
    assert LOG_VAR_RANGE[0] < 0 < LOG_VAR_RANGE[1]


def test_mse_uses_the_value_channel_only():
    land, target = _batch()
    pred = torch.tensor([[[[0.0, 0.0, 9.0]], [[5.0, 5.0, 5.0]]]])  # (1, 2, 1, 3)
    assert masked_mse(pred, target, land).item() == pytest.approx(1.0)
    assert masked_mse(pred[:, :1], target, land).item() == pytest.approx(1.0)


def test_loss_names_and_network_outputs():
    assert loss_for("mse") is masked_mse and outputs_for("mse") == 1
    assert loss_for("gaussian_nll") is masked_gaussian_nll and outputs_for("gaussian_nll") == 2
    with pytest.raises(ValueError, match="unknown loss"):
        loss_for("mae")
    net = YNet(3, 2, features=4, depth=2, scale=2, outputs=2)
    out = net(torch.zeros(1, 3, 4, 5), torch.zeros(1, 2, 8, 10))
    assert out.shape == (1, 2, 8, 10)
    with pytest.raises(ValueError, match="outputs"):
        YNet(3, 2, features=4, depth=2, scale=2, outputs=3)
