"""Probabilistic scores against hand-computed values and independent definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from smcore.evaluation.probabilistic import (
    crps_ensemble,
    crps_gaussian,
    ensemble_quantiles,
    interval_coverage,
    interval_width,
    pit_ensemble,
    pit_gaussian,
    pit_histogram,
)


def _crps_by_integral(members: np.ndarray, y: float) -> float:
    """∫ (F(x) − 1{x ≥ y})² dx of the ensemble's step CDF, exactly, between the sorted points."""
    pts = np.sort(np.append(members, y))
    total = 0.0
    for a, b in zip(pts[:-1], pts[1:]):
        mid = 0.5 * (a + b)
        f = np.mean(members <= mid)
        total += (f - float(mid >= y)) ** 2 * (b - a)
    return total


def test_crps_of_a_small_ensemble_by_hand():
    # E|X − y| = (0.15 + 0.05 + 0.15)/3; ½E|X − X'| = ½ · 2(0.1 + 0.3 + 0.2)/9
    members = np.array([[0.1], [0.2], [0.4]])
    assert crps_ensemble(members, np.array([0.25])) == pytest.approx(0.35 / 3 - 0.6 / 9, abs=1e-12)
    assert crps_ensemble(members, np.array([0.25])) == pytest.approx(0.05, abs=1e-12)


def test_crps_of_one_member_is_the_absolute_error():
    x = np.array([[0.1, 0.3, 0.2]])
    y = np.array([0.15, 0.1, np.nan])
    assert crps_ensemble(x, y) == pytest.approx((0.05 + 0.2) / 2)
    assert crps_gaussian(x[0], 0.0, y) == pytest.approx((0.05 + 0.2) / 2)


def test_crps_ensemble_equals_the_integral_definition():
    rng = np.random.default_rng(3)
    members = rng.normal(0.3, 0.05, size=(7, 20))
    y = rng.normal(0.3, 0.06, size=20)
    per = crps_ensemble(members, y, mean=False)
    expect = [_crps_by_integral(members[:, i], y[i]) for i in range(20)]
    np.testing.assert_allclose(per, expect, rtol=1e-10)


def test_crps_gaussian_by_hand_and_against_a_large_ensemble():
    # μ = y: σ(2φ(0) − 1/√π) = σ(√2 − 1)/√π
    assert crps_gaussian(0.3, 0.02, 0.3) == pytest.approx(0.02 * (math.sqrt(2) - 1) / math.sqrt(math.pi))
    rng = np.random.default_rng(0)
    sample = rng.normal(0.25, 0.04, size=(20000, 1))
    assert crps_gaussian(0.25, 0.04, np.array([0.31])) == pytest.approx(
        crps_ensemble(sample, np.array([0.31])), rel=0.02
    )


def test_non_finite_pairs_are_left_out():
    members = np.array([[0.1, np.nan, 0.2], [0.3, 0.2, 0.2]])
    y = np.array([0.2, 0.2, np.nan])
    assert crps_ensemble(members, y) == pytest.approx(crps_ensemble(members[:, :1], y[:1]))
    assert math.isnan(crps_ensemble(members[:, 2:], y[2:]))
    with pytest.raises(ValueError, match="do not match"):
        crps_ensemble(members, y[:2])


def test_coverage_and_width_on_a_constructed_case():
    lo = np.zeros(4)
    hi = np.ones(4)
    y = np.array([0.5, 1.0, 1.5, np.nan])  # inside, on the edge (inside), outside, left out
    assert interval_coverage(lo, hi, y) == pytest.approx(2 / 3)
    assert interval_width(lo, hi, y) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="lower bound"):
        interval_coverage(hi, lo, y)


def test_a_calibrated_gaussian_covers_ninety_percent_and_has_a_flat_pit():
    rng = np.random.default_rng(1)
    mu = rng.uniform(0.1, 0.4, 50000)
    sigma = np.full_like(mu, 0.03)
    y = rng.normal(mu, sigma)
    z = 1.6448536269514722
    assert interval_coverage(mu - z * sigma, mu + z * sigma, y) == pytest.approx(0.90, abs=0.005)
    hist = pit_histogram(pit_gaussian(mu, sigma, y))
    np.testing.assert_allclose(hist, 0.1, atol=0.006)
    # too narrow: U-shaped PIT, low coverage
    narrow = pit_histogram(pit_gaussian(mu, sigma / 2, y))
    assert narrow[0] > 0.15 and narrow[-1] > 0.15 and narrow[5] < 0.08
    assert interval_coverage(mu - z * sigma / 2, mu + z * sigma / 2, y) < 0.65


