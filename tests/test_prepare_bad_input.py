"""Every kind of bad input gives a one-line error naming the file and the problem, exit status 2,
no traceback (unless --debug) and nothing written in the work directory."""

import shutil

import pytest
import xarray as xr
from _cmip6_factories import write_cmip6, write_config_toml, write_era5, write_inputs

from smcore.cli import main
from smcore.errors import InputError

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
