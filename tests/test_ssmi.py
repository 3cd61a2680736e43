import numpy as np
import pandas as pd
import pytest
import xarray as xr

from smcore.analysis.analyse import seasonal_trends
from smcore.analysis.seasons import SEASONS, aggregate, aggregate_all, season_groups
from smcore.analysis.ssmi import ssmi, standardise_by_month
from tests.factories.analysis import monthly_time


def _monthly(values, first_year, dims=("time",), coords=None):
    time, _ = monthly_time(first_year, first_year + values.shape[0] // 12 - 1)
    return xr.DataArray(values, dims=dims, coords={"time": time, **(coords or {})})


def test_ssmi_each_month_has_mean_0_and_std_1_over_reference():
    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, 0.05, size=(2010 - 1990 + 1) * 12 * 6).reshape(-1, 2, 3)
    x[rng.random(x.shape) < 0.05] = np.nan
    da = _monthly(x, 1990, dims=("time", "lat", "lon"))
    out = ssmi(da, (1995, 2010))
    assert out.shape == da.shape and out.attrs["units"] == "1"
    ref = out.sel(time=slice("1995", "2010"))
    for _, month in ref.groupby("time.month"):
        np.testing.assert_allclose(month.mean("time", skipna=True), 0, atol=1e-12)
        np.testing.assert_allclose(month.std("time", skipna=True, ddof=1), 1, atol=1e-12)
    # NaN stay NaN; values outside the reference years use the reference statistics.
    assert np.array_equal(np.isnan(out.values), np.isnan(x))
    jan = da.sel(time=da.time.dt.month == 1)[:, 0, 0]
    jan_ref = jan.sel(time=slice("1995", "2010"))
    expect = (jan[0] - jan_ref.mean()) / jan_ref.std(ddof=1)
    assert float(out.sel(time=jan.time[0])[0, 0]) == pytest.approx(float(expect))


def test_ssmi_lazy_equals_eager_and_constant_month_is_nan():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(10 * 12, 4, 5))
    x[:, 0, 0] = 0.3  # no spread
    da = _monthly(x, 2015, dims=("time", "lat", "lon"))
    eager = ssmi(da, (2015, 2024))
    lazy = ssmi(da.chunk({"lat": 2, "lon": 2, "time": 12}), (2015, 2024))
    assert lazy.chunks is not None
    xr.testing.assert_allclose(eager, lazy.compute())
    assert np.isnan(eager[:, 0, 0]).all() and np.isfinite(eager[:, 1:, 1:]).all()
    with pytest.raises(ValueError, match="reference"):
        ssmi(da, (1950, 1960))


def test_standardise_needs_enough_reference_values():
    x = np.array([1.0, 2.0, np.nan] + [np.nan] * 21)  # 2 years; Jan has 1 finite value
    month = np.tile(np.arange(1, 13), 2)
    out = standardise_by_month(x, month, np.ones(24, bool))
    assert np.isnan(out).all()


def test_seasons_djf_convention_and_completeness():
    years = np.repeat(np.arange(2015, 2021), 12)
    months = np.tile(np.arange(1, 13), 6)
    da = _monthly((years * 100 + months).astype(float), 2015)
    out = aggregate_all(da)
    assert list(out) == list(SEASONS) == ["annual", "MAM", "JJA", "SON", "DJF"]
    assert out["annual"].year.values.tolist() == list(range(2015, 2021))
    np.testing.assert_allclose(out["MAM"].sel(year=2017), 201704)
    djf = out["DJF"]
    # First winter (no Dec 2014) and the last December (Dec 2020 -> DJF 2021) are dropped.
    assert djf.year.values.tolist() == list(range(2016, 2021))
    assert float(djf.sel(year=2016)) == pytest.approx((201512 + 201601 + 201602) / 3)
    labels, index = season_groups(years, months, "DJF")
    assert index.shape == (5, 3) and months[index[0]].tolist() == [12, 1, 2]


def test_seasons_nan_month_makes_group_nan_and_partial_years_are_dropped():
    time = pd.date_range("2015-03-16", periods=30, freq="MS") + pd.Timedelta(days=15)
    values = np.arange(30.0)
    values[4] = np.nan  # Jul 2015
    da = xr.DataArray(values, dims="time", coords={"time": time})
    annual = aggregate(da, "annual")
    assert annual.year.values.tolist() == [2016]  # 2015 starts in March, 2017 ends in August
    jja = aggregate(da, "JJA")
    assert jja.year.values.tolist() == [2015, 2016, 2017]
    assert np.isnan(jja.sel(year=2015)) and np.isfinite(jja.sel(year=2016))
    with pytest.raises(ValueError, match="unknown season"):
        aggregate(da, "JJAS")
    dup = xr.DataArray([1.0, 2.0], dims="time", coords={"time": pd.to_datetime(["2015-01-10", "2015-01-20"])})
    with pytest.raises(ValueError, match="more than once"):
        aggregate(dup, "annual")


def test_linear_trend_gives_exact_ssmi_trend():
    # x = a * year + cycle(month): every calendar month standardises to (year - mean) / sd,
    # so the annual and seasonal SSMI trend is 10 / sd(years) per decade exactly.
    years = np.repeat(np.arange(2015, 2101), 12)
    months = np.tile(np.arange(1, 13), 86)
    cycle = 0.05 * np.sin(months / 2.0)
    x = np.stack([0.2 + 0.001 * (years - 2015) + cycle, 0.3 - 0.002 * (years - 2015) + cycle], -1)
    da = _monthly(x[:, None, :], 2015, dims=("time", "lat", "lon"))
    tr = seasonal_trends(da.chunk({"lon": 1}), (2015, 2100)).compute()
    assert tr["trend"].dims == ("season", "lat", "lon")
    assert tr["season"].values.tolist() == list(SEASONS)
    for season in SEASONS:
        yrs = np.arange(2016 if season == "DJF" else 2015, 2101)
        # DJF mixes Dec of y-1 with Jan/Feb of y: still linear in y with the same slope.
        sd = np.std(np.arange(2015, 2101), ddof=1)
        expect = 10 / sd
        got = tr["trend"].sel(season=season).values[0]
        np.testing.assert_allclose(got, [expect, -expect], rtol=1e-9)
        assert (tr["p_value"].sel(season=season).values < 1e-10).all()
        assert len(yrs) >= 85


def test_month_without_reference_values_is_nan():
    x = np.arange(24.0)
    month = np.tile(np.arange(1, 13), 2)
    in_ref = np.zeros(24, bool)
    in_ref[1:12] = in_ref[13:24] = True  # January never in the reference
    out = standardise_by_month(x, month, in_ref, min_values=2)
    assert np.isnan(out[[0, 12]]).all() and np.isfinite(out[[1, 13]]).all()