def test_pit_of_a_calibrated_ensemble_is_flat_and_ties_are_randomised():
    rng = np.random.default_rng(2)
    members = rng.normal(size=(9, 40000))
    y = rng.normal(size=40000)
    np.testing.assert_allclose(pit_histogram(pit_ensemble(members, y), bins=10), 0.1, atol=0.006)
    # every member equals the observation: ranks spread over [0, 1], not piled at one end
    tied = pit_ensemble(np.zeros((4, 20000)), np.zeros(20000))
    np.testing.assert_allclose(pit_histogram(tied, bins=4), 0.25, atol=0.02)


def test_ensemble_quantiles_and_histogram_edges():
    members = np.array([[0.0, 1.0], [1.0, np.nan], [2.0, 3.0]])
    q = ensemble_quantiles(members, (0.05, 0.5, 0.95))
    np.testing.assert_allclose(q[:, 0], [0.1, 1.0, 1.9])
    assert np.isnan(q[:, 1]).all()
    np.testing.assert_allclose(pit_histogram(np.array([0.0, 0.05, 1.0, np.nan]), bins=2), [2 / 3, 1 / 3])


def test_calibration_pooled_over_blocks_equals_one_pass():
    from smcore.evaluation.calibration import Calibration

    rng = np.random.default_rng(5)
    members = rng.normal(0.3, 0.05, size=(12, 30, 40))
    obs = rng.normal(0.3, 0.05, size=(30, 40))
    obs[3, 7] = np.nan
    whole, parts = Calibration(), Calibration()
    whole.add_ensemble(members, obs)
    for sl in (slice(0, 11), slice(11, 30)):
        parts.add_ensemble(members[:, sl], obs[sl])
    a, b = whole.row(), parts.row()
    assert a["n"] == b["n"] == 30 * 40 - 1
    for key in ("coverage", "width", "CRPS"):
        assert a[key] == pytest.approx(b[key], rel=1e-12)
    assert a["CRPS"] == pytest.approx(crps_ensemble(members, obs), rel=1e-12)
    lo, hi = np.quantile(members, (0.05, 0.95), axis=0)
    assert a["coverage"] == pytest.approx(interval_coverage(lo, hi, obs))
    assert sum(a[f"pit_{i}"] for i in range(1, 11)) == pytest.approx(1.0)


@pytest.mark.parametrize("m", [1, 2, 7, 25])
def test_calibration_of_an_ensemble_scores_as_the_numpy_functions_do(m):
    """Calibration.add_ensemble's one-pass kernel against the scores computed by the module's
    NumPy functions: non-finite members and observations left out, ties randomised."""
    from smcore.evaluation.calibration import Calibration

    rng = np.random.default_rng(m)
    members = rng.gamma(3.0, 0.08, size=(m, 6, 50))
    obs = rng.gamma(3.0, 0.08, size=(6, 50))
    members[0, 1, :5] = np.nan
    members[-1, 2, 5:9] = np.inf
    obs[3, 10:14] = np.nan
    obs[4, :20] = members[0, 4, :20]  # ties with one member, or with every member
    members[:, 5, :10] = obs[5, :10]
    cal = Calibration()
    cal.add_ensemble(members, obs, seed=7)
    got = cal.row()

    ens = members.reshape(m, -1)
    y = obs.reshape(-1)
    ok = np.isfinite(y) & np.isfinite(ens).all(axis=0)
    crps = crps_ensemble(members, obs, mean=False)
    lo, hi = np.quantile(ens[:, ok], cal.quantiles, axis=0)
    pit = pit_ensemble(members, obs, seed=7)
    assert got["n"] == ok.sum() == crps.size == pit.size < y.size
    assert got["CRPS"] == pytest.approx(crps.mean(), rel=1e-12, abs=1e-15)
    assert got["width"] == pytest.approx((hi - lo).mean(), rel=1e-12, abs=1e-15)
    assert got["coverage"] == interval_coverage(lo, hi, y[ok])
    pit_freq = [got[f"pit_{i}"] for i in range(1, 11)]
    np.testing.assert_allclose(pit_freq, pit_histogram(pit), rtol=0, atol=0)


def test_calibration_of_a_gaussian_forecast():
    from smcore.evaluation.calibration import Calibration

    rng = np.random.default_rng(6)
    mu = rng.uniform(0.1, 0.4, size=(200, 100))
    y = rng.normal(mu, 0.02)
    cal = Calibration()
    cal.add_gaussian(mu, np.full_like(mu, 0.02), y)
    row = cal.row()
    assert row["coverage"] == pytest.approx(0.90, abs=0.01)
    assert row["width"] == pytest.approx(2 * 1.6448536269514722 * 0.02)
    assert row["CRPS"] == pytest.approx(crps_gaussian(mu, 0.02, y))
    assert math.isnan(Calibration().row()["CRPS"])
