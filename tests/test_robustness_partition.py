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


def test_robustness_maps_resample_the_shares_and_mask_the_land():
    import xarray as xr

    from smcore.analysis.robustness import robustness_maps

    clat, clon = np.array([0.0, 2.0]), np.array([0.0, 2.0, 4.0])
    # four models; cell (0, 0) robust wetting, (1, 2) conflicting, the rest no robust change
    trend = np.full((4, 2, 3), 1.0)
    trend[:, 1, 2] = [1.0, -1.0, 1.0, 1.0]
    sig = np.zeros((4, 2, 3))
    sig[:, 0, 0] = 1.0
    sig[:, 1, 2] = 1.0
    sig[0, 0, 1] = np.nan  # no test: counts as not significant
    coords = {"model": list("abcd"), "clat": clat, "clon": clon}
    t = xr.DataArray(trend, dims=("model", "clat", "clon"), coords=coords)
    s = xr.DataArray(sig, dims=("model", "clat", "clon"), coords=coords)
    lat, lon = np.array([0.0, 1.0, 2.0]), np.array([0.0, 2.0, 4.0, 5.0])
    land = xr.DataArray(np.ones((3, 4), bool), dims=("lat", "lon"))
    land[1, 1] = False
    out = robustness_maps(t, s, lat, lon, land)
    # on the coarse centres the shares are the coarse ones
    assert out["share_significant"].values[0, 0] == 1.0 and out["share_agree"].values[0, 0] == 1.0
    assert out["robustness"].values[0, 0] == ROBUST
    assert out["share_agree"].values[2, 2] == 0.75 and out["robustness"].values[2, 2] == CONFLICTING
    assert out["robustness"].values[0, 1] == NO_ROBUST_CHANGE
    # half-way between: the bilinear mean of the neighbours; beyond the last centre: constant
    assert np.isclose(out["share_significant"].values[1, 0], 0.5)
    assert out["share_significant"].values[2, 3] == out["share_significant"].values[2, 2]
    assert out["robustness"].values[1, 1] == MISSING and np.isnan(out["share_agree"].values[1, 1])


def test_regional_weights_equal_the_mean_of_the_resampled_field():
    import xarray as xr

    from smcore.analysis.change import region_masks, regional_mean, regional_weights
    from smcore.evaluation.baselines import bilinear_to_target

    rng = np.random.default_rng(3)
    clat, clon = np.arange(20.0, 50.0, 2.0), np.arange(90.0, 130.0, 2.0)
    lat, lon = np.arange(19.125, 51.0, 0.25), np.arange(89.125, 131.0, 0.25)
    x = xr.DataArray(rng.random((3, clat.size, clon.size)), dims=("time", "clat", "clon"),
                     coords={"time": np.arange(3), "clat": clat, "clon": clon})
    land = xr.DataArray(rng.random((lat.size, lon.size)) > 0.3, dims=("lat", "lon"),
                        coords={"lat": lat, "lon": lon})
    masks = region_masks(land["lat"], land["lon"], 35.0, 100.0)
    fine = bilinear_to_target(x, lat, lon).where(land)
    expected = regional_mean(fine, masks).values
    w = regional_weights(masks, land, clat, clon)
    got = np.einsum("tab,rab->rt", x.values, w.values)
    assert np.allclose(got, expected, rtol=1e-10)


