import numpy as np
import pytest
import xarray as xr

from smcore.config import GridSpec
from smcore.regrid import (
    GridError,
    ascending_latitude,
    bilinear_to_grid,
    cut_domain,
    domain_coverage,
    fill_nearest,
    standard_lat_lon,
    wrap_longitude,
)

COARSE = GridSpec(lat0=30.875, lon0=100.875, res=2.0, nlat=3, nlon=4)
FINE = GridSpec(lat0=30.0, lon0=100.0, res=0.25, nlat=24, nlon=32)


def linear_field(lat, lon, t=2):
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    return np.stack([0.1 + 0.01 * la - 0.003 * lo + 0.05 * k for k in range(t)])


def field_da(lat, lon, t=2):
    return xr.DataArray(
        linear_field(lat, lon, t), dims=("time", "lat", "lon"), coords={"lat": lat, "lon": lon}
    )


@pytest.mark.parametrize(
    "grid,dlat,dlon",
    [(COARSE, 1.25, 1.875), (COARSE, 2.8125, 2.8125), (FINE, 0.1, 0.1), (FINE, 0.25, 0.25)],
)
def test_bilinear_reproduces_a_linear_field_exactly(grid, dlat, dlon):
    lat = np.arange(25.0, 40.0, dlat)
    lon = np.arange(95.0, 112.0, dlon)
    out = bilinear_to_grid(field_da(lat, lon), grid)
    assert out.dims == ("time", "lat", "lon") and out.shape == (2,) + grid.shape
    np.testing.assert_allclose(out.values, linear_field(grid.lat, grid.lon), rtol=0, atol=2e-7)


def test_bilinear_names_and_lazy():
    lat, lon = np.arange(25.0, 40.0, 1.25), np.arange(95.0, 112.0, 1.875)
    src = field_da(lat, lon).chunk({"time": 1})
    out = bilinear_to_grid(src, COARSE, names=("clat", "clon"))
    assert out.chunks is not None and out.dims == ("time", "clat", "clon")
    assert out.clat.attrs["units"] == "degrees_north"
    np.testing.assert_allclose(out.values, linear_field(COARSE.lat, COARSE.lon), atol=2e-7)


def test_bilinear_is_nan_aware():
    lat = np.array([0.0, 1.0, 2.0])
    lon = np.array([0.0, 1.0, 2.0])
    v = np.arange(9.0).reshape(1, 3, 3)
    v[0, 0, 0] = np.nan
    da = xr.DataArray(v, dims=("time", "lat", "lon"), coords={"lat": lat, "lon": lon})
    g = GridSpec(lat0=0.0, lon0=0.0, res=0.5, nlat=5, nlon=5)
    out = bilinear_to_grid(da, g).values[0]
    assert out[2, 2] == 4.0  # on a node next to the NaN: exact, not poisoned
    assert np.isnan(out[0, 0])  # on the NaN node itself
    assert out[0, 1] == pytest.approx(1.0)  # half-way between NaN and 1: only the valid neighbour
    assert np.isnan(bilinear_to_grid(da, g, min_weight=0.6).values[0, 0, 1])


def test_out_of_range_points_are_nan():
    lat, lon = np.arange(31.0, 40.0, 1.0), np.arange(95.0, 112.0, 1.0)
    out = bilinear_to_grid(field_da(lat, lon), COARSE)
    assert np.isnan(out.values[:, 0]).all() and np.isfinite(out.values[:, 1:]).all()


def test_wrap_longitude_both_conventions_agree():
    lon360 = np.arange(0.0, 360.1, 2.5)  # includes a cyclic 360 column
    lon180 = np.arange(-180.0, 180.0, 2.5)
    lat = np.array([30.0, 32.0])
    a = wrap_longitude(field_da(lat, lon360 % 360), center=104.0)
    b = wrap_longitude(
        field_da(lat, np.where(lon180 < 0, lon180 + 360, lon180)).assign_coords(lon=lon180),
        center=104.0,
    )
    assert a.sizes["lon"] == 144 and np.all(np.diff(a.lon.values) > 0)
    np.testing.assert_array_equal(a.lon.values, b.lon.values)
    assert a.lon.values.min() >= -76.0 and a.lon.values.max() < 284.0


