"""Tests of `smcore demo-data` (smcore.demo): conventions of every file, determinism, science.

The module fixture writes the ``--small`` set once (7 models, 1991-2014, two SSPs to
2040); determinism and CLI tests use an even smaller configuration (two models, a few
years). Every file is opened with plain xarray + cftime, as a user would.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import cftime
import numpy as np
import pytest
import xarray as xr

from smcore import assets
from smcore.cli import main
from smcore.config import Config, ModelSpec, Periods, activity_for, load_config
from smcore.demo import regrid
from smcore.demo.generate import (
    SMALL_MODELS,
    DemoOptions,
    config_to_toml,
    demo_config,
    era5_grid,
    generate_demo,
)
from smcore.demo.layout import file_pieces, layout_for, month_axis
from smcore.demo.noise import NodeLattice, ar1_inplace, rng_for
from smcore.demo.truth import SCENARIOS, planted_trend_per_decade, scenario_shape
from smcore.errors import ConfigError, InputError

TIME_CODER = xr.coders.CFDatetimeCoder(use_cftime=True)
FILE_RE = re.compile(
    r"^mrsos_Lmon_(?P<source>[A-Za-z0-9-]+)_(?P<exp>[a-z0-9]+)_(?P<member>r\d+i\d+p\d+f\d+)_gn_"
    r"(?P<y0>\d{4})(?P<m0>\d{2})-(?P<y1>\d{4})(?P<m1>\d{2})\.nc$"
)


def _open(path: Path) -> xr.Dataset:
    return xr.open_dataset(path, decode_times=TIME_CODER)


@pytest.fixture(scope="module")
def small(small_demo: tuple[Path, Config]) -> tuple[Path, Config]:
    """The session's ``--small`` demo (``tests/conftest.py``) and its configuration."""
    out, cfg = small_demo
    assert cfg == demo_config(Config(), small=True)
    return out, cfg


def _cmip6_files(out: Path) -> list[Path]:
    return sorted((out / "cmip6").rglob("*.nc"))


def _mini_config() -> Config:
    base = Config()
    models = tuple(m for m in base.models if m.source_id in ("GISS-E2-1-G", "FGOALS-g3"))
    periods = Periods(train=(2011, 2012), val=(2013, 2013), test=(2014, 2014), future=(2015, 2016),
                      baseline=(2011, 2014), change=((2015, 2016),))
    return Config(models=models, periods=periods, experiments=("historical", "ssp585"))


def _data_arrays(folder: Path) -> dict[str, np.ndarray]:
    out = {}
    for p in sorted(folder.rglob("*.nc")):
        with xr.open_dataset(p, decode_times=False) as ds:
            for name, var in ds.data_vars.items():
                out[f"{p.relative_to(folder)}:{name}"] = var.values.copy()
    return out


# -- the --small set -------------------------------------------------------------------

def test_small_tree_and_records(small):
    out, cfg = small
    assert (out / "demo.json").is_file() and (out / "smcore.toml").is_file()
    rec = json.loads((out / "demo.json").read_text())
    assert rec["complete"] and rec["seed"] == 0 and rec["small"] is True
    assert rec["era5_resolution"] == 0.25
    assert [m.source_id for m in cfg.models] == list(SMALL_MODELS)
    assert load_config(out / "smcore.toml") == cfg
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp leftovers
    sources = {p.parts[p.parts.index("CMIP6") + 3] for p in _cmip6_files(out)}
    assert sources == set(SMALL_MODELS)


def test_cmip6_drs_paths_and_names(small):
    out, cfg = small
    files = _cmip6_files(out)
    seen: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for p in files:
        rel = p.relative_to(out / "cmip6").parts
        assert len(rel) == 11, rel
        root, activity, inst, source, exp, member, table, var, grid, version, name = rel
        spec = cfg.model(source)
        assert root == "CMIP6" and activity == activity_for(exp)
        assert inst == spec.institution_id and member == spec.member_id
        assert (table, var, grid) == ("Lmon", "mrsos", "gn")
        assert re.fullmatch(r"v20\d{6}", version)
        m = FILE_RE.match(name)
        assert m, name
        assert (m["source"], m["exp"], m["member"]) == (source, exp, member)
        assert (m["m0"], m["m1"]) == ("01", "12")
        seen.setdefault((source, exp), []).append((int(m["y0"]), int(m["y1"])))
    for spec in cfg.models:
        for exp in cfg.experiments:
            hist = exp == "historical"
            y0, y1 = cfg.periods.historical if hist else (2015, cfg.periods.future[1])
            pieces = sorted(seen[(spec.source_id, exp)])
            assert pieces == file_pieces(layout_for(spec.source_id), exp, y0, y1)
            covered = [y for a, b in pieces for y in range(a, b + 1)]
            assert covered == list(range(y0, y1 + 1))
    splits = {layout_for(s).split for s, _ in seen}
    assert {"single", "50y", "yearly"} <= splits


