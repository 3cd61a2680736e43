"""``smcore export``: a box of the merged product with its uncertainty fields and trends,
CF-1.8 with full provenance, written atomically; one-line errors for bad requests."""

from __future__ import annotations

import json
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr

from smcore.cli import main
from smcore.errors import ConfigError
from smcore.export import export_region, parse_bbox
from smcore.io.netcdf import write_netcdf
from tests.factories.evaluation import make_workdir, tiny_config

SHA = "ab" * 32
DATASETS = [
    {"source_id": "MODEL-A", "experiment_id": "historical", "member_id": "r1i1p1f1",
     "grid_label": "gn", "version": "v20190308", "format": "netcdf",
     "files": ["/data/CMIP6/CMIP/I/MODEL-A/historical/r1i1p1f1/Lmon/mrsos/gn/v20190308/"
               "mrsos_Lmon_MODEL-A_historical_r1i1p1f1_gn_200001-200912.nc"]},
    {"source_id": "MODEL-B", "experiment_id": "historical", "member_id": "r2i1p1f2",
     "grid_label": "gn", "version": "v20200101", "format": "zarr",
     "files": ["/data/zarr/CMIP6/CMIP/I/MODEL-B/historical/r2i1p1f2/Lmon/mrsos/gn/v20200101"]},
]


@pytest.fixture(scope="module")
def wd(tmp_path_factory) -> Path:
    """The tiny work directory with an uncertainty field, a checkpoint hash, trends, members."""
    root = tmp_path_factory.mktemp("wd")
    make_workdir(root, with_truth=False)
    for exp in ("historical", "ssp245"):
        path = root / "product" / f"CMIP6_DL_{exp}.nc"
        ds = xr.load_dataset(path, decode_times=False)
        ds["ssm_spread"] = (ds["ssm"] * 0.1).astype(np.float32)
        ds["ssm_spread"].attrs = {"long_name": "ensemble spread of the merged product",
                                  "units": "m3 m-3"}
        ds.attrs.update(checkpoint_sha256=SHA, checkpoint_epoch="7", models_used="MODEL-A")
        path.unlink()
        write_netcdf(ds, path, time_chunk=12)
    cfg = tiny_config()
    seasons = ["annual", "MAM", "JJA", "SON", "DJF"]
    rng = np.random.default_rng(1)
    trend = rng.standard_normal((1, 5, *cfg.target.shape)).astype(np.float32)
    trends = xr.Dataset(
        {
            "trend": (("experiment", "season", "lat", "lon"), trend,
                      {"long_name": "Theil-Sen trend of the SSMI per decade",
                       "units": "(10 year)-1"}),
            "p_value": (("experiment", "season", "lat", "lon"), np.abs(trend) / 10,
                        {"long_name": "Mann-Kendall p-value", "units": "1"}),
            "significant": (("experiment", "season", "lat", "lon"),
                            (np.abs(trend) > 1).astype(np.int8),
                            {"long_name": "field significance", "flag_values": np.array(
                                [0, 1], np.int8), "flag_meanings": "not_significant significant"}),
        },
        coords={"experiment": ["ssp245"], "season": seasons, "lat": cfg.target.lat,
                "lon": cfg.target.lon},
    )
    (root / "analysis").mkdir()
    write_netcdf(trends, root / "analysis" / "ssmi_trends.nc")
    manifest = json.loads((root / "prepared" / "manifest.json").read_text())
    manifest.update(members={"MODEL-A": "r1i1p1f1", "MODEL-B": "r2i1p1f2",
                             "MODEL-C": "r1i1p1f1"},
                    datasets=DATASETS, fingerprint="f" * 64)
    (root / "prepared" / "manifest.json").write_text(json.dumps(manifest))
    return root


def _product(wd: Path, exp: str) -> xr.Dataset:
    return xr.open_dataset(wd / "product" / f"CMIP6_DL_{exp}.nc")


@pytest.mark.parametrize("fmt", ["netcdf", "zarr"])
def test_the_subset_equals_the_product(wd, tmp_path, fmt):
    out = tmp_path / ("box.nc" if fmt == "netcdf" else "box.zarr")
    export_region(wd, "72.1,73.4,19.1,20.2", out, period=(2008, 2011), format=fmt,
                  report=lambda m: None)
    ds = xr.open_dataset(out, engine="zarr" if fmt == "zarr" else None)
    # every cell overlapping the box: centres 72.0..73.5 and 19.0..20.25
    assert ds["lon"].values.tolist() == [72.0, 72.25, 72.5, 72.75, 73.0, 73.25, 73.5]
    assert ds["lat"].values.tolist() == [19.0, 19.25, 19.5, 19.75, 20.0, 20.25]
    assert list(ds["experiment"].values) == ["historical", "ssp245"]
    t = ds.indexes["time"]
    assert (t[0].year, t[0].month, t[-1].year, t[-1].month, t.size) == (2008, 1, 2011, 12, 48)
    for exp, years in (("historical", slice("2008", "2009")), ("ssp245", slice("2010", "2011"))):
        src = _product(wd, exp).sel(time=years, lat=ds["lat"], lon=ds["lon"])
        got = ds.sel(experiment=exp, time=years)
        assert got["ssm"].dtype == np.float32
        assert np.array_equal(got["ssm"].values, src["ssm"].values, equal_nan=True)
        assert np.array_equal(got["ssm_spread"].values, src["ssm_spread"].values, equal_nan=True)
    # historical has no value in the SSP years and the reverse
    assert np.isnan(ds["ssm"].sel(experiment="historical", time="2010").values).all()
    assert np.isnan(ds["ssm"].sel(experiment="ssp245", time="2009").values).all()
    trends = xr.open_dataset(wd / "analysis" / "ssmi_trends.nc")
    want = trends["trend"].sel(experiment="ssp245", lat=ds["lat"], lon=ds["lon"]).values
    assert np.array_equal(ds["ssmi_trend"].sel(experiment="ssp245").values, want)
    assert np.isnan(ds["ssmi_trend"].sel(experiment="historical").values).all()
    assert ds["ssmi_trend_significant"].sel(experiment="ssp245").sum() > 0
    ds.close()