def test_model_change_ranges_and_the_partition_table():
    import pandas as pd
    import xarray as xr

    from smcore.analysis.change import change_rates, model_change_ranges
    from smcore.analysis.partition import partition_table

    time_h = pd.date_range("1995-01-01", "2014-12-01", freq="MS")
    time_f = pd.date_range("2015-01-01", "2040-12-01", freq="MS")
    scale = np.array([0.9, 1.0, 1.1, 1.2])[:, None, None]  # four models: 0 %, 5 %, 10 %, 15 %

    def series(time, level):
        base = np.full((4, 2, time.size), 0.3)
        return xr.DataArray(base * np.where(level, 1 + (scale - 0.9) / 2, 1.0),
                            dims=("model", "region", "time"),
                            coords={"model": list("abcd"), "region": ["north", "south"], "time": time})

    hist, fut = series(time_h, False), series(time_f, True)
    ranges = model_change_ranges(hist, {"ssp1": fut}, (1995, 2014), [(2021, 2040)])
    annual = ranges[(ranges.timescale == "annual") & (ranges.region == "north")].iloc[0]
    assert np.isclose(annual.model_p05, np.percentile([0, 5, 10, 15], 5))
    assert np.isclose(annual.model_p95, np.percentile([0, 5, 10, 15], 95)) and annual.n_models == 4
    one = change_rates(hist.sel(model="c"), {"ssp1": fut.sel(model="c")}, (1995, 2014), [(2021, 2040)])
    assert np.allclose(one["value"], 10.0)
    assert list(ranges.columns[:4]) == ["experiment", "region", "period", "timescale"]

    years = np.arange(2015, 2101)
    rng = np.random.default_rng(0)
    per_model = np.array([1.0, 3.0])[:, None, None]
    forced = np.array([1.0, 2.0])[None, :, None] * per_model * (years - 2015) / 1000
    noise = rng.normal(0, 0.01, (2, 2, years.size))
    annual_x = xr.DataArray((forced + noise)[:, :, None, :] + 0.25,
                            dims=("model", "scenario", "region", "year"),
                            coords={"region": ["r"], "year": years})
    base = xr.DataArray(np.full((2, 1), 0.25), dims=("model", "region"), coords={"region": ["r"]})
    table = partition_table(annual_x, base)
    assert len(table) == years.size and set(table.region) == {"r"}
    total = table[["internal_fraction", "model_fraction", "scenario_fraction"]].sum(axis=1)
    assert np.allclose(total, 1.0)
    # internal variability dominates at first, the forced spread (model and scenario) at the end
    assert table.internal_fraction.iloc[0] > 0.9 and table.internal_fraction.iloc[-1] < 0.1
    assert np.isclose(table.internal.iloc[0], np.var(noise, axis=-1).mean(), rtol=0.1)


def test_model_change_ranges_are_the_quantiles_of_each_models_own_change_rates():
    import pandas as pd
    import xarray as xr

    from smcore.analysis.change import change_rates, model_change_ranges

    rng = np.random.default_rng(4)

    def series(time):
        values = rng.uniform(0.1, 0.4, (5, 3, time.size))
        return xr.DataArray(values, dims=("model", "region", "time"),
                            coords={"model": list("abcde"), "region": ["n", "s", "w"],
                                    "time": time})

    hist = series(pd.date_range("1995-01-01", "2014-12-01", freq="MS"))
    future = {e: series(pd.date_range("2015-01-01", "2100-12-01", freq="MS"))
              for e in ("ssp1", "ssp5")}
    periods = [(2021, 2040), (2071, 2100)]
    ranges = model_change_ranges(hist, future, (1995, 2014), periods)
    alone = pd.concat([
        change_rates(hist.sel(model=m), {e: s.sel(model=m) for e, s in future.items()},
                     (1995, 2014), periods).assign(model=m)
        for m in hist["model"].values
    ])
    keys = ["experiment", "region", "period", "timescale"]
    grouped = alone.groupby(keys, sort=False)["value"]
    assert ranges[keys].values.tolist() == alone[alone.model == "a"][keys].values.tolist()
    np.testing.assert_allclose(ranges["model_p05"], grouped.quantile(0.05).values, rtol=1e-12)
    np.testing.assert_allclose(ranges["model_p95"], grouped.quantile(0.95).values, rtol=1e-12)
    assert (ranges["n_models"] == 5).all() and len(ranges) == 2 * 3 * 2 * 17
