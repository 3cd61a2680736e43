"""AR6 robustness classes on hand-built trends; the Hawkins–Sutton partition on series whose
parts are known."""

from __future__ import annotations

import numpy as np
import pytest

from smcore.analysis.partition import partition_variance, smooth_response
from smcore.analysis.robustness import (
    CONFLICTING,
    MISSING,
    NO_ROBUST_CHANGE,
    ROBUST,
    ar6_class,
    model_agreement,
)


def test_ar6_classes_on_hand_built_trends():
    # five models, five pixels
    trends = np.array([
        # robust drying  conflicting  weak          missing  zero median
        [-1.0,           -1.0,        -1.0,         1.0,     0.0],
        [-2.0,           -2.0,         0.5,         1.0,     0.0],
        [-0.5,            1.0,        -0.2,         np.nan,  0.0],
        [-1.5,            2.0,        -0.3,         1.0,     1.0],
        [ 0.3,           -0.1,        -0.4,         1.0,    -1.0],
    ])
    sig = np.array([
        [1, 1, 1, 1, 1],
        [1, 1, 0, 1, 1],
        [1, 1, 0, 1, 1],
        [1, 1, 0, 1, 1],
        [0, 0, 0, 1, 1],
    ], dtype=bool)
    share_sig, share_agree = model_agreement(trends, sig)
    np.testing.assert_allclose(share_sig[[0, 1, 2, 4]], [0.8, 0.8, 0.2, 1.0])
    # median signs: −, −, −, (missing), 0 → nobody agrees with a zero median
    np.testing.assert_allclose(share_agree[[0, 1, 2, 4]], [0.8, 0.6, 0.8, 0.0])
    assert np.isnan(share_sig[3]) and np.isnan(share_agree[3])
    classes = ar6_class(share_sig, share_agree)
    assert classes.tolist() == [ROBUST, CONFLICTING, NO_ROBUST_CHANGE, MISSING, CONFLICTING]
    assert classes.dtype == np.int8


def test_ar6_thresholds_are_inclusive_for_shares_of_few_models():
    # 2 of 3 models (66.7 %) significant, 4 of 5 (80 %) agreeing: both at their thresholds
    assert ar6_class(np.array([2 / 3, 0.66, 0.65]), np.array([0.8, 0.8, 0.8])).tolist() == [
        ROBUST, ROBUST, NO_ROBUST_CHANGE
    ]
    assert ar6_class(np.array([1.0]), np.array([0.79])).tolist() == [CONFLICTING]
    with pytest.raises(ValueError, match="does not match"):
        model_agreement(np.zeros((3, 2)), np.zeros((2, 2)))


def _synthetic(noise: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    years = np.arange(2015, 2101)
    tau = (years - 2015) / 85.0
    a = rng.normal(0.0, 0.02, size=25)  # model: its own linear change
    c = rng.normal(0.0, 0.3, size=25)  # and its own sensitivity to the scenario's forcing
    b = np.array([-0.01, 0.0, 0.015, 0.03])  # scenario: quadratic in time
    signal = a[:, None, None] * tau + (1 + c[:, None, None]) * b[None, :, None] * tau**2
    x = signal + noise * rng.standard_normal(signal.shape)
    # the known parts, from the signal (model, scenario, year) itself
    model = np.mean([np.var(signal[:, s], axis=0) for s in range(b.size)], axis=0)
    scenario = np.var(signal.mean(axis=0), axis=0)
    return years, tau, model, scenario, x


def test_partition_recovers_known_parts_without_noise():
    years, tau, model, scenario, x = _synthetic(noise=0.0)
    baseline = np.linspace(0.2, 0.3, 25)
    p = partition_variance(x + baseline[:, None, None], years, baseline=baseline)
    np.testing.assert_allclose(p.internal, 0.0, atol=1e-20)
    np.testing.assert_allclose(p.model, model, rtol=1e-9, atol=1e-16)
    np.testing.assert_allclose(p.scenario, scenario, rtol=1e-9, atol=1e-16)
    assert not np.allclose(p.scenario[1:], np.var(x, axis=1).mean(axis=0)[1:], rtol=0.05)
    frac = p.fractions()
    np.testing.assert_allclose(sum(frac.values())[1:], 1.0)


def test_partition_recovers_internal_variability_from_noise():
    sigma = 0.004
    years, tau, model, scenario, x = _synthetic(noise=sigma, seed=1)
    p = partition_variance(x, years)
    n, k = years.size, 5  # a degree-4 polynomial takes 5 degrees of freedom from each series
    assert p.internal[0] == pytest.approx(sigma**2 * (n - k) / n, rel=0.05)
    # the smooth parts: close to the known ones where they dominate the noise of the fit
    late = tau > 0.5
    np.testing.assert_allclose(p.model[late], model[late], rtol=0.1)
    np.testing.assert_allclose(p.scenario[late], scenario[late], rtol=0.1)
    # scenario uncertainty grows, internal variability's share falls with lead time
    frac = p.fractions()
    assert frac["scenario"][-1] > frac["scenario"][20]
    assert frac["internal"][-1] < frac["internal"][10]


def test_smooth_response_leaves_a_polynomial_unchanged_and_skips_missing_series():
    years = np.arange(2015, 2101)
    t = (years - 2050) / 10
    series = np.stack([0.3 + 0.01 * t - 0.002 * t**3, np.where(years == 2040, np.nan, t)])
    out = smooth_response(series, years)
    np.testing.assert_allclose(out[0], series[0], atol=1e-12)
    assert np.isnan(out[1]).all()
    with pytest.raises(ValueError, match="cannot determine"):
        smooth_response(series[:, :4], years[:4])
