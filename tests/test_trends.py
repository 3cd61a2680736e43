import warnings

import numpy as np
import pymannkendall as mk
import pytest
import scipy.stats
import xarray as xr

from smcore.analysis.trends import _median, theil_sen_mk_numpy, trend_test
from smcore.config import MK_TESTS


def _random_series(rng, n, nan_frac, decimals):
    x = rng.normal(size=n).cumsum() * 0.1 + 0.02 * np.arange(n) * rng.choice([-1, 1])
    x = np.round(x, decimals)  # rounding makes ties
    x[rng.random(n) < nan_frac] = np.nan
    return x


@pytest.mark.parametrize("n", [12, 30, 85, 86])
def test_matches_scipy_and_pymannkendall_with_ties_and_nans(n):
    rng = np.random.default_rng(n)
    t = np.cumsum(rng.integers(1, 3, size=n)).astype(float) + 2014  # uneven but increasing
    xs = np.stack([_random_series(rng, n, frac, dec)
                   for frac in (0.0, 0.1, 0.3) for dec in (1, 2, 6) for _ in range(4)])
    slope, p = theil_sen_mk_numpy(xs, t, min_valid=3, mk_test="original")
    assert np.isfinite(slope).all() and np.isfinite(p).all()
    n_ties = 0
    for k, x in enumerate(xs):
        ok = ~np.isnan(x)
        ref_slope = scipy.stats.theilslopes(x[ok], t[ok]).slope
        ref = mk.original_test(x)
        assert slope[k] == pytest.approx(ref_slope, abs=1e-9, rel=0)
        assert p[k] == pytest.approx(ref.p, abs=1e-9, rel=0)
        n_ties += len(np.unique(x[ok])) < ok.sum()
    assert n_ties > 10  # the comparison did exercise the tie correction


def test_default_time_axis_is_positions():
    rng = np.random.default_rng(1)
    x = _random_series(rng, 40, 0.2, 1)
    slope, p = theil_sen_mk_numpy(x, mk_test="original")
    ok = ~np.isnan(x)
    assert slope == pytest.approx(scipy.stats.theilslopes(x[ok], np.arange(40)[ok]).slope, abs=1e-12)
    assert slope == pytest.approx(mk.original_test(x).slope, abs=1e-12)  # Sen slope on positions
    assert p == pytest.approx(mk.original_test(x).p, abs=1e-12)


def test_degenerate_series():
    t = np.arange(20.0)
    const = np.full(20, 0.3)
    short = np.full(20, np.nan)
    short[:5] = [1, 2, 3, 4, 5]
    allnan = np.full(20, np.nan)
    slope, p = theil_sen_mk_numpy(np.stack([const, short, allnan]), t, min_valid=10)
    assert slope[0] == 0.0 and p[0] == 1.0 == mk.original_test(const).p
    assert np.isnan(slope[1]) and np.isnan(p[1])  # fewer than min_valid values
    assert np.isnan(slope[2]) and np.isnan(p[2])
    slope, p = theil_sen_mk_numpy(short, t, min_valid=5)
    assert slope == pytest.approx(1.0) and 0 < p < 1


def test_planted_linear_trend_is_recovered():
    rng = np.random.default_rng(3)
    t = np.arange(2015, 2101, dtype=float)
    true = rng.uniform(-0.05, 0.05, size=(50, 1))
    x = true * t + rng.normal(scale=0.02, size=(50, t.size))
    slope, p = theil_sen_mk_numpy(x, t)
    np.testing.assert_allclose(slope, true[:, 0], atol=3e-3)
    strong = np.abs(true[:, 0]) > 0.01
    assert (p[strong] < 0.05).all()


def _ar1(rng, n, phi, trend, decimals=None):
    """AR(1) series (lag-1 autocorrelation ``phi``) plus a linear trend; rounded → ties."""
    e = rng.normal(size=n)
    x = np.empty(n)
    x[0] = e[0] / np.sqrt(1 - phi**2)
    for k in range(1, n):
        x[k] = phi * x[k - 1] + e[k]
    x += trend * np.arange(n)
    return x if decimals is None else np.round(x, decimals)


