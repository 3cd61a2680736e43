import math

import numpy as np
import pytest

from smcore.evaluation import metrics as M
from smcore.evaluation.taylor import REFERENCE_ROW, crmsd_from_law, taylor_row, taylor_table

F = np.array([1.0, 2.0, 3.0, 4.0])
R = np.array([2.0, 2.0, 2.0, 6.0])


def test_pooled_scores_match_hand_computed_values():
    # d = f - r = [-1, 0, 1, -2]; f̄ = 2.5, r̄ = 3; Σf'r' = 6, Σf'² = 5, Σr'² = 12
    s = M.pooled_stats(F, R)
    assert s.n == 4
    assert s.mae == pytest.approx(1.0)
    assert s.rmsd == pytest.approx(math.sqrt(1.5))
    assert s.bias == pytest.approx(-0.5)
    assert s.ubrmsd == pytest.approx(math.sqrt(1.25))
    assert s.r == pytest.approx(6 / math.sqrt(60))
    assert s.std_f == pytest.approx(math.sqrt(5 / 4))
    assert s.std_r == pytest.approx(math.sqrt(3))
    assert s.std_ratio == pytest.approx(math.sqrt(1.25 / 3))
    assert M.mae(F, R) == pytest.approx(1.0)
    assert M.rmsd(F, R) == pytest.approx(math.sqrt(1.5))
    assert M.ubrmsd(F, R) == pytest.approx(math.sqrt(1.25))
    assert M.bias(F, R) == pytest.approx(-0.5)
    assert M.pearson_r(F, R) == pytest.approx(0.7745966692)
    assert M.std_ratio(F, R) == pytest.approx(math.sqrt(1.25 / 3))


def test_pairs_with_nan_on_either_side_are_dropped():
    f = np.array([[1.0, np.nan, 2.0], [3.0, 4.0, 0.7]])
    r = np.array([[2.0, 5.0, 2.0], [2.0, 6.0, np.nan]])
    s = M.pooled_stats(f, r)
    ref = M.pooled_stats(F, R)
    assert s.n == 4
    assert (s.mae, s.rmsd, s.ubrmsd, s.r) == pytest.approx((ref.mae, ref.rmsd, ref.ubrmsd, ref.r))


def test_empty_and_constant_inputs_give_nan_not_garbage():
    nan = np.full((3, 2), np.nan)
    s = M.pooled_stats(nan, nan)
    assert s.n == 0 and math.isnan(s.mae) and math.isnan(s.r)
    const = np.full(10, 0.3, dtype=np.float32)
    ref = np.linspace(0.1, 0.4, 10)
    assert math.isnan(M.pearson_r(const, ref))
    assert M.std_ratio(const, ref) == pytest.approx(0.0, abs=1e-9)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shapes differ"):
        M.pooled_stats(np.zeros(3), np.zeros(4))


@pytest.mark.parametrize("shape", [(50,), (12, 7), (6, 3, 4)])
def test_ubrmsd_identity_and_taylor_law_hold(shape):
    rng = np.random.default_rng(sum(shape))
    r = 0.3 + 0.05 * rng.standard_normal(shape)
    f = 0.1 + 0.8 * r + 0.03 * rng.standard_normal(shape)
    s = M.pooled_stats(f, r)
    # ubRMSD² = RMSD² − bias²
    assert s.ubrmsd**2 == pytest.approx(s.rmsd**2 - s.bias**2, rel=1e-10)
    # E'² = σf² + σr² − 2 σf σr R
    assert s.crmsd**2 == pytest.approx(
        s.std_f**2 + s.std_r**2 - 2 * s.std_f * s.std_r * s.r, rel=1e-10
    )
    assert crmsd_from_law(s.std_f, s.std_r, s.r) == pytest.approx(s.crmsd, rel=1e-8)
    row = taylor_row("x", s)
    assert row["std_norm"] == pytest.approx(s.std_f / s.std_r)
    assert row["corr"] == pytest.approx(s.r)
    assert row["crmsd_norm"] ** 2 == pytest.approx(
        row["std_norm"] ** 2 + 1 - 2 * row["std_norm"] * row["corr"], rel=1e-10
    )


