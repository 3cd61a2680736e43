"""YNet architecture: shapes, parameter count, skips, input checks."""

from __future__ import annotations

import pytest
import torch

from smcore.models.ynet import YNet, YNetConfig, _skip_layout, count_parameters

torch.set_num_threads(1)


@pytest.mark.parametrize(
    ("h", "w", "scale", "depth"),
    [(4, 6, 2, 3), (3, 5, 4, 2), (5, 7, 3, 1), (2, 3, 8, 15), (18, 33, 8, 4), (1, 1, 1, 5)],
)
def test_shapes_round_trip(h: int, w: int, scale: int, depth: int) -> None:
    torch.manual_seed(0)
    net = YNet(in_channels=3, aux_channels=2, features=8, depth=depth, scale=scale)
    x = torch.randn(2, 3, h, w)
    aux = torch.randn(2, 2, h * scale, w * scale)
    out = net(x, aux)
    assert out.shape == (2, 1, h * scale, w * scale)
    assert torch.isfinite(out).all()


def test_parameter_count_matches_authors() -> None:
    net = YNet(in_channels=25, aux_channels=3, features=64, depth=15, scale=8)
    n = count_parameters(net)
    print(f"YNet parameters for C=25, F=64, depth=15, A=3: {n:,}")
    assert abs(n - 1.7e6) / 1.7e6 < 0.10
    trunk = sum(p.numel() for name, p in net.named_parameters()
                if name.split(".")[0] in ("encoder", "deconvs", "decoder_convs"))
    assert 1.45e6 < trunk < 1.7e6
    assert len(net.encoder) == 15 and len(net.deconvs) == 15 and len(net.decoder_convs) == 15


def test_skip_layout_is_symmetric_for_paper_depth() -> None:
    sources, targets = _skip_layout(15)
    assert sources == [1, 3, 5, 7, 9, 11, 13]  # encoder layers 2, 4, ..., 14 (1-based)
    assert targets == [0, 2, 4, 6, 8, 10, 12]  # decoder blocks 1, 3, ..., 13 (1-based)
    assert _skip_layout(1) == ([], [])


def test_every_parameter_gets_a_gradient() -> None:
    torch.manual_seed(0)
    net = YNet(in_channels=3, aux_channels=3, features=8, depth=4, scale=2, dropout=0.2)
    out = net(torch.randn(2, 3, 4, 4), torch.randn(2, 3, 8, 8))
    out.square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


def test_dropout_only_in_training_mode() -> None:
    torch.manual_seed(0)
    net = YNet(in_channels=2, aux_channels=1, features=8, depth=2, scale=2, dropout=0.5)
    x, aux = torch.randn(1, 2, 3, 3), torch.randn(1, 1, 6, 6)
    net.eval()
    assert torch.equal(net(x, aux), net(x, aux))
    net.train()
    assert not torch.equal(net(x, aux), net(x, aux))


def test_config_round_trip_and_validation() -> None:
    net = YNet(in_channels=4, aux_channels=3, features=8, depth=2, scale=4, dropout=0.1)
    again = YNet.from_config(net.config.to_dict())
    assert again.config == net.config
    assert YNet.from_config(YNetConfig(4, 3, 8, 2, 4, 0.1)).config == net.config
    with pytest.raises(ValueError):
        YNetConfig(in_channels=0)
    with pytest.raises(ValueError):
        YNetConfig(in_channels=2, dropout=1.0)


def test_wrong_input_shapes_raise() -> None:
    net = YNet(in_channels=3, aux_channels=2, features=4, depth=1, scale=2)
    with pytest.raises(ValueError, match="x of shape"):
        net(torch.randn(1, 4, 3, 3), torch.randn(1, 2, 6, 6))
    with pytest.raises(ValueError, match="aux of shape"):
        net(torch.randn(1, 3, 3, 3), torch.randn(1, 2, 5, 6))


def test_split_fusion_equals_concatenated_convolution() -> None:
    torch.manual_seed(0)
    net = YNet(in_channels=3, aux_channels=2, features=8, depth=2, scale=2).eval()
    x, aux = torch.randn(2, 3, 4, 5), torch.randn(2, 2, 8, 10)
    split = net(x, aux)  # grad enabled: the split path
    with torch.no_grad():
        cat = net(x, aux)  # inference: one convolution over the concatenation
    assert torch.allclose(split, cat, atol=1e-5)


@pytest.mark.parametrize("outputs", [1, 2])
@pytest.mark.parametrize("channels_last", [False, True])
def test_training_path_equals_dropout_then_head(outputs: int, channels_last: bool) -> None:
    """The training path (split fusion, in-place sum, dropout folded into the head's weights)
    gives the output and gradients of the plain layers, feature-map dropout included: same
    random draws, same masks."""
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = YNet(in_channels=3, aux_channels=2, features=8, depth=2, scale=2, dropout=0.5,
               outputs=outputs).to(memory_format=fmt).train()
    x = torch.randn(4, 3, 4, 5).contiguous(memory_format=fmt)
    aux = torch.randn(4, 2, 8, 10).contiguous(memory_format=fmt)
    results = []
    for split in (True, False):  # False: one convolution over the concatenation, nn.Dropout2d, head
        net.split_fusion = split
        net.zero_grad()
        torch.manual_seed(1)
        out = net(x, aux)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        results.append((out.detach(), [p.grad.clone() for p in net.parameters()], torch.rand(3)))
    (out_a, grads_a, after_a), (out_b, grads_b, after_b) = results
    assert out_a.shape == (4, outputs, 8, 10)
    with torch.no_grad():
        assert not torch.allclose(out_a, net.eval()(x, aux), atol=1e-3)  # maps were dropped
    assert torch.allclose(out_a, out_b, atol=1e-5)
    for ga, gb in zip(grads_a, grads_b, strict=True):
        assert torch.allclose(ga, gb, atol=1e-5)
    assert torch.equal(after_a, after_b)  # the same random numbers were drawn
