import numpy as np
import pymannkendall as mk
import pytest
import scipy.stats
import xarray as xr

from smcore.analysis.trends import _median, theil_sen_mk_numpy, trend_test


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
    slope, p = theil_sen_mk_numpy(xs, t, min_valid=3)
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
    slope, p = theil_sen_mk_numpy(x)
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
    with pytest.raises(ValueError, match="strictly increasing"):
        theil_sen_mk_numpy(np.zeros(4), np.array([0.0, 1.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="no dimension"):
        trend_test(xr.DataArray(np.zeros(4), dims="time"), "year")
