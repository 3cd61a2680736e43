import numpy as np
import pandas as pd
import pytest
import xarray as xr

from smcore.io.atomic import atomic_dir, atomic_path, write_csv
from smcore.io.netcdf import provenance_attrs, write_netcdf


def test_atomic_path_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_dir_swaps_in_complete_folder(tmp_path):
    target = tmp_path / "store"
    with atomic_dir(target) as tmp:
        (tmp / "x").write_text("1")
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(target) as tmp:
            (tmp / "x").write_text("2")
            raise KeyboardInterrupt
    assert (target / "x").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_write_csv(tmp_path):
    p = write_csv(pd.DataFrame({"a": [1, 2]}), tmp_path / "t.csv")
    assert p.read_text().splitlines() == ["a", "1", "2"]


def test_write_netcdf_requires_units_and_sets_cf(tmp_path):
    da = xr.DataArray(np.ones((2, 3), "f4"), dims=("lat", "lon"), coords={"lat": [0.0, 1.0], "lon": [0.0, 1.0, 2.0]})
    with pytest.raises(ValueError, match="units"):
        write_netcdf(da.to_dataset(name="v"), tmp_path / "x.nc")
    ds = da.to_dataset(name="v")
    ds["v"].attrs["units"] = "1"
    ds.attrs = provenance_attrs("test")
    write_netcdf(ds, tmp_path / "x.nc")
    back = xr.open_dataset(tmp_path / "x.nc")
    assert back.attrs["Conventions"] == "CF-1.8"
    assert back["lat"].attrs["units"] == "degrees_north"
    assert back["v"].encoding["zlib"]