def _ar1_batch(seed, n, count, decimals):
    rng = np.random.default_rng(seed)
    return np.stack([_ar1(rng, n, rng.uniform(-0.6, 0.95), rng.normal(scale=0.04),
                          decimals[k % len(decimals)]) for k in range(count)])


@pytest.mark.parametrize("n", [10, 23, 60, 86])
def test_hamed_rao_matches_pymannkendall_on_ar1_series_with_trends_and_ties(n):
    xs = _ar1_batch(n, n, 300, (None, 2, 1))
    years = np.arange(2015, 2015 + n, dtype=float)
    slope, p = theil_sen_mk_numpy(xs, years, min_valid=3, mk_test="hamed_rao")
    p_pos = theil_sen_mk_numpy(xs, None, min_valid=3, mk_test="hamed_rao")[1]
    p_plain = theil_sen_mk_numpy(xs, years, min_valid=3, mk_test="original")[1]
    np.testing.assert_array_equal(p, p_pos)  # times in years or positions: same test
    checked = corrected = ties = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymannkendall's sqrt of a negative variance
        for k, x in enumerate(xs):
            ref = mk.hamed_rao_modification_test(x)
            assert slope[k] == pytest.approx(ref.slope, abs=1e-12, rel=0)
            if np.isfinite(ref.p):
                assert p[k] == pytest.approx(ref.p, abs=1e-12, rel=1e-10)
                checked += 1
                corrected += abs(ref.p - mk.original_test(x).p) > 1e-6
            else:  # n/n* <= 0 (strong negative autocorrelation): smcore keeps the plain test
                assert p[k] == pytest.approx(p_plain[k], abs=1e-15)
            ties += len(np.unique(x)) < n
    assert checked > 250 and corrected > 25 and ties > 60  # correction and ties exercised


def test_tfpw_matches_pymannkendall():
    rng = np.random.default_rng(7)
    for n in (12, 40, 86):
        xs = np.stack([_ar1(rng, n, rng.uniform(-0.5, 0.9), rng.normal(scale=0.04))
                       for _ in range(150)])
        _, p = theil_sen_mk_numpy(xs, np.arange(2015.0, 2015 + n), min_valid=3, mk_test="tfpw")
        ref = np.array([mk.trend_free_pre_whitening_modification_test(x).p for x in xs])
        # The lag-1 autocorrelation differs from numpy's in the last bits (summation order),
        # so only continuous data (no near-ties after pre-whitening) agree this tightly.
        np.testing.assert_allclose(p, ref, atol=1e-9, rtol=0)


def test_hamed_rao_gives_larger_p_values_on_autocorrelated_series():
    rng = np.random.default_rng(11)
    xs = np.stack([_ar1(rng, 86, 0.8, 0.0) for _ in range(400)])  # no trend, strong red noise
    plain = theil_sen_mk_numpy(xs, mk_test="original")[1]
    corrected = theil_sen_mk_numpy(xs, mk_test="hamed_rao")[1]
    assert np.mean(corrected >= plain) > 0.9
    assert np.median(corrected) > 3 * np.median(plain)
    # Plain MK rejects this true null about half the time; Hamed-Rao far less often
    # (still above 5 %: only the lags significant at 5 % enter the correction).
    assert np.mean(plain < 0.05) > 0.45
    assert np.mean(corrected < 0.05) < 0.6 * np.mean(plain < 0.05)


