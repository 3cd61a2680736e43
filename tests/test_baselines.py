import numpy as np
import pytest
import xarray as xr

from smcore.evaluation import baselines as bl
from smcore.evaluation.audit import audit_normalisation
from smcore.evaluation.data import EvalGrid, load_fit_data, month_keys
from smcore.evaluation.fitting import fit_baselines, predict_baselines
from tests.factories.evaluation import land_mask, make_store, tiny_config


# -- resampling -----------------------------------------------------------------------------
def test_bilinear_weights_interpolate_inside_and_clamp_outside():
    src = np.array([0.0, 2.0, 6.0])
    dst = np.array([-1.0, 0.0, 1.0, 3.0, 6.0, 9.0])
    w = bl.bilinear_weights(src, dst)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    values = np.array([1.0, 3.0, 11.0])
    np.testing.assert_allclose(w @ values, np.interp(dst, src, values))
    np.testing.assert_allclose(w[0], [1, 0, 0])  # clamped, not extrapolated
    np.testing.assert_allclose(w[-1], [0, 0, 1])
    with pytest.raises(ValueError, match="ascending"):
        bl.bilinear_weights(src[::-1], dst)


def test_bilinear_to_target_matches_xarray_interp_inside_and_is_flat_at_the_border():
    cfg = tiny_config()
    rng = np.random.default_rng(0)
    coarse = xr.DataArray(
        rng.uniform(0.1, 0.4, (2, 3, *cfg.coarse.shape)),
        dims=("time", "model", "clat", "clon"),
        coords={"clat": cfg.coarse.lat, "clon": cfg.coarse.lon},
        attrs={"units": "m3 m-3"},
    )
    fine = bl.bilinear_to_target(coarse, cfg.target.lat, cfg.target.lon)
    assert fine.dims == ("time", "model", "lat", "lon") and fine.attrs["units"] == "m3 m-3"
    expected = coarse.rename(clat="lat", clon="lon").interp(
        lat=cfg.target.lat, lon=cfg.target.lon, method="linear"
    )
    inside = np.isfinite(expected.values)
    assert inside.sum() > 0 and not inside.all()
    np.testing.assert_allclose(fine.values[inside], expected.values[inside], rtol=1e-12)
    # below the first coarse latitude centre every row takes the values at that centre
    below = cfg.target.lat < cfg.coarse.lat[0]
    assert below.any()
    edge = bl.bilinear_to_target(coarse, cfg.coarse.lat[:1], cfg.target.lon).values
    np.testing.assert_allclose(
        fine.values[:, :, below], np.broadcast_to(edge, fine.values[:, :, below].shape)
    )
    assert np.all((fine.values >= 0.1) & (fine.values <= 0.4))


# -- climatology and bias correction ----------------------------------------------------------
def test_monthly_climatology_and_bias_correction_by_hand():
    months = np.array([1, 2, 1, 2, 3])
    ref = np.array([[1.0], [2.0], [3.0], [4.0], [np.nan]])
    model = np.array([[0.0], [0.0], [2.0], [2.0], [7.0]])
    clim = bl.monthly_climatology(ref, months)
    assert clim.shape == (12, 1)
    assert clim[0, 0] == 2.0 and clim[1, 0] == 3.0 and np.isnan(clim[2, 0]) and np.isnan(clim[5, 0])
    offset = bl.bias_correction_offset(model, ref, months)
    assert offset[0, 0] == 1.0 and offset[1, 0] == 2.0
    np.testing.assert_array_equal(bl.expand_climatology(clim, np.array([2, 1])), [[3.0], [2.0]])
    corrected = model + bl.expand_climatology(offset, months)
    # on the training months the corrected model has the reference's monthly means
    np.testing.assert_allclose(bl.monthly_climatology(corrected, months)[:2], clim[:2])