def _check_time_axis(ds: xr.Dataset, calendar: str, y0: int, y1: int) -> None:
    assert ds["time"].encoding["calendar"] == calendar
    assert ds["time"].encoding["units"] == "days since 1850-01-01"
    assert ds["time"].attrs["bounds"] == "time_bnds"
    t = ds["time"].values
    b = ds["time_bnds"].values
    assert len(t) == 12 * (y1 - y0 + 1)
    normalised = cftime.datetime(2000, 1, 1, calendar=calendar).calendar
    assert all(isinstance(x, cftime.datetime) and x.calendar == normalised for x in t[:2])
    years = np.array([x.year for x in t])
    months = np.array([x.month for x in t])
    np.testing.assert_array_equal(years, np.repeat(np.arange(y0, y1 + 1), 12))
    np.testing.assert_array_equal(months, np.tile(np.arange(1, 13), y1 - y0 + 1))
    for i in (0, 1, len(t) - 1):
        start, end = b[i]
        assert (start.day, start.hour, end.day, end.hour) == (1, 0, 1, 0)
        assert start.month == months[i]
        assert t[i] == start + (end - start) / 2  # mid-month
    assert all(b[i + 1][0] == b[i][1] for i in range(len(t) - 1))


def test_every_cmip6_file_conventions(small):
    out, cfg = small
    for p in _cmip6_files(out):
        m = FILE_RE.match(p.name)
        spec: ModelSpec = cfg.model(m["source"])
        lay = layout_for(spec.source_id)
        with _open(p) as ds:
            var = ds["mrsos"]
            assert var.dims == ("time", "lat", "lon")
            assert var.dtype == np.float32
            assert var.attrs["units"] == "kg m-2"
            assert var.attrs["standard_name"] == "mass_content_of_water_in_soil_layer"
            assert "area: mean where land" in var.attrs["cell_methods"]
            assert var.encoding["_FillValue"] == np.float32(1e20)
            assert var.encoding["missing_value"] == np.float32(1e20)
            a = ds.attrs
            assert a["Conventions"].startswith("CF-1.7")
            assert (a["source_id"], a["experiment_id"], a["institution_id"]) == (
                spec.source_id, m["exp"], spec.institution_id)
            assert a["activity_id"] == activity_for(m["exp"])
            assert a["variant_label"] == a["member_id"] == spec.member_id
            assert (a["table_id"], a["variable_id"], a["grid_label"], a["frequency"]) == (
                "Lmon", "mrsos", "gn", "mon")
            assert a["nominal_resolution"].endswith(" km")
            parent = "historical" if m["exp"].startswith("ssp") else "piControl"
            assert a["parent_experiment_id"] == parent
            assert a["tracking_id"].startswith("hdl:21.14100/")
            assert "SYNTHETIC" in a["comment"]
            _check_time_axis(ds, spec.calendar, int(m["y0"]), int(m["y1"]))
            lat, lon = ds["lat"].values, ds["lon"].values
            assert ds["lat"].attrs["units"] == "degrees_north"
            assert ds["lon"].attrs["units"] == "degrees_east"
            lat_b, lon_b = ds["lat_bnds"].values, ds["lon_bnds"].values
            assert np.allclose(np.abs(np.diff(lat_b, axis=1)), abs(spec.dlat), rtol=0.02)
            assert np.allclose(np.diff(lon_b, axis=1), spec.dlon, rtol=0.02)
            assert ((lat_b.min(axis=1) <= lat) & (lat <= lat_b.max(axis=1))).all()
            if lay.lat_descending:
                assert (np.diff(lat) < 0).all()
            else:
                assert (np.diff(lat) > 0).all()
            assert (np.diff(lon) > 0).all()
            if lay.lon_convention == "-180_180":
                assert lon.min() < 0 and lon.max() < 180
            else:
                assert lon.min() >= 0
            if lay.global_extent:
                assert lat.min() < -85 and lat.max() > 85 and lon.max() - lon.min() > 350
            else:
                assert lat.min() >= 10 and lat.max() <= 60 and lon.min() >= 60 and lon.max() <= 145

            # No NaN over the model's land; the ocean mask is fixed and is the model's own.
            values = var.values
            nan = np.isnan(values)
            assert (nan == nan[0]).all()
            land_frac = assets.land_fraction(lat_b, lon_b)
            np.testing.assert_array_equal(~nan[0], land_frac >= 0.5)
            assert (~nan[0]).sum() > 100
            assert np.nanmin(values) >= 1.0 - 1e-3 and np.nanmax(values) <= 55.0 + 1e-2


