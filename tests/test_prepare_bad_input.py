"""Every kind of bad input gives a one-line error naming the file and the problem, exit status 2,
no traceback (unless --debug) and nothing written in the work directory."""

import json
import shutil

import numpy as np
import pytest
import xarray as xr

from smcore.cli import main
from smcore.errors import InputError
from tests.factories.cmip6 import write_cmip6, write_config_toml, write_era5, write_inputs

MODEL_A = dict(institution="InstA", calendar="noleap", years=(1999, 2005), dlat=2.0, dlon=2.5)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_base")
    write_inputs(root)
    write_config_toml(root / "smcore.toml")
    return root


@pytest.fixture
def inputs(base, tmp_path):
    root = tmp_path / "in"
    shutil.copytree(base, root)
    return root


def a_file(root, model, exp, member="r1i1p1f1", pattern="*.nc"):
    return sorted((root / "cmip6").rglob(f"{model}/{exp}/{member}/**/{pattern}"))


def fail(capsys, root, *extra, debug=False):
    wd = root / "wd"
    args = [
        "prepare",
        "--cmip6",
        str(root / "cmip6"),
        "--era5",
        str(root / "era5"),
        "--workdir",
        str(wd),
        "--config",
        str(root / "smcore.toml"),
        *extra,
    ]
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    errors = [
        line[line.index("smcore: error:") :]
        for line in err.splitlines()
        if "smcore: error:" in line
    ]
    assert len(errors) == 1, err
    assert not (wd / "prepared").exists()
    return errors[0]


def test_truncated_cmip6_file(inputs, capsys):
    f = a_file(inputs, "ModelB", "historical", pattern="*_200101-200112.nc")[0]
    f.write_bytes(f.read_bytes()[:3000])
    msg = fail(capsys, inputs)
    assert msg.startswith(f"smcore: error: {f}: unreadable")


def test_non_netcdf_files(inputs, capsys):
    junk = inputs / "cmip6" / "download_notes.nc"
    junk.write_text("<html>404</html>")
    assert fail(capsys, inputs).startswith(f"smcore: error: {junk}: unreadable")
    junk.unlink()
    bad = inputs / "era5" / "swvl1_era5land_monthly_2005.nc"
    bad.write_text("<html>404</html>")
    assert fail(capsys, inputs).startswith(
        f"smcore: error: {bad}: unreadable (not a NetCDF file, or truncated)"
    )


def test_missing_variable(inputs, capsys):
    (f,) = a_file(inputs, "ModelA", "historical")
    ds = xr.load_dataset(f, decode_times=False).rename({"mrsos": "mrso"})
    f.unlink()
    ds.to_netcdf(f)
    assert fail(capsys, inputs) == f"smcore: error: {f}: missing variable mrsos"


def test_unknown_units(inputs, capsys):
    (f,) = write_cmip6(inputs / "cmip6", "ModelA", "historical", units="furlongs", **MODEL_A)
    msg = fail(capsys, inputs)
    assert msg.startswith(f"smcore: error: {f}: mrsos has unknown units 'furlongs'")


def test_gap_in_a_dataset(inputs, capsys):
    f = a_file(inputs, "ModelB", "historical", pattern="*_200201-200212.nc")[0]
    f.unlink()
    msg = fail(capsys, inputs)
    assert (
        "ModelB historical r1i1p1f1: gap: 12 time step(s) missing between 2001-12 and 2003-01"
        in msg
    )
    assert "mrsos_Lmon_ModelB_historical_r1i1p1f1_gn_200301-200312.nc" in msg


def test_overlapping_files(inputs, capsys):
    write_cmip6(
        inputs / "cmip6",
        "ModelB",
        "historical",
        institution="InstB",
        calendar="360_day",
        years=(2001, 2002),
        lon_convention="-180-180",
        descending_lat=True,
        dlat=1.25,
        dlon=1.875,
    )
    msg = fail(capsys, inputs)
    assert "overlaps" in msg and "ModelB_historical" in msg and "(2001-01..2001-12)" in msg


def test_duplicate_months(inputs, capsys):
    (f,) = a_file(inputs, "ModelA", "historical")
    ds = xr.load_dataset(f, decode_times=False)
    ds = xr.concat([ds.isel(time=slice(0, 30)), ds.isel(time=slice(29, None))], dim="time")
    f.unlink()
    ds.to_netcdf(f)
    assert fail(capsys, inputs) == f"smcore: error: {f}: duplicate time steps 2001-06"


