import json

import numpy as np
import xarray as xr

from smcore.cli import main
from smcore.io.catalog import RECORD_KEYS, catalog_records, scan
from tests.factories.cmip6 import TEST_MODELS, write_cmip6, write_model_set


def _by(records, source, exp):
    (r,) = [r for r in records if r["source_id"] == source and r["experiment_id"] == exp]
    return r


def test_scan_groups_drs_and_flat_files(tmp_path):
    write_model_set(tmp_path, missing=[("ModelD", "ssp585")])
    records = catalog_records(scan(tmp_path / "cmip6"))
    assert len(records) == 11
    assert all(tuple(r) == RECORD_KEYS for r in records)
    b = _by(records, "ModelB", "historical")
    assert (b["calendar"], b["start"], b["end"], b["n_files"], b["problems"]) == (
        "360_day",
        "1999-01",
        "2005-12",
        7,
        [],
    )
    d = _by(records, "ModelD", "historical")
    assert d["n_files"] == 2 and d["calendar"] == "standard" and d["problems"] == []
    c = _by(records, "ModelC", "ssp126")  # flat folder, volumetric units: a unit surprise, reported
    assert c["member_id"] == "r1i1p1f2" and c["calendar"] == "proleptic_gregorian"
    assert (
        len(c["problems"]) == 1
        and "units 'm3 m-3' where CMIP6 prescribes 'kg m-2'" in c["problems"][0]
    )
    assert {m.source_id for m in TEST_MODELS} == {r["source_id"] for r in records}


def test_problems_gap_overlap_duplicate_unreadable_units(tmp_path):
    write_cmip6(
        tmp_path,
        "Gap",
        "historical",
        years=(2000, 2003),
        years_per_file=2,
        skip_months=[(2001, 5), (2001, 6)],
    )
    write_cmip6(tmp_path, "Ovl", "historical", years=(2000, 2003), years_per_file=2)
    write_cmip6(tmp_path, "Ovl", "historical", years=(2001, 2001))
    (dup,) = write_cmip6(tmp_path, "Dup", "historical", years=(2000, 2000))
    ds = xr.load_dataset(dup, decode_times=False)
    ds = ds.isel(time=[0, 1, 2, 3, 3, 4, 5, 6, 7, 8, 9, 10, 11])
    dup.unlink()
    ds.to_netcdf(dup)
    (bad,) = write_cmip6(tmp_path, "Bad", "historical", years=(2000, 2000))
    write_cmip6(tmp_path, "Bad", "historical", years=(2001, 2001))
    bad.write_bytes(bad.read_bytes()[:1500])
    write_cmip6(tmp_path, "Unit", "historical", years=(2000, 2000), units="K")
    (junk := tmp_path / "junk.nc").write_text("hello")
    records = catalog_records(scan(tmp_path))
    gap = _by(records, "Gap", "historical")["problems"]
    assert len(gap) == 1 and "2 time step(s) missing between 2001-04 and 2001-07" in gap[0]
    ovl = _by(records, "Ovl", "historical")["problems"]
    assert any("overlaps" in p and "2001-01..2001-12" in p for p in ovl)
    dupp = _by(records, "Dup", "historical")["problems"]
    assert len(dupp) == 1 and "duplicate time steps 2000-04" in dupp[0]
    badr = _by(records, "Bad", "historical")
    assert badr["n_files"] == 2 and badr["start"] == "2001-01"
    assert any(p.startswith(str(bad)) and "unreadable" in p for p in badr["problems"])
    assert (
        "units 'K' where CMIP6 prescribes 'kg m-2'"
        in _by(records, "Unit", "historical")["problems"][0]
    )
    unknown = [r for r in records if r["source_id"] is None]
    assert len(unknown) == 1 and str(junk) in unknown[0]["problems"][0]