def test_corrections_on_degenerate_series():
    line = 0.5 + 0.25 * np.arange(30.0)  # exactly linear: detrended series has no spread
    plain = theil_sen_mk_numpy(line, mk_test="original")[1]
    for v in MK_TESTS:
        slope, p = theil_sen_mk_numpy(line, mk_test=v)
        assert slope == 0.25 and 0 < p < 1e-10  # pymannkendall: NaN (no autocorrelation estimate)
    assert theil_sen_mk_numpy(line, mk_test="hamed_rao")[1] == plain
    # Linear up to rounding: the residuals are rounding noise, not autocorrelation to correct.
    noisy = 0.2 + 0.001 * np.arange(2015.0, 2101.0)
    assert np.unique(noisy - 0.001 * np.arange(1, 87)).size > 1
    assert theil_sen_mk_numpy(noisy, mk_test="hamed_rao")[1] == theil_sen_mk_numpy(
        noisy, mk_test="original")[1]
    const = np.full(30, 0.3)
    assert [float(theil_sen_mk_numpy(const, mk_test=v)[1]) for v in MK_TESTS] == [1.0] * 3
    for v in MK_TESTS:  # 3 values are enough for every variant
        assert np.isfinite(theil_sen_mk_numpy(np.array([1.0, 3.0, 2.0]), min_valid=3, mk_test=v)[1])


@pytest.mark.parametrize("mk_test", MK_TESTS)
def test_nan_years_are_dropped_and_true_times_kept(mk_test):
    rng = np.random.default_rng(5)
    t = np.arange(2015.0, 2101.0)
    x = _ar1(rng, t.size, 0.6, 0.03, 2)
    x[rng.random(t.size) < 0.2] = np.nan
    ok = np.isfinite(x)
    got = theil_sen_mk_numpy(x, t, mk_test=mk_test)
    want = theil_sen_mk_numpy(x[ok], t[ok], mk_test=mk_test)
    assert got == want


@pytest.mark.parametrize("m", [1, 2, 7, 256, 257, 600, 3570, 3655, 20000])
def test_median_selection_matches_numpy(m):
    rng = np.random.default_rng(m)
    work = np.empty(m)
    samp = np.empty(32)
    spread = rng.normal(size=m) * 10.0 ** rng.integers(-200, 200, size=m)  # far-out values
    for data in (rng.normal(size=m), np.round(rng.normal(size=m), 1), np.sort(rng.normal(size=m)),
                 np.full(m, 2.5), rng.integers(0, 3, size=m).astype(float), rng.standard_cauchy(m),
                 rng.exponential(size=m) ** 4, spread, -np.sort(rng.normal(size=m))):
        a = data.copy()
        assert _median(a, m, work, samp) == np.median(data)


def test_trend_test_dataarray_dask_equals_numpy_and_scales_per_decade():
    rng = np.random.default_rng(4)
    years = np.arange(2015, 2101)
    data = rng.normal(size=(5, 7, years.size)) + 0.01 * years
    data[0, 0, ::3] = np.nan
    da = xr.DataArray(data, dims=("lat", "lon", "year"), coords={"year": years})
    eager = trend_test(da, "year")
    lazy = trend_test(da.chunk({"lat": 2, "lon": 3, "year": 20}), "year")
    assert lazy["trend"].chunks is not None
    lazy = lazy.compute()
    xr.testing.assert_allclose(eager, lazy)
    slope, p = theil_sen_mk_numpy(data, years.astype(float))
    np.testing.assert_allclose(eager["trend"].values, 10 * slope)
    np.testing.assert_allclose(eager["p_value"].values, p)
    assert eager["trend"].dims == ("lat", "lon")


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown Mann-Kendall test 'yue'"):
        theil_sen_mk_numpy(np.zeros(12), mk_test="yue")
    with pytest.raises(ValueError, match="unknown Mann-Kendall test"):
        trend_test(xr.DataArray(np.zeros(12), dims="year"), "year", mk_test="yue")
    with pytest.raises(ValueError, match="strictly increasing"):
        theil_sen_mk_numpy(np.zeros(4), np.array([0.0, 1.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="no dimension"):
        trend_test(xr.DataArray(np.zeros(4), dims="time"), "year")