def test_provenance_attributes(wd, tmp_path):
    out = tmp_path / "box.nc"
    export_region(wd, "72,73,19,20", out, experiments=["historical"], report=lambda m: None)
    with netCDF4.Dataset(out) as nc:
        a = {k: nc.getncattr(k) for k in nc.ncattrs()}
    assert a["Conventions"] == "CF-1.8"
    assert a["checkpoint_sha256"] == SHA and a["checkpoint_epoch"] == "7"
    assert a["models_used"] == "MODEL-A,MODEL-B,MODEL-C"
    assert a["members_used"] == "MODEL-A=r1i1p1f1,MODEL-B=r2i1p1f2,MODEL-C=r1i1p1f1"
    inputs = json.loads(a["input_datasets"])
    assert inputs[0]["files"] == ["mrsos_Lmon_MODEL-A_historical_r1i1p1f1_gn_200001-200912.nc"]
    assert (inputs[0]["version"], inputs[1]["version"]) == ("v20190308", "v20200101")
    assert inputs[1]["files"] == DATASETS[1]["files"]  # a Zarr store keeps its path
    assert json.loads(a["smcore_config"])["periods"]["test"] == [2008, 2009]
    assert a["smcore_version"] and a["prepared_fingerprint"] == "f" * 64
    assert a["bbox"] == "72,73,19,20" and a["period"] == "all" and a["experiments"] == "historical"
    assert a["source_products"] == "CMIP6_DL_historical.nc"
    assert "smcore export --workdir" in a["history"] and "--bbox 72,73,19,20" in a["history"]
    assert a["trends_source"].endswith("analysis/ssmi_trends.nc")
    assert (a["time_coverage_start"], a["time_coverage_end"]) == ("2000-01", "2009-12")


def test_cf_compliance_without_high_priority_failures(wd, tmp_path):
    from compliance_checker.runner import CheckSuite, ComplianceChecker

    out = tmp_path / "box.nc"
    export_region(wd, "72,74,19,21", out, report=lambda m: None)
    CheckSuite.load_all_available_checkers()
    report = tmp_path / "report.json"
    passed, _ = ComplianceChecker.run_checker(
        str(out), ["cf:1.8"], 0, "normal", output_filename=str(report), output_format="json"
    )
    high = json.loads(report.read_text())["cf:1.8"]["high_priorities"]
    failed = [(c["name"], c["msgs"]) for c in high if c["value"][0] < c["value"][1]]
    assert len(high) > 5 and passed and not failed, failed


def _cli(capsys, wd: Path, out: Path, *args: str) -> tuple[int, list[str]]:
    rc = main(["export", "--workdir", str(wd), "--out", str(out), *args])
    return rc, capsys.readouterr().err.strip().splitlines()


def test_cli_writes_and_bad_requests_are_one_line(wd, tmp_path, capsys):
    out = tmp_path / "box.nc"
    rc, _ = _cli(capsys, wd, out, "--bbox", "72,73,19,20", "--experiments", "ssp245")
    assert rc == 0 and out.is_file()
    before = out.read_bytes()
    bad = [
        (["--bbox", "100,110,30,40"], "the box is outside the product grid (lon 71..76.75"),
        (["--bbox", "72,73,19"], "--bbox '72,73,19': expected LON0,LON1,LAT0,LAT1"),
        (["--bbox", "73,72,19,20"], "LON0 must be west of LON1"),
        (["--bbox", "72,73,19,20", "--experiments", "ssp585"],
         "experiment(s) ssp585 were not prepared (prepared: historical, ssp245)"),
        (["--bbox", "72,73,19,20", "--experiments", "ssp245", "--period", "2000-2001"],
         "ssp245 has no month in 2000-2001 (it covers 2010-2012)"),
        (["--bbox", "72,73,19,20", "--period", "1900-1901"],
         "--period 1900-1901: no product has a month in it"),
        (["--bbox", "72,73,19,20", "--period", "2001"], "--period: invalid year range"),
        (["--bbox", "72,73,19,20", "--format", "grib"], "--format 'grib': expected one of"),
    ]
    for args, message in bad:
        rc, err = _cli(capsys, wd, out, *args)
        assert rc == 2 and len(err) == 1 and message in err[0], (args, err)
    assert out.read_bytes() == before  # a refused export leaves the earlier output alone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box.nc"]  # and no temporary
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "keep.txt").write_text("mine")
    rc, err = _cli(capsys, wd, tmp_path / "folder", "--bbox", "72,73,19,20", "--format", "zarr")
    assert rc == 2 and "is not a Zarr store" in err[0]


def test_parse_bbox():
    assert str(parse_bbox("100,110.5,30,36")) == "100,110.5,30,36"
    assert parse_bbox([100, 110, -10, 10]).lat0 == -10
    with pytest.raises(ConfigError, match="LAT0 must be south of LAT1"):
        parse_bbox("100,110,36,30")
    with pytest.raises(ConfigError, match="latitudes must lie in -90..90"):
        parse_bbox("100,110,30,95")