def test_dataset_not_covering_the_periods(inputs, capsys):
    for f in a_file(inputs, "ModelB", "historical", pattern="*_200[45]01-*.nc"):
        f.unlink()
    msg = fail(capsys, inputs)
    assert (
        "ModelB historical r1i1p1f1 covers 1999-01..2003-12, "
        "which does not cover the requested periods 2000-01..2004-12" in msg
    )
    assert "_200301-200312.nc" in msg


def test_scenario_not_reaching_the_future_period(inputs, capsys):
    for f in a_file(inputs, "ModelA", "ssp126"):
        f.unlink()
    write_cmip6(inputs / "cmip6", "ModelA", "ssp126", **dict(MODEL_A, years=(2015, 2015)))
    msg = fail(capsys, inputs)
    assert (
        "ModelA ssp126 r1i1p1f1 covers 2015-01..2015-12, "
        "which does not cover the requested periods 2015-01..2016-12" in msg
    )


def test_grid_outside_the_domain(inputs, capsys):
    (f,) = write_cmip6(
        inputs / "cmip6", "ModelA", "historical", lat_range=(-40.0, -20.0), **MODEL_A
    )
    msg = fail(capsys, inputs)
    assert (
        msg.startswith(f"smcore: error: {f}: grid (lat -40.00..-20.00")
        and "does not overlap the domain" in msg
    )


def test_all_nan_reference_file(inputs, capsys):
    (f,) = write_era5(inputs / "era5", years=(2002, 2002), all_nan_year=2002)
    assert fail(capsys, inputs) == f"smcore: error: {f}: all NaN over the domain in 2002-01"


def test_split_years_not_in_the_data(inputs, capsys):
    msg = fail(capsys, inputs, "--test", "2004-2006")
    assert (
        msg == f"smcore: error: {inputs / 'era5'}: test years 2005-2006 are not in the data "
        "(it covers 2000-01..2004-12)"
    )
    msg = fail(capsys, inputs, "--train", "1995-2002")
    assert "train years 1995-1999 are not in the data" in msg


def test_conflicting_members(inputs, capsys):
    for d in sorted((inputs / "cmip6").rglob("ModelA/*/r1i1p1f1")):
        shutil.rmtree(d)
    for member in ("r2i1p1f1", "r3i1p1f1"):
        for exp in ("historical", "ssp126", "ssp585"):
            years = (1999, 2005) if exp == "historical" else (2015, 2016)
            write_cmip6(
                inputs / "cmip6", "ModelA", exp, member=member, **dict(MODEL_A, years=years)
            )
    msg = fail(capsys, inputs)
    assert msg == (
        f"smcore: error: {inputs / 'cmip6'}: conflicting members of ModelA: r2i1p1f1, r3i1p1f1 "
        "and none is the "
        "configured r1i1p1f1; choose one with --member ModelA=MEMBER"
    )
    assert (
        main(
            [
                "prepare",
                "--cmip6",
                str(inputs / "cmip6"),
                "--era5",
                str(inputs / "era5"),
                "--workdir",
                str(inputs / "wd"),
                "--config",
                str(inputs / "smcore.toml"),
                "--member",
                "ModelA=r3i1p1f1",
                "--experiments",
                "historical",
            ]
        )
        == 0
    )
    assert "ModelA" in (inputs / "wd" / "prepared" / "manifest.json").read_text()


def test_missing_historical_and_unknown_experiment(inputs, capsys):
    msg = fail(capsys, inputs, "--experiments", "ssp126")
    assert (
        msg == "smcore: error: --experiments must include historical "
        "(the training period comes from it)"
    )
    msg = fail(capsys, inputs, "--experiments", "historical,ssp370")
    assert msg.startswith(f"smcore: error: {inputs / 'cmip6'}: no files of experiment ssp370 here")


def test_debug_shows_the_traceback(inputs):
    (f,) = write_cmip6(inputs / "cmip6", "ModelA", "historical", units="furlongs", **MODEL_A)
    with pytest.raises(InputError, match="unknown units"):
        main(
            [
                "--debug",
                "prepare",
                "--cmip6",
                str(inputs / "cmip6"),
                "--era5",
                str(inputs / "era5"),
                "--workdir",
                str(inputs / "wd"),
                "--config",
                str(inputs / "smcore.toml"),
            ]
        )