# -- ridge --------------------------------------------------------------------------------------
def _ridge_problem(npix=7, ntime=60, nfeat=4, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.1, 0.4, (npix, ntime, nfeat))
    coef = rng.uniform(-1, 1, (npix, nfeat))
    b = rng.uniform(0, 0.1, npix)
    y = (
        np.einsum("ptm,pm->pt", x, coef) + b[:, None] + noise * rng.standard_normal((npix, ntime))
    ).T
    return x, y, coef, b


def test_ridge_recovers_per_pixel_coefficients_and_accumulates_in_chunks():
    x, y, coef, b = _ridge_problem()
    whole = bl.ridge_moments(x, y)
    parts = bl.ridge_moments(x[:, :25], y[:25]) + bl.ridge_moments(x[:, 25:], y[25:])
    for name in ("n", "sx", "sy", "sxx", "sxy"):
        np.testing.assert_allclose(getattr(parts, name), getattr(whole, name), rtol=1e-12)
    fit = bl.ridge_solve(whole, 1e-10)
    np.testing.assert_allclose(fit.coef, coef, atol=1e-5)
    np.testing.assert_allclose(fit.intercept, b, atol=1e-5)
    np.testing.assert_allclose(bl.ridge_predict(fit, x), y, atol=1e-6)


def test_ridge_penalty_shrinks_to_the_mean_and_ignores_constant_features():
    x, y, _, _ = _ridge_problem(noise=0.01)
    x[:, :, 0] = 0.25  # a filled ocean cell: constant in time
    fit = bl.ridge_solve(bl.ridge_moments(x, y), 1e-3)
    np.testing.assert_allclose(fit.coef[:, 0], 0.0, atol=1e-9)
    strong = bl.ridge_solve(bl.ridge_moments(x, y), 1e9)
    np.testing.assert_allclose(strong.coef, 0.0, atol=1e-6)
    np.testing.assert_allclose(
        bl.ridge_predict(strong, x), np.broadcast_to(y.mean(axis=0), y.shape), atol=1e-6
    )


def test_ridge_skips_months_without_target_and_select_picks_per_pixel():
    x, y, coef, b = _ridge_problem()
    y = y.copy()
    y[:10, 0] = np.nan
    fit = bl.ridge_solve(bl.ridge_moments(x, y), 1e-10)
    assert np.isfinite(fit.coef).all()
    np.testing.assert_allclose(fit.coef[0], coef[0], atol=1e-5)
    fits = [bl.ridge_solve(bl.ridge_moments(x, y), lam) for lam in (1e-6, 1.0)]
    sse = np.array([[1.0, 5.0, np.nan] + [1.0] * 4, [2.0, 4.0, np.nan] + [3.0] * 4])
    chosen = bl.ridge_select(fits, sse)
    assert (
        chosen.lam[0] == 1e-6 and chosen.lam[1] == 1.0 and chosen.lam[2] == 1.0
    )  # no data: middle
    np.testing.assert_array_equal(chosen.coef[1], fits[1].coef[1])


# -- quantile delta mapping ---------------------------------------------------------------------
def test_qdm_removes_a_shift_and_keeps_the_models_change():
    assert bl.qdm_available()
    rng = np.random.default_rng(2)
    times = np.arange("1990-01", "2010-01", dtype="datetime64[M]").astype("datetime64[ns]")
    ref = 0.25 + 0.03 * rng.standard_normal((times.size, 3))
    hist = ref + 0.08
    trained = bl.qdm_train(ref, hist, times)
    out = bl.qdm_adjust(trained, hist, times)
    assert out.shape == hist.shape
    assert np.abs(out - ref).mean() < 0.01 < np.abs(hist - ref).mean()
    future = hist + 0.05
    adjusted = bl.qdm_adjust(trained, future, times)
    assert (adjusted - out).mean() == pytest.approx(0.05, abs=0.01)