def test_calendars_and_conventions_cover_the_variety(small):
    out, cfg = small
    calendars = set()
    for p in _cmip6_files(out):
        with _open(p) as ds:
            calendars.add(ds["time"].encoding["calendar"])
    assert {"360_day", "noleap", "365_day", "proleptic_gregorian", "standard"} <= calendars
    layouts = [layout_for(m.source_id) for m in cfg.models]
    assert any(la.lat_descending for la in layouts)
    assert any(la.lon_convention == "-180_180" for la in layouts)
    assert any(la.global_extent for la in layouts) and any(not la.global_extent for la in layouts)


def test_era5_layout(small):
    out, cfg = small
    files = sorted((out / "era5land").glob("*.nc"))
    y0, y1 = cfg.periods.historical
    assert [p.name for p in files] == [f"swvl1_era5land_monthly_{y}.nc" for y in range(y0, y1 + 1)]
    grid = era5_grid(cfg, 0.25)
    land = assets.land_mask(grid).values[::-1]
    for p in (files[0], files[-1]):
        year = int(p.stem[-4:])
        with xr.open_dataset(p) as ds:
            assert set(ds.dims) == {"valid_time", "latitude", "longitude"}
            assert ds["swvl1"].dims == ("valid_time", "latitude", "longitude")
            assert ds["swvl1"].attrs["units"] == "m**3 m**-3"
            assert ds["swvl1"].attrs["long_name"] == "Volumetric soil water layer 1"
            lat = ds["latitude"].values
            assert lat[0] == 54.0 and lat[-1] == 18.0 and lat.size == 145
            assert (np.diff(lat) < 0).all()
            assert ds["latitude"].attrs["stored_direction"] == "decreasing"
            lon = ds["longitude"].values
            assert lon[0] == 71.0 and lon[-1] == 137.0 and lon.size == 265
            assert ds["number"].ndim == 0 and int(ds["number"]) == 0
            assert list(ds["expver"].values) == ["0001"] * 12
            t = ds["valid_time"].values
            np.testing.assert_array_equal(t, np.array([f"{year}-{m:02d}-01" for m in range(1, 13)],
                                                      dtype="datetime64[ns]"))
            assert ds["valid_time"].encoding["units"] == "seconds since 1970-01-01"
            assert ds["valid_time"].encoding["dtype"] == np.int64
            assert ds.attrs["GRIB_centre"] == "ecmf" and ds.attrs["Conventions"] == "CF-1.7"
            values = ds["swvl1"].values
            np.testing.assert_array_equal(~np.isnan(values), np.broadcast_to(land, values.shape))
            assert np.nanmin(values) >= 0.01 - 1e-4 and np.nanmax(values) <= 0.55 + 1e-4


