import numpy as np
import pytest

from smcore.io.cmip6 import (
    frequency_of,
    inspect_file,
    key_label,
    key_to_month_start,
    month_range,
    open_files,
    parse_filename,
)
from tests.factories.cmip6 import truth, write_cmip6

CALENDARS = [
    "standard",
    "gregorian",
    "proleptic_gregorian",
    "noleap",
    "365_day",
    "360_day",
    "all_leap",
    "366_day",
    "julian",
]


def test_parse_filename_with_and_without_time_range():
    n = parse_filename("mrsos_Lmon_CESM2-WACCM_ssp585_r1i1p1f1_gn_201501-206412.nc")
    assert (
        n.variable_id,
        n.table_id,
        n.source_id,
        n.experiment_id,
        n.member_id,
        n.grid_label,
        n.time_range,
    ) == ("mrsos", "Lmon", "CESM2-WACCM", "ssp585", "r1i1p1f1", "gn", "201501-206412")
    assert parse_filename("orog_fx_CanESM5_historical_r1i1p1f1_gn.nc").time_range is None
    assert parse_filename("my_notes.nc") is None
    assert parse_filename("swvl1_era5land_monthly_2000.nc") is None


def test_frequency_from_attribute_or_table():
    assert frequency_of("Lmon") == "mon"
    assert frequency_of("day") == "day"
    assert frequency_of("Eday") == "day"
    assert frequency_of("fx") == "fx"
    assert frequency_of("3hr") == "subhr"
    assert frequency_of("Oyr") == "yr"
    assert frequency_of("Lmon", "mon") == "mon"
    assert frequency_of("Emon", "monC") == "fx"


def test_month_keys_round_trip():
    k = month_range(1999, 2000)
    assert (
        k.size == 24
        and key_label("mon", int(k[0])) == "1999-01"
        and key_label("mon", int(k[-1])) == "2000-12"
    )
    t = key_to_month_start(k)
    assert str(t[13].date()) == "2000-02-01"


@pytest.mark.parametrize("calendar", CALENDARS)
@pytest.mark.parametrize("stamp", ["mid", "start"])
def test_every_calendar_gives_consecutive_months(tmp_path, calendar, stamp):
    (path,) = write_cmip6(
        tmp_path, "M", "historical", calendar=calendar, years=(1999, 2000), stamp=stamp, drs=False
    )
    f = inspect_file(path)
    assert f.problems == ()
    assert f.calendar == calendar
    assert list(f.keys) == list(month_range(1999, 2000))
    assert (f.source_id, f.experiment_id, f.member_id, f.table_id, f.variable_id, f.grid_label) == (
        "M",
        "historical",
        "r1i1p1f1",
        "Lmon",
        "mrsos",
        "gn",
    )


def test_month_from_bounds_even_when_stamp_is_at_month_end(tmp_path):
    import netCDF4

    (path,) = write_cmip6(
        tmp_path, "M", "historical", calendar="noleap", years=(2000, 2000), drs=False
    )
    with netCDF4.Dataset(path, "a") as nc:
        nc["time"][:] = nc["time_bnds"][:, 1]  # stamps on the first day of the next month
    assert list(inspect_file(path).keys) == list(month_range(2000, 2000))


def test_unreadable_and_missing_variable_are_problems_not_crashes(tmp_path):
    bad = tmp_path / "mrsos_Lmon_M_historical_r1i1p1f1_gn_200001-200012.nc"
    bad.write_text("this is not netcdf")
    f = inspect_file(bad)
    assert not f.readable and f.source_id == "M" and "unreadable" in str(f.problems[0])
    (path,) = write_cmip6(
        tmp_path / "x", "M", "historical", years=(2000, 2000), drs=False, variable="foo"
    )
    renamed = path.with_name(path.name.replace("foo_", "mrsos_"))
    path.rename(renamed)
    f = inspect_file(renamed)
    kinds = {p.kind: str(p) for p in f.problems}
    assert "missing variable mrsos" in kinds["variable"]
    assert "variable_id=mrsos but the global attribute says foo" in kinds["identity"]


def test_identity_from_attributes_for_non_drs_names(tmp_path):
    (path,) = write_cmip6(
        tmp_path, "ModelX", "ssp245", years=(2015, 2015), drs=False, member="r2i1p1f1"
    )
    other = path.with_name("downloaded_file.nc")
    path.rename(other)
    f = inspect_file(other)
    assert (f.source_id, f.experiment_id, f.member_id) == ("ModelX", "ssp245", "r2i1p1f1")


def test_open_files_concatenates_and_selects_months(tmp_path):
    paths = write_cmip6(
        tmp_path, "M", "historical", calendar="360_day", years=(1999, 2002), years_per_file=1
    )
    files = [inspect_file(p) for p in paths][::-1]  # any order
    keys = month_range(2000, 2001)
    da = open_files(files, "mrsos", keys=keys)
    assert da.dims == ("time", "lat", "lon") and da.sizes["time"] == 24
    assert da.chunks is not None  # lazy
    assert (
        str(da.time.values[0])[:10] == "2000-01-01" and str(da.time.values[-1])[:10] == "2001-12-01"
    )
    assert da.attrs["units"] == "kg m-2"
    # months line up with the data written for them; ocean fill values are NaN
    v = da.sel(time="2001-07-01").values
    exp = truth(da.lat.values, da.lon.values, 2001, 7) * 100.0
    land = np.isfinite(v)
    assert (~land).any() and land.mean() > 0.5
    np.testing.assert_allclose(v[land], exp[land], rtol=1e-6)
    assert np.nanmax(np.abs(da.values)) < 1e19