def test_nearest_level_is_argmin_of_the_distances_lower_on_a_tie():
    rng = np.random.default_rng(3)
    levels = np.sort(rng.uniform(0, 1, 50))
    midpoints = (levels[:-1] + levels[1:]) / 2  # ties: the lower level
    values = np.concatenate([rng.uniform(-0.2, 1.2, 5000), levels, midpoints, [-1.0, 2.0, 0.5]])
    values = values.reshape(-1, 2)
    expected = np.abs(values[..., None] - levels).argmin(axis=-1)
    np.testing.assert_array_equal(bl.nearest_level(levels, values), expected)
    np.testing.assert_array_equal(bl.nearest_level(levels[:1], values), np.zeros(values.shape))
    quarters = np.array([0.0, 0.25, 0.5, 0.75, 1.0])  # exact ties
    np.testing.assert_array_equal(bl.nearest_level(quarters, np.array([0.125, 0.375, 0.875])),
                                  [0, 1, 3])


def test_qdm_windows_cover_each_year_once_in_centred_30_year_windows():
    years = np.repeat(np.arange(2015, 2101), 12)
    windows = bl.qdm_windows(years)
    kept = np.sum([keep for _, keep in windows], axis=0)
    assert (kept == 1).all()
    spans = [(years[w].min(), years[w].max(), years[k].min(), years[k].max()) for w, k in windows]
    assert spans[0] == (2015, 2044, 2015, 2024)
    assert spans[3] == (2035, 2064, 2045, 2054)  # the decade in the middle of its window
    assert spans[-1] == (2071, 2100, 2095, 2100)  # the last window stays inside the series
    assert all(w1 - w0 + 1 == 30 for w0, w1, _, _ in spans)
    short = np.repeat(np.arange(2008, 2015), 12)  # a test period: one window, the whole
    assert [(w.all(), k.all()) for w, k in bl.qdm_windows(short)] == [(True, True)]


def test_moving_window_qdm_keeps_the_models_change_where_one_window_does_not():
    """The model is too variable (2x the reference's spread) and drifts by +0.15 over 86 years.

    QDM in 30-year windows carries each window's change to the reference's distribution; in
    one 86-year window the late (high) values are read as high quantiles of a too-wide
    distribution and over-corrected, so the change shrinks.
    """
    rng = np.random.default_rng(5)
    hist_t = np.arange("1985-01", "2015-01", dtype="datetime64[M]").astype("datetime64[ns]")
    ref = 0.25 + 0.02 * rng.standard_normal((hist_t.size, 3))
    hist = 0.30 + 2.0 * 0.02 * rng.standard_normal((hist_t.size, 3))
    trained = bl.qdm_train(ref, hist, hist_t)
    fut_t = np.arange("2015-01", "2101-01", dtype="datetime64[M]").astype("datetime64[ns]")
    drift = np.linspace(0.0, 0.15, fut_t.size)[:, None]
    fut = 0.30 + drift + 2.0 * 0.02 * rng.standard_normal((fut_t.size, 3))
    moving = bl.qdm_adjust(trained, fut, fut_t)
    single = bl.qdm_adjust(trained, fut, fut_t, window=100)
    late = fut_t >= np.datetime64("2071-01-01")
    model_change = fut[late].mean() - hist.mean()
    moving_error = (moving[late].mean() - ref.mean()) - model_change
    single_error = (single[late].mean() - ref.mean()) - model_change
    assert abs(moving_error) < 0.004  # measured: -0.0026 of a 0.124 change
    assert single_error < -0.012  # measured: -0.0143, the change shrinks by 12 %


# -- no test-period value reaches a fit ------------------------------------------------------------
def _grid(prepared):
    static = prepared.static
    lat, lon = static["lat"].values, static["lon"].values
    ok = (static["land_mask"].values != 0).ravel()
    return EvalGrid(
        lat=lat,
        lon=lon,
        pixels=np.flatnonzero(ok),
        wlat=bl.bilinear_weights(static["clat"].values, lat),
        wlon=bl.bilinear_weights(static["clon"].values, lon),
    )