def test_ascending_latitude_and_cut_domain():
    lat = np.arange(60.0, -60.1, -1.0)
    lon = np.arange(0.0, 360.0, 1.0)
    da = ascending_latitude(field_da(lat, lon))
    assert np.all(np.diff(da.lat.values) > 0)
    np.testing.assert_array_equal(da.sel(lat=10.0).values, field_da(lat, lon).sel(lat=10.0).values)
    cut = cut_domain(da, FINE, margin_deg=3.0)
    assert cut.lat.values[0] == 27.0 and cut.lat.values[-1] == 38.0
    assert cut.lon.values[0] == 97.0 and cut.lon.values[-1] == 110.0
    assert domain_coverage(cut, FINE) == 1.0
    with pytest.raises(GridError, match="does not overlap the domain"):
        cut_domain(da.sel(lat=slice(-60, 0)), FINE, margin_deg=3.0)


def test_fill_nearest_fills_sea_with_nearest_land():
    n = np.nan
    v = np.array([[[1.0, n, n, n], [n, n, n, 7.0]], [[n] * 4, [n] * 4]])
    da = xr.DataArray(
        v, dims=("time", "lat", "lon"), coords={"lat": [0.0, 1.0], "lon": [0.0, 1.0, 2.0, 3.0]}
    )
    out = fill_nearest(da.chunk({"time": 1}))
    assert out.chunks is not None
    r = out.values
    np.testing.assert_array_equal(r[0], [[1.0, 1.0, 7.0, 7.0], [1.0, 1.0, 7.0, 7.0]])
    assert np.isnan(r[1]).all()  # nothing to extrapolate from
    assert np.isnan(v[0, 0, 2])  # input untouched
    assert fill_nearest(da).values[0, 0, 2] == 7.0  # numpy-backed too


def test_standard_lat_lon_renames_and_rejects_curvilinear():
    ds = xr.Dataset(
        {"v": (("latitude", "longitude"), np.zeros((2, 3)))},
        coords={"latitude": [0.0, 1.0], "longitude": [0.0, 1.0, 2.0]},
    )
    assert standard_lat_lon(ds)["v"].dims == ("lat", "lon")
    curvi = xr.Dataset(
        {"v": (("j", "i"), np.zeros((2, 3)))},
        coords={"lat": (("j", "i"), np.zeros((2, 3))), "lon": (("j", "i"), np.zeros((2, 3)))},
    )
    with pytest.raises(GridError, match="curvilinear"):
        standard_lat_lon(curvi)


@pytest.mark.parametrize("lon0,descending", [(0.0, False), (-180.0, True)])
def test_select_domain_equals_the_three_steps_and_reads_slices(tmp_path, lon0, descending):
    lat = np.arange(-60.0, 60.1, 1.5)
    lat = lat[::-1] if descending else lat
    lon = np.arange(lon0, lon0 + 360.0, 1.875)
    da = field_da(lat, lon)
    from smcore.regrid import select_domain

    got = select_domain(da, FINE, 3.0)
    exp = cut_domain(ascending_latitude(wrap_longitude(da, float(FINE.lon.mean()))), FINE, 3.0)
    xr.testing.assert_identical(got, exp)
    # on a file opened without dask only the domain is read (slices, not index arrays)
    path = tmp_path / "f.nc"
    da.rename("v").to_dataset().to_netcdf(path)
    with xr.open_dataset(path, cache=False) as ds:
        lazy = select_domain(ds["v"], FINE, 3.0)
        key = lazy.variable._data
        assert "array(" not in repr(key)  # an OuterIndexer of slices
        xr.testing.assert_allclose(lazy.load(), exp)
    with pytest.raises(GridError):
        select_domain(
            da.isel(lat=slice(0, 5)) if not descending else da.isel(lat=slice(-5, None)), FINE, 3.0
        )