def test_truth_files(small):
    out, cfg = small
    tgt = cfg.target
    land = assets.land_mask(tgt).values
    expect = {"historical": cfg.periods.historical, "ssp126": (2015, 2040), "ssp585": (2015, 2040)}
    for exp, (y0, y1) in expect.items():
        with _open(out / "truth" / f"truth_{exp}.nc") as ds:
            ssm = ds["ssm"]
            assert ssm.dims == ("time", "lat", "lon") and ssm.attrs["units"] == "m3 m-3"
            np.testing.assert_array_equal(ds["lat"].values, tgt.lat)
            np.testing.assert_array_equal(ds["lon"].values, tgt.lon)
            assert ds.attrs["Conventions"] == "CF-1.8" and ds.attrs["experiment_id"] == exp
            years = np.array([t.year for t in ds["time"].values])
            np.testing.assert_array_equal(years, np.repeat(np.arange(y0, y1 + 1), 12))
            assert "time_bnds" in ds
            v = ssm.values
            np.testing.assert_array_equal(~np.isnan(v), np.broadcast_to(land, v.shape))
            assert np.nanmin(v) >= 0.01 - 1e-4 and np.nanmax(v) <= 0.55 + 1e-4
    # The reference is the truth, on the CDS grid (descending latitude, one more row/column).
    with _open(out / "truth" / "truth_historical.nc") as ds, xr.open_dataset(
            out / "era5land" / "swvl1_era5land_monthly_2003.nc") as era:
        truth = ds["ssm"].sel(time=ds["time"].dt.year == 2003).values
        ref = era["swvl1"].values[:, ::-1][:, :-1, :-1]
        np.testing.assert_allclose(ref, truth, atol=1e-4, equal_nan=True)


def test_truth_geography_is_real(small):
    out, cfg = small
    with _open(out / "truth" / "truth_historical.nc") as ds:
        clim = ds["ssm"].mean("time")

        def box(lat0, lat1, lon0, lon1):
            return float(clim.sel(lat=slice(lat0, lat1), lon=slice(lon0, lon1)).mean())

        taklamakan = box(37.5, 40.0, 80.0, 87.0)
        south_east = box(23.0, 30.0, 110.0, 120.0)
        north_china = box(35.0, 40.0, 112.0, 118.0)
        assert taklamakan < 0.10 and south_east > 0.28 and taklamakan < north_china < south_east
        north_china = ds["ssm"].sel(lat=slice(38, 41), lon=slice(113, 118)).mean(("lat", "lon"))
        season = north_china.groupby("time.month").mean()
        assert int(np.argmax(season.values)) + 1 in (7, 8, 9)  # monsoon peak in late summer


def test_cf_compliance(small, tmp_path):
    """CMIP6 files pass the CF-1.7 checks (what they declare), truth files CF-1.8.

    The ERA5-Land files copy the CDS layout, int64 times and NaN-filled coordinates
    included, which the checker would flag exactly as it flags the real files.
    """
    from compliance_checker.runner import CheckSuite, ComplianceChecker

    out, cfg = small
    CheckSuite().load_all_available_checkers()
    files = []
    for spec in cfg.models:
        first = next((out / "cmip6").rglob(f"mrsos_Lmon_{spec.source_id}_ssp585_*.nc"))
        files.append((first, "cf:1.7"))
    files += [(p, "cf:1.8") for p in sorted((out / "truth").glob("*.nc"))]
    for path, test in files:
        ok, _ = ComplianceChecker.run_checker(str(path), [test], 0, "normal",
                                              output_filename=str(tmp_path / "cf.txt"),
                                              output_format="text")
        assert ok, (path.name, (tmp_path / "cf.txt").read_text())


def test_planted_trends_follow_the_paper(small):
    out, cfg = small
    with xr.open_dataset(out / "truth" / "planted_trends.nc") as ds:
        tr = ds["trend"].sel(season="annual")
        assert ds["trend"].attrs["units"] == "m3 m-3 (10 year)-1"  # per decade, UDUNITS
        assert list(ds["experiment"].values) == ["ssp126", "ssp585"]

        def box(exp, lat0, lat1, lon0, lon1):
            sel = tr.sel(experiment=exp, lat=slice(lat0, lat1), lon=slice(lon0, lon1))
            return float(sel.mean())

        for exp in ("ssp126", "ssp585"):
            assert box(exp, 40, 50, 115, 130) > 0  # north-east wetting
            assert box(exp, 22, 30, 105, 120) < 0  # south drying
        # North-west: wetting under SSP1-2.6, drying under SSP5-8.5.
        assert box("ssp126", 35, 45, 75, 95) > 0 > box("ssp585", 35, 45, 75, 95)
        north = ds["trend"].sel(experiment="ssp585", lat=slice(38, 48), lon=slice(110, 130))
        jja = north.sel(season="JJA").mean()
        mam = north.sel(season="MAM").mean()
        assert float(jja) > 0 > float(mam)  # northern summer wetting, spring drying