def test_any_variable_and_table_including_daily(tmp_path):
    write_cmip6(
        tmp_path, "M", "historical", variable="tas", table="Amon", units="K", years=(2000, 2001)
    )
    write_cmip6(tmp_path, "M", "historical", years=(2000, 2001))
    # a daily file in a 365-day calendar with one missing day
    t = np.arange(0, 365 * 2, dtype="float64") + 0.5
    t = np.delete(t, 40)
    ds = xr.Dataset(
        {
            "pr": (
                ("time", "lat", "lon"),
                np.zeros((t.size, 2, 2), "float32"),
                {"units": "kg m-2 s-1"},
            )
        },
        coords={
            "time": ("time", t, {"units": "days since 2000-01-01", "calendar": "noleap"}),
            "lat": [0.0, 1.0],
            "lon": [0.0, 1.0],
        },
        attrs={"frequency": "day"},
    )
    ds.to_netcdf(tmp_path / "pr_day_M_historical_r1i1p1f1_gn_20000101-20011231.nc")
    records = catalog_records(scan(tmp_path))
    assert {(r["variable_id"], r["table_id"]) for r in records} == {
        ("tas", "Amon"),
        ("mrsos", "Lmon"),
        ("pr", "day"),
    }
    tas = [r for r in records if r["variable_id"] == "tas"][0]
    assert tas["problems"] == [] and tas["start"] == "2000-01" and tas["end"] == "2001-12"
    pr = [r for r in records if r["variable_id"] == "pr"][0]
    assert pr["start"] == "2000-01" and pr["end"] == "2001-12"
    assert (
        len(pr["problems"]) == 1
        and "1 time step(s) missing between 2000-02-09 and 2000-02-11" in pr["problems"][0]
    )
    only = catalog_records(scan(tmp_path, variable="mrsos"))
    assert [r["variable_id"] for r in only] == ["mrsos"]


def test_newest_version_wins(tmp_path):
    write_cmip6(tmp_path, "M", "historical", years=(2000, 2001), version="v20190101")
    write_cmip6(tmp_path, "M", "historical", years=(2000, 2001), version="v20200101")
    (d,) = scan(tmp_path)
    assert d.version == "v20200101" and d.n_files == 1
    assert [p.kind for p in d.problems] == ["version"] and not d.blocking()


def test_cli_catalog_json_and_table(tmp_path, capsys):
    write_model_set(tmp_path, models=TEST_MODELS[:2], experiments=("historical",))
    assert main(["catalog", str(tmp_path / "cmip6"), "--variable", "mrsos", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["source_id"] for r in records] == ["ModelA", "ModelB"]
    assert all(list(r) == list(RECORD_KEYS) for r in records)
    assert main(["catalog", str(tmp_path / "cmip6")]) == 0
    out = capsys.readouterr().out
    assert "ModelB" in out and "360_day" in out and "2 datasets" in out


def test_cli_catalog_missing_folder_is_one_line(tmp_path, capsys):
    assert main(["catalog", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"smcore: error: {tmp_path / 'nope'}: no such file or folder"]


def test_contradicting_frequency_trusts_table_and_time_axis(tmp_path, capsys):
    """A GFDL-CM4 file whose ``frequency`` says ``monC`` while it holds 780 monthly means."""
    for variable, table, units in (("tas", "Amon", "K"), ("mrsos", "Lmon", "kg m-2")):
        write_cmip6(
            tmp_path, "GFDL-CM4", "historical", variable=variable, table=table, units=units,
            years=(1850, 1914), grid_label="gr1", institution="NOAA-GFDL", frequency="monC",
            dlat=10.0, dlon=20.0,
        )
    assert main(["catalog", str(tmp_path), "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 2
    for r in records:
        assert (r["calendar"], r["start"], r["end"], r["n_files"]) == (
            "noleap", "1850-01", "1914-12", 1
        )
        (problem,) = r["problems"]
        assert problem.endswith(
            f"the frequency attribute says 'monC' (a climatology) but the table {r['table_id']} "
            "is monthly and its time axis holds 780 monthly steps (1850-01..1914-12); "
            "read as mon (table and time axis trusted)"
        )
    (d,) = scan(tmp_path, variable="mrsos")
    assert d.frequency == "mon" and not d.blocking() and d.keys.size == 780


def test_a_dataset_without_period_says_why(tmp_path, capsys):
    (fx,) = write_cmip6(tmp_path, "M", "historical", variable="sftlf", table="fx", units="%",
                        years=(2000, 2000), frequency="fx")
    (empty,) = write_cmip6(tmp_path, "N", "historical", years=(2000, 2000))
    empty.write_bytes(b"")
    assert main(["catalog", str(tmp_path), "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 2
    for r in records:
        assert r["start"] is not None or r["problems"], r
    by = {r["source_id"]: r for r in records}
    assert by["M"]["problems"] == [f"{fx}: a fixed field (fx): no time axis, no period"]
    assert by["N"]["problems"] == [f"{empty}: unreadable: empty file (0 bytes)"]