def test_failed_rerun_keeps_the_previous_store(inputs, capsys):
    args = [
        "prepare",
        "--cmip6",
        str(inputs / "cmip6"),
        "--era5",
        str(inputs / "era5"),
        "--workdir",
        str(inputs / "wd"),
        "--config",
        str(inputs / "smcore.toml"),
        "--experiments",
        "historical",
    ]
    assert main(args) == 0
    manifest = (inputs / "wd" / "prepared" / "manifest.json").read_text()
    write_cmip6(inputs / "cmip6", "ModelA", "historical", units="furlongs", **MODEL_A)
    assert main(args) == 2
    assert (inputs / "wd" / "prepared" / "manifest.json").read_text() == manifest
    assert sorted(p.name for p in (inputs / "wd" / "prepared").iterdir()) == [
        "data.zarr",
        "manifest.json",
    ]


def test_curvilinear_grid(inputs, capsys):
    import numpy as np

    (f,) = a_file(inputs, "ModelA", "historical")
    ds = xr.load_dataset(f, decode_times=False)
    lat2, lon2 = np.meshgrid(ds.lat.values, ds.lon.values, indexing="ij")
    ds = ds.rename({"lat": "j", "lon": "i"}).assign_coords(
        lat=(("j", "i"), lat2), lon=(("j", "i"), lon2)
    )
    f.unlink()
    ds.to_netcdf(f)
    msg = fail(capsys, inputs)
    assert msg.startswith(f"smcore: error: {f}: lat is 2-D (curvilinear or unstructured grid)")


# -- plausibility of the values (ESMValCore-style checks after unit conversion) ---------------
@pytest.mark.parametrize(
    ("units", "factor", "says"),
    [
        # m3 m-3 labelled kg m-2: divided by the 100 mm layer, a median near 0.002
        ("kg m-2", 1.0, "has a median of 0.00"),
        # kg m-2 labelled 1: values of tens
        ("1", 100.0, "reaches 29 m3 m-3"),
    ],
)
def test_mislabelled_units(inputs, capsys, units, factor, says):
    (f,) = write_cmip6(
        inputs / "cmip6", "ModelA", "historical", units=units, value_factor=factor, **MODEL_A
    )
    msg = fail(capsys, inputs)
    assert msg.startswith(f"smcore: error: {f}: ModelA historical r1i1p1f1 mrsos {says}")
    conversion = "(÷ layer depth 100 mm)" if units.startswith("kg") else ", above 1"
    assert f"m3 m-3 after conversion from '{units}' {conversion}".replace(" ,", ",") in msg
    assert msg.endswith("probably mislabelled units")


def _edit(path, variable, change):
    """Change ``variable``'s stored values in place (raw, fill values included)."""
    import netCDF4

    with netCDF4.Dataset(path, "a") as nc:
        v = nc[variable]
        v.set_auto_maskandscale(False)
        data = v[:]
        change(data)
        v[:] = data


def test_negative_values_are_refused(inputs, capsys):
    f = a_file(inputs, "ModelD", "historical", pattern="*_200301-*.nc")[0]

    def undeclared_fill(data):
        data[4, 12, 82:85] = -999.0  # 32°N 102.5-105°E: a fill value the file does not declare

    _edit(f, "mrsos", undeclared_fill)
    msg = fail(capsys, inputs)
    assert msg.startswith(f"smcore: error: {f}: ModelD historical r1i1p1f1 mrsos has negative")
    assert "down to -9.99 m3 m-3 after conversion from 'kg/m2'" in msg


def test_a_cmip6_file_all_nan_over_the_domain(inputs, capsys):
    f = a_file(inputs, "ModelB", "historical", pattern="*_200201-200212.nc")[0]

    def all_fill(data):
        data[:] = 1e20  # the declared fill value everywhere: nothing but "ocean"

    _edit(f, "mrsos", all_fill)
    msg = fail(capsys, inputs)
    assert msg == (
        f"smcore: error: {f}: ModelB historical r1i1p1f1: mrsos is all NaN over the domain in "
        "all its 12 months (missing data or an undeclared fill value)"
    )


