"""The forced change's model weights (ClimWIP), its options, and a leak-free network path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
import zarr

from smcore.prep.store import open_prepared
from smcore.train.checkpoint import load_checkpoint
from smcore.train.data import load_training_data
from smcore.train.forced import ensemble_on_fine, slow_series
from smcore.train.loop import train
from smcore.train.normalization import Normalization
from smcore.train.predict import predict
from smcore.train.weights import climwip_weights, coarse_reference
from tests.factories.ynet import make_prepared, tiny_config

torch.set_num_threads(1)


def _series(trend: np.ndarray, season: float, rng: np.random.Generator, years: np.ndarray,
            months: np.ndarray) -> np.ndarray:
    """(T, h, w): a seasonal cycle, a trend field (per decade) and a little noise."""
    t = (years - years.mean())[:, None, None] / 10.0
    cyc = season * np.sin(2 * np.pi * months / 12.0)[:, None, None]
    return 0.25 + cyc + trend[None] * t + 0.002 * rng.standard_normal((years.size,) + trend.shape)


def test_climwip_rewards_skill_and_shares_weight_within_a_family():
    """M0 has the reference's trend; M1 and M2 are one family (nearly the same), both off;
    M3 is far off. Skill ranks M0 first, the family shares its weight, M3 gets least."""
    rng = np.random.default_rng(0)
    years = np.repeat(np.arange(1960, 2000), 12)
    months = np.tile(np.arange(12), 40)
    h, w = 4, 5
    trend = np.linspace(-0.01, 0.01, h * w).reshape(h, w)
    ref = _series(trend, 0.05, rng, years, months)
    twin = _series(trend + 0.006, 0.05, rng, years, months)
    models = [
        _series(trend, 0.05, rng, years, months),
        twin,
        twin + 1e-4 * rng.standard_normal(twin.shape),  # a family member: nearly the same
        _series(-trend, 0.08, rng, years, months),
    ]
    x = np.stack(models, axis=1)
    weights, details = climwip_weights(x, ref, months, years, np.linspace(30, 40, h))
    assert weights.sum() == pytest.approx(1.0)
    assert weights[0] > weights[1] > weights[3]
    assert weights[1] == pytest.approx(weights[2], rel=0.05)
    assert details["independence"][1] < 0.5 < details["independence"][0]
    assert np.argmin(details["skill_distance"]) == 0
    # the same models without the family duplicate: M1 alone keeps more weight than each twin
    alone, _ = climwip_weights(x[:, [0, 1, 3]], ref, months, years, np.linspace(30, 40, h))
    assert alone[1] > weights[1]


def test_coarse_reference_needs_a_quarter_of_the_block():
    y = np.full((1, 4, 4), np.nan)
    y[0, :2, :2] = [[0.1, 0.3], [np.nan, np.nan]]  # 2 of 4 cells
    y[0, 2, 2] = 0.5  # 1 of 4 cells: enough (a quarter)
    out = coarse_reference(y, 2)
    assert out[0, 0, 0] == pytest.approx(0.2)
    assert out[0, 1, 1] == pytest.approx(0.5)
    assert np.isnan(out[0, 0, 1]) and np.isnan(out[0, 1, 0])


def test_weighted_ensemble_equals_the_mean_with_equal_weights():
    slow = np.random.default_rng(1).standard_normal((3, 4, 2, 3)).astype(np.float32)
    equal = ensemble_on_fine(slow, (4, 6), np.full(4, 0.25))
    np.testing.assert_allclose(equal, ensemble_on_fine(slow, (4, 6)), atol=1e-6)
    one = ensemble_on_fine(slow, (4, 6), np.array([0.0, 1.0, 0.0, 0.0]))
    np.testing.assert_allclose(one, ensemble_on_fine(slow[:, 1:2], (4, 6)), atol=1e-6)


def test_options_reach_the_checkpoint_and_the_product(fresh_ynet_workdir):
    """ClimWIP weights, the continuation switch and the auxiliary fields are trained with,
    saved in the checkpoint and used again by predict."""
    wd = fresh_ynet_workdir()
    cfg = tiny_config(
        epochs=1, forced_window_years=3, forced_method="climwip", scenario_continuation=False,
        aux_fields=("elevation", "target_climatology", "land_mask"),
    )
    train(cfg, wd, progress=False)
    state = load_checkpoint(wd / "training" / "best.pt")
    norm = Normalization.from_state(state["normalization"])
    assert norm.forced_weights is not None and norm.forced_weights.sum() == pytest.approx(1.0)
    assert not np.allclose(norm.forced_weights, 1 / 3)
    assert norm.continuation is False
    assert norm.aux == ("elevation", "target_climatology", "land_mask")
    assert state["model_args"]["aux_channels"] == 3
    again = Normalization.from_state(norm.to_state())
    np.testing.assert_array_equal(again.forced_weights, norm.forced_weights)
    prepared = open_prepared(wd)
    assert len(slow_series(prepared, "historical", norm)) == 1  # not continued
    paths = predict(cfg, wd, progress=False)
    with xr.open_dataset(paths[0]) as ds:
        assert np.isfinite(ds["ssm"].values).any()


def _perturb_test_months(root) -> None:
    """Replace the reference's test-period months of a prepared store by other values."""
    prepared = open_prepared(root)
    test = prepared.split_mask("test")
    group = zarr.open_group(str(prepared.path), mode="r+")
    ref = group["reference"]
    values = ref[:]
    rng = np.random.default_rng(99)
    values[test] = np.where(np.isfinite(values[test]), rng.uniform(0.0, 0.6, values[test].shape),
                            np.nan)
    ref[:] = values


@pytest.mark.parametrize("method", ["ensemble_mean", "climwip"])
def test_the_network_never_sees_the_test_period(tmp_path, method):
    """Perturbing the reference's test months changes nothing that training produces: the
    fitted scaling and model weights, the network's weights after a seeded training, and the
    settings chosen on validation months (best epoch, its validation loss)."""
    cfg = tiny_config(epochs=3, forced_window_years=3, forced_method=method)
    runs = {}
    for name in ("clean", "perturbed"):
        wd, _ = make_prepared(tmp_path / name, cfg, seed=0)
        if name == "perturbed":
            _perturb_test_months(wd.root)
        runs[name] = (wd, train(cfg, wd, progress=False))
    (wd_a, sum_a), (wd_b, sum_b) = runs["clean"], runs["perturbed"]
    ref_a = open_prepared(wd_a).static["reference"].values
    ref_b = open_prepared(wd_b).static["reference"].values
    assert not np.allclose(ref_a, ref_b, equal_nan=True)  # the perturbation is real
    a, b = load_checkpoint(wd_a.checkpoint_best), load_checkpoint(wd_b.checkpoint_best)
    for key, value in a["normalization"].items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, b["normalization"][key]), key
        else:
            assert value == b["normalization"][key], key
    for key in a["model_state"]:
        assert torch.equal(a["model_state"][key], b["model_state"][key]), key
    assert (sum_a["best_epoch"], sum_a["best_val_loss"]) == (sum_b["best_epoch"],
                                                             sum_b["best_val_loss"])
    data = load_training_data(open_prepared(wd_b), forced_window=3, forced_method=method)
    assert not set(data.splits["test"].tolist()) & set(data.splits["train"].tolist())