def test_taylor_table_starts_with_the_reference_and_the_reference_scores_as_itself():
    rng = np.random.default_rng(1)
    r = rng.standard_normal(40)
    table = taylor_table(
        {"self": M.pooled_stats(r, r), "noisy": M.pooled_stats(r + rng.standard_normal(40), r)}
    )
    assert list(table.columns) == ["product", "std_norm", "corr", "crmsd_norm"]
    assert table.iloc[0].to_dict() == REFERENCE_ROW
    self_row = table.set_index("product").loc["self"]
    assert self_row.tolist() == pytest.approx([1.0, 1.0, 0.0])
    assert table.set_index("product").loc["noisy", "corr"] < 1


def test_spatial_r_is_the_mean_of_per_month_correlations():
    r = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [5.0, 6.0, 8.0]])
    f = np.array([[2.0, 4.0, 6.0], [3.0, 2.0, 1.0], [0.5, 0.5, 0.5]])
    # month 1: r = 1, month 2: r = -1, month 3: constant product → undefined and skipped
    assert M.spatial_r(f, r) == pytest.approx(0.0)
    assert M.spatial_r(f[:1], r[:1]) == pytest.approx(1.0)
    assert math.isnan(M.spatial_r(f[2:], r[2:]))


def test_monthly_anomalies_remove_each_pixels_own_calendar_month_mean():
    months = np.array([1, 2, 1, 2])
    x = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, np.nan], [6.0, 40.0]])
    a = M.monthly_anomalies(x, months)
    expected = np.array([[-1.0, 0.0], [-2.0, -10.0], [1.0, np.nan], [2.0, 10.0]])
    np.testing.assert_allclose(a, expected)
    with pytest.raises(ValueError, match="months"):
        M.monthly_anomalies(x, months[:3])


def test_anomaly_r_ignores_a_fixed_seasonal_bias_and_rejects_a_climatology():
    rng = np.random.default_rng(3)
    years, npix = 6, 5
    months = np.tile(np.arange(1, 13), years)
    seasonal = 0.05 * np.sin(2 * np.pi * months / 12)[:, None]
    anomaly = 0.02 * rng.standard_normal((months.size, npix))
    reference = 0.3 + seasonal + anomaly
    # a product with a different, month-dependent bias per pixel but the same anomalies
    bias = rng.uniform(-0.1, 0.1, (12, npix))[months - 1]
    product = reference + bias
    assert M.anomaly_r(product, reference, months) == pytest.approx(1.0)
    assert M.pearson_r(product, reference) < 0.9
    climatology = (0.3 + seasonal) * np.ones((1, npix))
    assert math.isnan(M.anomaly_r(climatology.astype(np.float32), reference, months))
    noisy = reference + 0.02 * rng.standard_normal(reference.shape)
    a = M.anomaly_r(noisy, reference, months)
    fa, ra = M.monthly_anomalies(noisy, months), M.monthly_anomalies(reference, months)
    assert a == pytest.approx(np.corrcoef(fa.ravel(), ra.ravel())[0, 1])


def test_temporal_maps_score_each_pixel_over_time():
    rng = np.random.default_rng(4)
    r = rng.standard_normal((30, 2, 3))
    f = r + 0.5 * rng.standard_normal((30, 2, 3))
    f[:, 1, 2] = np.nan
    mae_map, r_map = M.temporal_maps(f, r)
    assert mae_map.shape == r_map.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            if (i, j) == (1, 2):
                assert math.isnan(mae_map[i, j]) and math.isnan(r_map[i, j])
                continue
            assert mae_map[i, j] == pytest.approx(np.mean(np.abs(f[:, i, j] - r[:, i, j])))
            assert r_map[i, j] == pytest.approx(np.corrcoef(f[:, i, j], r[:, i, j])[0, 1])


def test_score_product_row_has_the_contract_columns():
    rng = np.random.default_rng(5)
    months = np.tile(np.arange(1, 13), 2)
    r = 0.3 + 0.05 * rng.standard_normal((24, 8))
    f = r + 0.01 * rng.standard_normal((24, 8))
    s = M.score_product(f, r, months)
    row = s.row()
    assert tuple(row) == M.SCORE_COLUMNS
    assert row["MAE"] == pytest.approx(M.mae(f, r))
    assert row["spatial_r"] == pytest.approx(M.spatial_r(f, r))
    assert row["anomaly_r"] == pytest.approx(M.anomaly_r(f, r, months))
    assert row["std_ratio"] == pytest.approx(np.std(f) / np.std(r))