def test_no_baseline_parameter_sees_a_test_period_value(tmp_path):
    clean = make_store(tmp_path / "clean")
    dirty = make_store(tmp_path / "dirty", perturb_test=True)
    grid = _grid(clean)
    test = clean.split_mask("test")
    # the perturbation is real: test months differ, training months do not
    ref_c, ref_d = clean.static["reference"].values, dirty.static["reference"].values
    assert not np.allclose(ref_c[test], ref_d[test], equal_nan=True)
    np.testing.assert_array_equal(ref_c[~test], ref_d[~test])

    data_c, data_d = load_fit_data(clean, grid), load_fit_data(dirty, grid)
    test_keys = month_keys(clean.static["time"])[test]
    for data in (data_c, data_d):
        assert (
            not np.isin(data.keys_train, test_keys).any()
            and not np.isin(data.keys_val, test_keys).any()
        )
    fits_c = fit_baselines(data_c, grid, use_qdm=True)
    fits_d = fit_baselines(data_d, grid, use_qdm=True)
    params_c, params_d = fits_c.arrays(), fits_d.arrays()
    assert "qdm_af" in params_c and set(params_c) == set(params_d)
    for name in params_c:
        np.testing.assert_array_equal(params_c[name], params_d[name], err_msg=name)

    # ... while the test-period products do see the perturbed inputs
    inputs_c, inputs_d = clean.inputs("historical"), dirty.inputs("historical")
    keys = month_keys(inputs_c["time"])[test]
    pred_c = predict_baselines(fits_c, inputs_c.values[test], keys, grid)
    pred_d = predict_baselines(fits_d, inputs_d.values[test], keys, grid)
    for name in (
        "ensemble_mean",
        "bias_corrected_ensemble_mean",
        "ridge_stacking",
        "qdm_ensemble_mean",
    ):
        assert not np.allclose(pred_c[name], pred_d[name]), name
    np.testing.assert_array_equal(
        pred_c["era5_train_climatology"], pred_d["era5_train_climatology"]
    )


def test_audit_flags_normalisation_statistics_computed_with_test_months(tmp_path):
    prepared = make_store(tmp_path / "wd")
    grid = _grid(prepared)
    data = load_fit_data(prepared, grid)
    fits = fit_baselines(data, grid, use_qdm=False)
    test = prepared.split_mask("test")
    keys_test = month_keys(prepared.static["time"])[test]
    ref_test = grid.take(prepared.static["reference"].values[test])
    coarse_test = prepared.inputs("historical").values[test]
    audit = audit_normalisation(prepared.static, data, fits, grid, keys_test, ref_test, coarse_test)
    assert all(v["consistent_with_train_only"] for v in audit.values()), audit

    # a store whose statistics were computed over every historical month is caught
    static = prepared.static.load()
    ref = static["reference"]
    leaky = static.assign(
        climatology=ref.groupby("time.month").mean("time"),
        y_mean=ref.mean(),
        y_std=ref.std(),
        x_mean=prepared.inputs("historical").mean(("time", "clat", "clon")),
    )
    audit = audit_normalisation(leaky, data, fits, grid, keys_test, ref_test, coarse_test)
    assert not any(v["consistent_with_train_only"] for v in audit.values()), audit
    assert land_mask(tiny_config()).sum() == grid.pixels.size


def test_every_product_is_clipped_at_zero_like_the_network(tmp_path):
    """A volume fraction is >= 0: the baselines are clipped as CMIP6_DL is (NaN stays NaN)."""
    store = make_store(tmp_path / "s")
    grid = _grid(store)
    fits = fit_baselines(load_fit_data(store, grid), grid, use_qdm=False)
    fits.offset = fits.offset - 1.0  # a bias correction that drives every value below 0
    inputs = store.inputs("historical")
    keys = month_keys(inputs["time"])[:12]
    coarse = inputs.values[:12].copy()
    coarse[0] = np.nan
    out = predict_baselines(fits, coarse, keys, grid)
    bc = out["bias_corrected_ensemble_mean"]
    assert np.isnan(bc[0]).all()
    assert np.nanmin(bc) == 0.0 and (bc[1:] == 0.0).mean() > 0.9
    for name, values in out.items():
        assert np.nanmin(values) >= 0.0, name