@pytest.mark.parametrize(("steps", "count"), [("day", 31), ("hour", 48)])
def test_reference_that_is_not_monthly(inputs, capsys, steps, count):
    (f,) = write_era5(inputs / "era5", years=(2002, 2002), steps=steps)
    msg = fail(capsys, inputs)
    n = 365 if steps == "day" else 48 * 12
    assert msg == (
        f"smcore: error: {f}: swvl1 is not monthly: {n} time steps in 12 month(s), "
        f"{'daily' if steps == 'day' else 'hourly'} steps ({count} in 2002-01); the reference "
        "must be monthly means (ERA5-Land 'monthly averaged reanalysis')"
    )


def test_zero_byte_files(inputs, capsys):
    era5 = inputs / "era5" / "swvl1_era5land_monthly_2003.nc"
    era5.write_bytes(b"")
    assert fail(capsys, inputs) == (
        f"smcore: error: {era5}: empty file (0 bytes): an interrupted download? fetch it again"
    )
    write_era5(inputs / "era5", years=(2003, 2003))
    (f,) = a_file(inputs, "ModelA", "ssp126")
    f.write_bytes(b"")
    assert fail(capsys, inputs) == f"smcore: error: {f}: unreadable: empty file (0 bytes)"


def test_corrupted_data_chunk_is_named_at_read_time(inputs, capsys):
    from tests.factories.cmip6 import corrupt_chunk

    (g,) = write_era5(inputs / "era5", years=(2002, 2002), checksum=True)
    corrupt_chunk(g, "swvl1", 3)
    msg = fail(capsys, inputs)
    assert msg == f"smcore: error: {g}: unreadable data: NetCDF: HDF error"
    g.unlink()  # (HDF5 may still hold the damaged file open for reading in this process)
    write_era5(inputs / "era5", years=(2002, 2002))
    (f,) = write_cmip6(inputs / "cmip6", "ModelA", "historical", checksum=True, **MODEL_A)
    corrupt_chunk(f, "mrsos", 15)  # 2000-04 (the file starts in 1999, the study in 2000)
    assert fail(capsys, inputs) == f"smcore: error: {f}: unreadable data: NetCDF: HDF error"


def _prepare_ok(capsys, root, *extra):
    wd = root / "wd"
    args = [
        "prepare", "--cmip6", str(root / "cmip6"), "--era5", str(root / "era5"),
        "--workdir", str(wd), "--config", str(root / "smcore.toml"), "--experiments",
        "historical", *extra,
    ]
    rc = main(args)
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out, json.loads((wd / "prepared" / "manifest.json").read_text())


def test_partly_missing_reference_cells_are_counted_and_reported(inputs, capsys):
    f = inputs / "era5" / "swvl1_era5land_monthly_2002.nc"

    def holes(data):
        # ERA5-Land rows are 41°N..25°N, columns 94°E..113°E (0.25°): a hole near 33°N 103°E
        data[2:5, 30:33, 36:39] = np.nan

    _edit(f, "swvl1", holes)
    out, manifest = _prepare_ok(capsys, inputs)
    cells = manifest["land_cells"]
    assert cells["partly_missing"] > 0 and cells["first_missing_month"] == "2002-03"
    assert cells["kept"] + cells["partly_missing"] + cells["no_reference"] == cells["inside_china"]
    note = (
        f"reference: dropped {cells['partly_missing'] + cells['no_reference']} of "
        f"{cells['inside_china']} cells inside China: {cells['partly_missing']} whose reference "
        "is missing in some months (first 2002-03)"
    )
    assert note in out and any(n.startswith(note) for n in manifest["notes"])


def test_frequency_attribute_contradicting_table_and_time_axis(inputs, capsys):
    (f,) = write_cmip6(inputs / "cmip6", "ModelA", "historical", frequency="monC", **MODEL_A)
    out, manifest = _prepare_ok(capsys, inputs)
    assert "ModelA" in manifest["channels"]
    assert (
        f"ModelA historical: {f}: the frequency attribute says 'monC' (a climatology) but the "
        "table Lmon is monthly and its time axis holds 84 monthly steps (1999-01..2005-12); "
        "read as mon (table and time axis trusted)"
    ) in out
