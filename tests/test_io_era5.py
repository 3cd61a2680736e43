import numpy as np
import pytest

from smcore.errors import InputError
from smcore.io.era5 import find_era5_files, open_era5
from tests.factories.cmip6 import truth, write_era5


@pytest.mark.parametrize(
    "layout,res,per_year",
    [("new", 0.25, True), ("new", 0.1, False), ("old", 0.25, False), ("old-expver", 0.25, True)],
)
def test_both_cds_layouts_read_the_same(tmp_path, layout, res, per_year):
    write_era5(tmp_path, years=(2000, 2001), layout=layout, res=res, per_year=per_year)
    ref = open_era5(tmp_path)
    da = ref.data
    assert da.dims == ("time", "lat", "lon") and da.sizes["time"] == 24
    assert da.chunks is not None
    assert np.all(np.diff(da.lat.values) > 0)
    assert da.attrs["units"] == "m3 m-3"
    assert str(da.time.values[0])[:10] == "2000-01-01"
    v = da.isel(time=-1).values  # December 2001; expver 5 only in old-expver
    exp = truth(da.lat.values, da.lon.values, 2001, 12)
    land = np.isfinite(v)
    assert 0.8 < land.mean() < 1.0
    np.testing.assert_allclose(v[land], exp[land], atol=2e-5)
    assert ref.file_of(2001 * 12).name.startswith("swvl1_era5land_monthly_")


def test_find_files_folder_file_glob(tmp_path):
    paths = write_era5(tmp_path / "e", years=(2000, 2002))
    assert find_era5_files(tmp_path / "e") == paths
    assert find_era5_files(paths[1]) == [paths[1]]
    assert find_era5_files(str(tmp_path / "e" / "*_200[01].nc")) == paths[:2]
    with pytest.raises(InputError, match="no file matches"):
        find_era5_files(str(tmp_path / "e" / "*.grib"))
    with pytest.raises(InputError, match="no such file"):
        find_era5_files(tmp_path / "nope")


def test_month_in_two_files_is_an_error(tmp_path):
    write_era5(tmp_path, years=(2000, 2001), per_year=False)
    write_era5(tmp_path, years=(2001, 2001))
    with pytest.raises(InputError, match=r"month 2001-01 is also in"):
        open_era5(tmp_path)


def test_bad_reference_files(tmp_path):
    (p,) = write_era5(tmp_path / "a", years=(2000, 2000))
    p.write_bytes(p.read_bytes()[:2000])
    with pytest.raises(InputError, match=r"swvl1_era5land_monthly_2000\.nc: unreadable"):
        open_era5(tmp_path / "a")
    import xarray as xr

    (p,) = write_era5(tmp_path / "b", years=(2000, 2000))
    ds = xr.load_dataset(p).rename({"swvl1": "stl1"})
    p.unlink()
    ds.to_netcdf(p)
    with pytest.raises(InputError, match="missing variable swvl1"):
        open_era5(p)
    (p,) = write_era5(tmp_path / "c", years=(2000, 2000))
    ds = xr.load_dataset(p)
    ds["swvl1"].attrs["units"] = "kg m-2"
    p.unlink()
    ds.to_netcdf(p)
    with pytest.raises(InputError, match="must be volumetric"):
        open_era5(p)