def test_qdm_adjustment_equals_xsdba_value_for_value():
    """smcore's vectorised adjustment is xsdba's ``QuantileDeltaMapping.adjust`` (nearest
    quantile, constant extrapolation), ties and missing values included."""
    rng = np.random.default_rng(3)
    hist_t = np.arange("1985-01", "2015-01", dtype="datetime64[M]").astype("datetime64[ns]")
    ref = 0.25 + 0.02 * rng.standard_normal((hist_t.size, 40))
    hist = 0.30 + 0.04 * rng.standard_normal((hist_t.size, 40))
    trained = bl.qdm_train(ref, hist, hist_t)
    sim_t = np.arange("2015-01", "2045-01", dtype="datetime64[M]").astype("datetime64[ns]")
    sim = np.round(0.32 + 0.04 * rng.standard_normal((sim_t.size, 40)), 3)  # many ties
    sim[:30, 3] = np.nan
    ours = bl.qdm_adjust(trained, sim, sim_t)
    theirs = np.asarray(
        trained.adjust(bl._series(sim, sim_t), interp="nearest", extrapolation="constant")
        .transpose("time", "loc").values
    )
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


def test_bias_corrected_members_average_to_the_bias_corrected_ensemble_mean(tmp_path):
    """Each model corrected on its own (training climatologies only): their mean is the
    bias-corrected ensemble mean."""
    from smcore.evaluation.fitting import bias_corrected_members

    store = make_store(tmp_path / "s")
    grid = _grid(store)
    fits = fit_baselines(load_fit_data(store, grid), grid, use_qdm=False)
    inputs = store.inputs("historical")
    keys = month_keys(inputs["time"])[-24:]
    coarse = np.asarray(inputs.values[-24:], dtype=np.float64)
    members = bias_corrected_members(fits, coarse, keys, grid)
    assert members.shape == (coarse.shape[1], 24, grid.pixels.size) and members.dtype == np.float32
    bc = predict_baselines(fits, coarse, keys, grid)["bias_corrected_ensemble_mean"]
    np.testing.assert_allclose(members.mean(axis=0), bc, atol=2e-6)
    assert members.min() >= 0.0
    # each model keeps its own month-to-month variability (not the ensemble mean's)
    spread = members.std(axis=0)
    assert np.median(spread) > 1e-3


def test_the_evaluation_grid_resamples_like_the_dense_weights():
    """EvalGrid.resample (one sparse product over the scored pixels) gives the dense separable
    bilinear result at those pixels, for blocks with and without a model axis; a NaN coarse
    value reaches only the target cells that have weight on it."""
    rng = np.random.default_rng(3)
    clat, clon = np.arange(17.0, 30.0, 2.0), np.arange(70.0, 85.0, 2.0)
    lat, lon = 18 + 0.25 * np.arange(40), 71 + 0.25 * np.arange(48)
    wlat, wlon = bl.bilinear_weights(clat, lat), bl.bilinear_weights(clon, lon)
    pixels = np.sort(rng.choice(lat.size * lon.size, 700, replace=False))
    grid = EvalGrid(lat=lat, lon=lon, pixels=pixels, wlat=wlat, wlon=wlon)
    for shape in ((5, 3, clat.size, clon.size), (4, clat.size, clon.size)):
        v = rng.random(shape)
        dense = bl.apply_weights(v, wlat, wlon)
        want = dense.reshape(*dense.shape[:-2], -1)[..., pixels]
        got = grid.resample(v)
        assert got.shape == want.shape and got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-14)
    v = rng.random((1, clat.size, clon.size))
    v[0, 3, 4] = np.nan
    got = grid.resample(v)[0]
    touched = (np.outer(wlat[:, 3], wlon[:, 4]).ravel()[pixels] != 0)
    assert np.isnan(got[touched]).all() and np.isfinite(got[~touched]).all() and touched.any()