def _nearest(da: xr.DataArray, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    da = da.assign_coords(lon=da["lon"] % 360).sortby("lon").sortby("lat")
    points = {"lat": xr.DataArray(lat, dims="p"), "lon": xr.DataArray(lon, dims="p")}
    return da.sel(points, method="nearest").values


def _monthly_anomalies(x: np.ndarray) -> np.ndarray:
    m = x.reshape(-1, 12, x.shape[-1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # cells that are NaN in every year
        clim = np.nanmean(m, axis=0)
    return (m - clim).ravel()


def _models_against_truth(out: Path, cfg: Config, first_year: int) -> tuple[
    np.ndarray, list[np.ndarray], list[float]
]:
    """Truth (time, cell) over China land from ``first_year``, each model there (nearest
    cell, m3 m-3) and each model's correlation of monthly anomalies with the truth."""
    tgt = cfg.target
    china = (assets.china_mask(tgt) & assets.land_mask(tgt)).values
    lat2, lon2 = np.meshgrid(tgt.lat, tgt.lon, indexing="ij")
    with _open(out / "truth" / "truth_historical.nc") as ds:
        truth = ds["ssm"].sel(time=ds["time"].dt.year >= first_year).values[:, china]
    fields, anomaly_r = [], []
    for spec in cfg.models:
        files = sorted((out / "cmip6").rglob(f"mrsos_Lmon_{spec.source_id}_historical_*.nc"))
        parts = []
        for f in files:
            with _open(f) as ds:
                da = ds["mrsos"].sel(time=ds["time"].dt.year >= first_year) / 100.0
                if da.sizes["time"]:
                    parts.append(_nearest(da, lat2[china], lon2[china]))
        vals = np.concatenate(parts, axis=0)
        assert vals.shape == truth.shape
        fields.append(vals)
        a, b = _monthly_anomalies(vals), _monthly_anomalies(truth)
        ok = np.isfinite(a) & np.isfinite(b)
        anomaly_r.append(float(np.corrcoef(a[ok], b[ok])[0, 1]))
    return truth, fields, anomaly_r


def test_models_are_realistically_wrong(small):
    """The ensemble mean over China land is far from the truth (paper: MAE 0.087).

    No single model is close either, and by default the models share no month-to-month
    weather with the truth, as free-running models do not.
    """
    out, cfg = small
    truth, fields, anomaly_r = _models_against_truth(out, cfg, 2011)
    maes = [np.nanmean(np.abs(vals - truth)) for vals in fields]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ens = np.nanmean(np.stack(fields), axis=0)
    ens_mae = float(np.nanmean(np.abs(ens - truth)))
    assert 0.04 < ens_mae < 0.14
    assert min(maes) > 0.035
    assert ens_mae < np.mean(maes)  # averaging helps, but does not remove the shared bias
    assert max(abs(r) for r in anomaly_r) < 0.12  # no shared weather


def test_shared_weather_is_what_the_option_asks(tmp_path):
    """``--shared-weather RHO``, measured back from the files: the models' monthly anomalies
    correlate with the truth's in proportion to RHO (none at 0)."""
    cfg = _mini_config()
    r = {}
    for rho in (0.0, 0.4, 0.8):
        out = tmp_path / f"rho{rho}"
        generate_demo(out, cfg, DemoOptions(shared_weather=rho), progress=False)
        assert json.loads((out / "demo.json").read_text())["shared_weather"] == rho
        assert f"shared_weather = {rho}" in (out / "smcore.toml").read_text()
        r[rho] = float(np.mean(_models_against_truth(out, cfg, 2011)[2]))
    assert abs(r[0.0]) < 0.1
    assert 0.1 < r[0.4] < r[0.8]
    assert r[0.8] > 0.3
    with pytest.raises(ConfigError, match="--shared-weather must be in"):
        generate_demo(tmp_path / "bad", cfg, DemoOptions(shared_weather=1.0), progress=False)


# -- options, CLI, determinism ---------------------------------------------------------

def test_cli_help(capsys):
    assert main(["demo-data", "--help"]) == 0
    text = capsys.readouterr().out
    for opt in ("--seed", "--small", "--era5-resolution", "--config", "--force"):
        assert opt in text


def test_cli_determinism_rerun_and_force(tmp_path, capsys):
    cfg = _mini_config()
    toml = tmp_path / "mini.toml"
    toml.write_text(config_to_toml(cfg))
    assert load_config(toml) == cfg
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert main(["demo-data", str(a), "--config", str(toml), "--seed", "3", "-q"]) == 0
    assert "wrote" in capsys.readouterr().out
    generate_demo(b, cfg, DemoOptions(seed=3), progress=False)
    generate_demo(c, cfg, DemoOptions(seed=4), progress=False)
    da, db, dc = _data_arrays(a), _data_arrays(b), _data_arrays(c)
    assert da.keys() == db.keys() == dc.keys() and len(da) > 10
    for k in da:
        assert da[k].tobytes() == db[k].tobytes(), k
    data = [k for k in da if k.endswith((":mrsos", ":swvl1", ":ssm"))]
    changed = [k for k in data if da[k].tobytes() != dc[k].tobytes()]
    assert changed == data

    stamp = (a / "demo.json").stat().st_mtime_ns
    assert main(["demo-data", str(a), "--config", str(toml), "--seed", "3", "-q"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert (a / "demo.json").stat().st_mtime_ns == stamp
    assert main(["demo-data", str(a), "--config", str(toml), "--seed", "3", "-q", "--force"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert _data_arrays(a).keys() == da.keys()


def test_refuses_foreign_folder(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(InputError, match="not a demo-data folder"):
        generate_demo(out, _mini_config(), DemoOptions(), progress=False)
    assert main(["demo-data", str(out), "--small", "-q", "--force"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a demo-data folder" in err
    assert (out / "thesis.tex").read_text() == "precious"


def test_bad_options(tmp_path, capsys):
    assert main(["demo-data", str(tmp_path / "x"), "--era5-resolution", "0.5", "-q"]) == 2
    assert "--era5-resolution" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_era5_at_01_degree(tmp_path):
    cfg = _mini_config()
    out = tmp_path / "hires"
    generate_demo(out, cfg, DemoOptions(seed=1, era5_resolution=0.1), progress=False)
    with xr.open_dataset(out / "era5land" / "swvl1_era5land_monthly_2012.nc") as ds:
        lat, lon = ds["latitude"].values, ds["longitude"].values
        assert lat.size == 361 and lon.size == 661
        assert lat[0] == pytest.approx(54.0) and lat[-1] == pytest.approx(18.0)
        assert lon[0] == pytest.approx(71.0) and lon[-1] == pytest.approx(137.0)
        v = ds["swvl1"].values
        land = assets.land_mask(era5_grid(cfg, 0.1)).values[::-1]
        np.testing.assert_array_equal(~np.isnan(v), np.broadcast_to(land, v.shape))
        with _open(out / "truth" / "truth_historical.nc") as tr:
            truth = tr["ssm"].sel(time=tr["time"].dt.year == 2012)
            # Cells of the 0.1° grid that are also 0.25° cell centres carry the truth itself.
            both = ds["swvl1"].sel(latitude=truth["lat"].values[::4],
                                   longitude=truth["lon"].values[::4], method="nearest")
            sub = both.values  # selected in the (ascending) order asked for
            ref = truth.values[:, ::4, ::4]
            ok = np.isfinite(sub) & np.isfinite(ref)
            assert ok.sum() > 1000
            np.testing.assert_allclose(sub[ok], ref[ok], atol=1e-3)


# -- building blocks -------------------------------------------------------------------

def test_rng_streams_are_keyed():
    a = rng_for(0, "model", "CESM2", "bias").standard_normal(5)
    b = rng_for(0, "model", "CESM2", "bias").standard_normal(5)
    c = rng_for(0, "model", "CESM2", "home").standard_normal(5)
    d = rng_for(1, "model", "CESM2", "bias").standard_normal(5)
    assert (a == b).all() and not np.allclose(a, c) and not np.allclose(a, d)


def test_smooth_noise_variance_and_correlation_length():
    lattice = NodeLattice(scale=2.0, lat_min=0, lat_max=60, lon_min=60, lon_max=150)
    lat = np.arange(20.0, 40.0, 0.5)
    lon = np.arange(90.0, 120.0, 0.5)
    f = lattice.field(lattice.draw(rng_for(0, "t"), 400), lat, lon)
    assert f.shape == (400, lat.size, lon.size)
    assert abs(f.var() - 1.0) < 0.1
    corr = lambda d: np.corrcoef(f[:, :, 10].ravel(), f[:, :, 10 + d].ravel())[0, 1]
    # Gaussian correlation with length scale·√2: exp(-d²/(4 scale²)).
    assert corr(4) == pytest.approx(np.exp(-(2.0**2) / 16.0), abs=0.08)
    assert corr(16) < 0.2


def test_ar1_autocorrelation_and_continuation():
    x = rng_for(0, "ar").standard_normal((5000, 3)).astype(np.float32)
    phi = np.array([0.2, 0.5, 0.8], np.float32)
    y = ar1_inplace(x.copy(), phi)
    for j in range(3):
        assert np.corrcoef(y[:-1, j], y[1:, j])[0, 1] == pytest.approx(phi[j], abs=0.05)
        assert y[:, j].var() == pytest.approx(1.0, abs=0.15)
    z = ar1_inplace(x[:10].copy(), phi, state=np.ones(3, np.float32))
    np.testing.assert_allclose(z[0], phi + np.sqrt(1 - phi**2) * x[0], rtol=1e-6)


def test_area_weights_conserve_and_wrap():
    src = np.arange(0.0, 360.1, 0.25)
    dst = np.array([[-1.0, 1.0], [359.0, 361.0], [10.0, 12.5]])
    w = regrid.area_weights(dst, src, period=360.0)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    f = np.arange(src.size - 1, dtype=float)
    np.testing.assert_allclose(w[2] @ f, f[40:50].mean())
    np.testing.assert_allclose(w[0], w[1])  # -1..1 is 359..361


def test_scenario_shapes():
    t = np.array([2015.0, 2057.5, 2100.0])
    for name in SCENARIOS:
        s = scenario_shape(name, t)
        assert s[0] == 0.0 and s[-1] == pytest.approx(1.0)
        assert planted_trend_per_decade(name) > 0
    # SSP1-2.6 changes early and levels off; SSP5-8.5 accelerates.
    assert scenario_shape("ssp126", t)[1] > 0.5 > scenario_shape("ssp585", t)[1]


def test_month_axis_calendars():
    mid, b = month_axis("360_day", 2000, 2000)
    np.testing.assert_allclose(np.diff(b, axis=1), 30.0)
    np.testing.assert_allclose(mid - b[:, 0], 15.0)
    mid, b = month_axis("noleap", 2000, 2000)
    assert np.diff(b, axis=1)[1, 0] == 28.0  # February of a leap year has 28 days in noleap
    mid, b = month_axis("proleptic_gregorian", 2000, 2000)
    assert np.diff(b, axis=1)[1, 0] == 29.0


def test_models_of_one_family_share_their_trend_errors():
    """CESM2 and CESM2-WACCM (one family) err alike on the forced change; CESM2 and MIROC6 do not.

    So the ensemble mean of all 25 models leans towards the larger families and its forced
    change is not unbiased by construction.
    """
    from smcore.demo.layout import native_grid
    from smcore.demo.models import build_model_statics, family_of
    from smcore.demo.truth import build_statics, sample_to

    cfg = Config()
    same, other = [], []
    for seed in (0, 1, 2):
        truth = build_statics(seed)
        errors = {}
        for sid in ("CESM2", "CESM2-WACCM", "MIROC6"):
            spec = cfg.model(sid)
            grid = native_grid(spec, layout_for(sid))
            ms = build_model_statics(seed, spec, grid, truth)
            planted = sample_to(truth.change["ssp585"], grid.lat, grid.lon)
            err = (ms.change["ssp585"] - planted).mean(axis=0)
            errors[sid] = (err, grid)
        a, ga = errors["CESM2"]
        b, _ = errors["CESM2-WACCM"]  # the same grid as CESM2
        c, gc = errors["MIROC6"]  # another grid: compared at the nearest MIROC6 cell
        land = np.isfinite(a) & np.isfinite(b)
        same.append(np.corrcoef(a[land], b[land])[0, 1])
        iy = np.abs(gc.lat[None, :] - ga.lat[:, None]).argmin(axis=1)
        ix = np.abs(gc.lon[None, :] - ga.lon[:, None]).argmin(axis=1)
        c_on_a = c[np.ix_(iy, ix)]
        ok = np.isfinite(a) & np.isfinite(c_on_a)
        other.append(np.corrcoef(a[ok], c_on_a[ok])[0, 1])
    assert family_of(cfg.model("CESM2")) == family_of(cfg.model("NorESM2-LM")) == "NCAR"
    assert family_of(cfg.model("KACE-1-0-G")) == "MOHC"
    assert np.mean(same) > 0.6
    assert np.mean(same) > np.mean(other) + 0.3
