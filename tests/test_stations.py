"""In-situ validation against ISMN stations: reading both ISMN formats, monthly means with the
completeness rule and the flag policy, matching to the 0.25° cell, and scores checked against
values computed by hand; then ``smcore evaluate --stations`` end to end on the tiny work
directory of the evaluation tests; the demo's synthetic ISMN download; the dashboard's
station layer (points, a click, the series and scores) and its box export.

The ISMN files are written here line by line, as ISMN delivers them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from smcore.cli import main
from smcore.errors import ConfigError, InputError
from smcore.evaluation import evaluate as ev
from smcore.evaluation.stations import (
    POOLED,
    REFERENCE,
    cell_of,
    parse_flags,
    read_stations,
    score_table,
)
from smcore.io.ismn import read_ismn
from tests.factories.evaluation import make_workdir, tiny_config


def header_values(root: Path, net: str, st: str, lat: float, lon: float, d0: float, d1: float,
                  sensor: str, lines: list[str]) -> Path:
    """A Header+values file: the header line, then ``date time value flag provider_flag``."""
    f = root / net / st / f"{net}_{net}_{st}_sm_{d0:.6f}_{d1:.6f}_{sensor}_20080101_20081231.stm"
    f.parent.mkdir(parents=True, exist_ok=True)
    head = (f"{net:<10} {net:<15} {st:<15} {lat:10.5f} {lon:11.5f}  1234.00 "
            f"{d0:9.4f} {d1:9.4f}  {sensor}")
    f.write_text("\n".join([head, *lines]) + "\n")
    return f


def ceop(root: Path, net: str, st: str, lat: float, lon: float, d0: float, d1: float,
         sensor: str, rows: list[tuple[str, float, str]]) -> Path:
    """A CEOP file: nominal and actual UTC date/time, CSE, network, station, lat, lon,
    elevation, depths, value, ISMN flag, provider flag, one line per value."""
    f = root / net / st / f"{net}_{net}_{st}_sm_{d0:.6f}_{d1:.6f}_{sensor}_20080101_20081231.stm"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text("".join(
        f"{t} {t} {net:<10} {net:<15} {st:<15} {lat:10.5f} {lon:11.5f}   321.00 "
        f"{d0:9.4f} {d1:9.4f} {v:9.4f} {flag} M\n"
        for t, v, flag in rows
    ))
    return f


@pytest.fixture(scope="module")
def ismn(tmp_path_factory) -> Path:
    """Stations whose monthly means are worked out by hand in the tests below."""
    root = tmp_path_factory.mktemp("ismn")
    lines = []
    # January 2008: days 1-25 at 00:00 (0.20) and 12:00 (0.30): daily means 0.25; on day 10
    # a 06:00 value 0.90 flagged C03; days 26-31 missing: 25 of 31 days (80.6 %) -> complete
    for d in range(1, 26):
        lines.append(f"2008/01/{d:02d} 00:00    0.2000 G M")
        if d == 10:
            lines.append("2008/01/10 06:00    0.9000 C03 M")
        lines.append(f"2008/01/{d:02d} 12:00    0.3000 G M")
    # February 2008 (29 days): days 1-23 at 0.10, 23 of 29 (79.3 %) -> incomplete; day 24
    # 0.40 flagged C03 and D06 at once
    lines += [f"2008/02/{d:02d} 00:00    0.1000 G M" for d in range(1, 24)]
    lines.append("2008/02/24 00:00    0.4000 C03,D06 M")
    header_values(root, "NETA", "S1", 19.30, 72.05, 0.05, 0.05, "ThetaProbe-ML2X", lines)
    header_values(root, "NETA", "S1", 19.30, 72.05, 0.20, 0.20, "ThetaProbe-ML2X",
                  [f"2008/01/{d:02d} 00:00    0.5000 G M" for d in range(1, 32)])
    header_values(root, "NETA", "DEEP", 19.80, 72.80, 0.30, 0.30, "TDR",
                  [f"2008/01/{d:02d} 00:00    0.3000 G M" for d in range(1, 32)])
    ceop(root, "NETB", "C1", 20.12, 73.62, 0.0, 0.05, "EC5",
         [(f"2008/01/{d:02d} 00:00", 0.30, "G") for d in range(1, 32)])
    (root / "NETB" / "C1" / "NETB_NETB_C1_sm_0.0_0.1_broken_20080101_20081231.stm").write_text(
        "this is not an ISMN file\n"
    )
    return root


def test_both_ismn_formats_are_read(ismn):
    data = read_ismn(ismn)
    by = {(s.station, s.depth_to): s for s in data.sensors}
    s1 = by[("S1", 0.05)]
    assert (s1.network, s1.lat, s1.lon, s1.elevation) == ("NETA", 19.30, 72.05, 1234.0)
    assert (s1.instrument, s1.format, s1.depth_from) == ("ThetaProbe-ML2X", "header_values", 0.05)
    assert len(s1.data) == 25 * 2 + 1 + 24 and s1.data["flag"].iloc[-1] == "C03,D06"
    assert s1.data.index[0] == pd.Timestamp("2008-01-01 00:00")
    c1 = by[("C1", 0.05)]
    assert (c1.format, c1.lat, c1.lon, c1.elevation, c1.depth_from) == (
        "ceop", 20.12, 73.62, 321.0, 0.0
    )
    assert np.allclose(c1.data["value"], 0.30) and len(c1.data) == 31
    assert data.unreadable == ["NETB/C1/NETB_NETB_C1_sm_0.0_0.1_broken_20080101_20081231.stm"]
    assert not list(ismn.rglob("python_metadata"))  # nothing written into the download


def test_monthly_means_completeness_flags_and_depth(ismn):
    by = {s.station: s for s in read_stations(ismn).stations}  # policy G
    s1 = by["S1"]
    assert s1.sensors == ["ThetaProbe-ML2X 0.05-0.05 m"]  # the 0.20 m sensor is left out
    m = s1.monthly
    jan, feb = 2008 * 12, 2008 * 12 + 1
    assert (m.loc[jan, "days"], m.loc[jan, "days_in_month"]) == (25, 31)
    assert m.loc[jan, "mean"] == pytest.approx(0.25)
    assert (m.loc[feb, "days"], m.loc[feb, "days_in_month"]) == (23, 29)
    assert np.isnan(m.loc[feb, "mean"])  # 23 of 29 days < 80 %
    assert s1.flags == {"C03": [0, 2], "D06": [0, 1], "G": [73, 0]}
    assert (s1.values_read, s1.values_kept) == (75, 73)
    assert s1.flag_text() == "C03 kept 0 dropped 2; D06 kept 0 dropped 1; G kept 73 dropped 0"
    deep = by["DEEP"]
    assert deep.status == "skipped"
    assert deep.reason == "no soil-moisture sensor within the top 0.1 m (sensors at 0.3-0.3 m)"
    assert by["C1"].complete.to_dict() == {jan: pytest.approx(0.30)}

    # G,C03: day 10 of January now averages 0.2, 0.9 and 0.3; February's day 24 still carries
    # D06, so February stays incomplete
    s1 = {s.station: s for s in read_stations(ismn, "G,C03").stations}["S1"]
    assert s1.monthly.loc[jan, "mean"] == pytest.approx((24 * 0.25 + (0.2 + 0.9 + 0.3) / 3) / 25)
    assert np.isnan(s1.monthly.loc[feb, "mean"])
    assert s1.flags["C03"] == [1, 1]
    # G,C03,D06: 24 of 29 days -> February is complete
    s1 = {s.station: s for s in read_stations(ismn, ["G", "C03", "D06"]).stations}["S1"]
    assert s1.monthly.loc[feb, "mean"] == pytest.approx((23 * 0.1 + 0.4) / 24)


def test_flag_policy_is_validated():
    assert parse_flags(None) == ("G",)
    assert parse_flags("g, U,C03") == ("G", "U", "C03")
    for bad in ("", "G;U", "GOOD", "C003"):
        with pytest.raises(ConfigError, match="--station-flags"):
            parse_flags(bad)


def test_a_station_belongs_to_the_cell_containing_it():
    lat = 18.0 + 0.25 * np.arange(16)  # cells 17.875..21.875
    lon = 71.0 + 0.25 * np.arange(24)
    assert cell_of(19.30, 72.05, lat, lon) == (5, 4)  # 19.25, 72.0
    assert cell_of(18.125, 71.125, lat, lon) == (1, 1)  # on an edge: the northern/eastern cell
    assert cell_of(17.875, 70.875, lat, lon) == (0, 0)
    assert cell_of(17.87, 72.0, lat, lon) is None
    assert cell_of(19.3, 72.05 - 360.0, lat, lon) == (5, 4)  # longitudes wrap
    assert cell_of(40.0, 100.0, lat, lon) is None


def _station(name):
    from smcore.evaluation.stations import Station

    return Station(network="N", station=name, lat=1.0, lon=2.0, elevation=0.0, sensors=[],
                   files=[], depth_from=0.05, depth_to=0.05, cell_lat=1.0, cell_lon=2.0)


def test_scores_against_hand_computed_values():
    keys = np.array([2008 * 12, 2008 * 12 + 1, 2008 * 12 + 2])
    observed = np.array([[0.25, 0.20], [0.30, 0.22], [np.nan, 0.24]])
    product = np.array([[0.27, 0.21], [0.29, 0.25], [0.50, 0.22]])
    t = score_table([_station("S1"), _station("S2")], keys, observed, {"P": product})
    s1, s2, pooled = (t.iloc[i] for i in range(3))
    # S1: differences 0.02, -0.01; centred product -0.01, 0.01 and station -0.025, 0.025
    assert (s1["months"], s1["first_month"], s1["last_month"]) == (2, "2008-01", "2008-02")
    assert s1["bias"] == pytest.approx(0.005) and s1["MAE"] == pytest.approx(0.015)
    assert s1["ubRMSD"] == pytest.approx(0.015) and s1["r"] == pytest.approx(1.0)
    assert np.isnan(s1["anomaly_r"])  # one value per calendar month: no anomaly
    # S2: differences 0.01, 0.03, -0.02; centred product (-1/60, 7/300, -1/150), station
    # (-0.02, 0, 0.02)
    assert s2["months"] == 3
    assert s2["bias"] == pytest.approx(0.02 / 3) and s2["MAE"] == pytest.approx(0.02)
    assert s2["ubRMSD"] == pytest.approx(np.sqrt(1.26667e-3 / 3), rel=1e-4)
    assert s2["r"] == pytest.approx(2.0e-4 / np.sqrt(8.66667e-4 * 8.0e-4), rel=1e-4)
    # pooled over the five pairs: differences 0.02, -0.01, 0.01, 0.03, -0.02
    assert (pooled["station"], pooled["network"], pooled["months"]) == (POOLED, "all", 5)
    assert pooled["bias"] == pytest.approx(0.006) and pooled["MAE"] == pytest.approx(0.018)
    assert pooled["ubRMSD"] == pytest.approx(np.sqrt(1.72e-3 / 5))
    assert pooled["r"] == pytest.approx(4.22e-3 / np.sqrt(4.48e-3 * 5.68e-3))


def test_anomaly_r_against_a_hand_computed_value():
    keys = np.array([2008 * 12, 2008 * 12 + 1, 2009 * 12, 2009 * 12 + 1])
    observed = np.array([[0.2], [0.3], [0.3], [0.4]])  # anomalies -.05, -.05, .05, .05
    product = np.array([[0.25], [0.3], [0.35], [0.35]])  # anomalies -.05, -.025, .05, .025
    (row, _pooled) = (r for _, r in score_table([_station("S")], keys, observed,
                                                 {"P": product}).iterrows())
    assert row["anomaly_r"] == pytest.approx(3 / np.sqrt(10))


# --- smcore evaluate --stations -------------------------------------------------------------


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """The tiny work directory, and stations sampled from its product (+0.01) over the test."""
    root = tmp_path_factory.mktemp("wd")
    make_workdir(root, with_truth=False)
    product = xr.open_dataset(root / "product" / "CMIP6_DL_historical.nc")["ssm"].load()
    ismn = root / "ismn"
    i, j = 5, 4  # cell 19.25, 72.0
    lines = []
    for day in pd.date_range("2008-01-01", "2009-12-31", freq="D"):
        v = float(product.sel(time=f"{day:%Y-%m}").isel(lat=i, lon=j).values[0]) + 0.01
        lines.append(f"{day:%Y/%m/%d} 00:00 {v:10.6f} G M")
    header_values(ismn, "NETA", "S1", 19.30, 72.05, 0.05, 0.05, "ThetaProbe", lines)
    header_values(ismn, "NETA", "FAR", 40.0, 100.0, 0.05, 0.05, "ThetaProbe", lines)
    header_values(ismn, "NETA", "SEA", 20.55, 71.80, 0.05, 0.05, "ThetaProbe", lines)  # sea cell
    header_values(ismn, "NETA", "OLD", 19.80, 72.80, 0.05, 0.05, "ThetaProbe",
                  [f"2001/03/{d:02d} 00:00  0.300000 G M" for d in range(1, 32)])  # a train month
    header_values(ismn, "NETA", "GAPPY", 19.80, 73.80, 0.05, 0.05, "ThetaProbe", lines[::3])
    result = ev.evaluate(tiny_config(), root, progress=False, use_qdm=False, stations=ismn,
                         report=lambda m: None)
    return root, result, product, (i, j)


def test_evaluate_writes_station_scores_for_every_product(evaluated):
    root, result, _product, _cell = evaluated
    scores = pd.read_csv(root / "evaluation" / "stations.csv")
    metrics = pd.read_csv(root / "evaluation" / "metrics.csv")
    products = [*metrics["product"], REFERENCE]
    per_station = scores[scores["station"] != POOLED]
    assert sorted(per_station["station"].unique()) == ["OLD", "S1"]
    assert per_station[per_station.station == "S1"]["product"].tolist() == products
    assert scores[scores["station"] == POOLED]["product"].tolist() == products
    s1 = per_station[(per_station.station == "S1")].set_index("product")
    dl = s1.loc["CMIP6_DL"]
    assert (dl["network"], dl["cell_lat"], dl["cell_lon"]) == ("NETA", 19.25, 72.0)
    assert (dl["months"], dl["first_month"], dl["last_month"]) == (24, "2008-01", "2009-12")
    # the station is the product + 0.01 (written with 6 decimals)
    assert dl["bias"] == pytest.approx(-0.01, abs=2e-6)
    assert dl["MAE"] == pytest.approx(0.01, abs=2e-6)
    assert dl["ubRMSD"] < 2e-6 and dl["r"] > 0.99999 and dl["anomaly_r"] > 0.99999
    old = per_station[per_station.station == "OLD"].set_index("product").loc["CMIP6_DL"]
    assert (old["months"], old["first_month"]) == (1, "2001-03")  # any historical month counts
    assert any("stations: 2 used, 3 skipped" in n for n in result.notes)


def test_skipped_stations_are_listed_with_the_reason(evaluated):
    root, _result, _product, _cell = evaluated
    qc = pd.read_csv(root / "evaluation" / "stations_qc.csv").set_index("station")
    assert qc.loc["S1", "status"] == "used" and qc.loc["S1", "months_scored"] == 24
    assert qc.loc["S1", "flags"] == "G kept 731 dropped 0"
    assert qc.loc["FAR", "reason"].startswith("outside the study domain: off the 16x24 grid")
    assert qc.loc["SEA", "reason"] == (
        "outside the study domain: its 0.25° cell (20.5, 71.75) is not a scored land pixel "
        "(sea, outside China, or no reference)"
    )
    assert qc.loc["GAPPY", "reason"].startswith("no complete month (at least 80% of the days")


def test_station_series_file(evaluated):
    root, _result, product, (i, j) = evaluated
    ds = xr.open_dataset(root / "evaluation" / "stations.nc")
    assert ds.attrs["featureType"] == "timeSeries" and ds.attrs["station_flags"] == "G"
    assert ds["station_name"].attrs["cf_role"] == "timeseries_id"
    assert list(ds["station_name"].values) == ["OLD", "S1"]
    s1 = ds.isel(station=1)
    t = pd.DatetimeIndex(ds["time"].values)
    dl = s1["ssm"].sel(product="CMIP6_DL").values
    pt = pd.DatetimeIndex(product["time"].values)
    pos = [int(np.flatnonzero((pt.year == x.year) & (pt.month == x.month))[0]) for x in t]
    want = product.isel(lat=i, lon=j, time=pos).values
    ok = np.isfinite(s1["sm_insitu"].values)
    assert ok.sum() == 24
    assert np.allclose(dl[ok], np.ravel(want)[ok], atol=1e-6)
    assert np.allclose(s1["sm_insitu"].values[ok], dl[ok] + 0.01, atol=2e-6)
    assert int(s1["days_with_values"].values[ok][0]) == 31
    assert int(s1["values_kept"].sel(flag="G")) == 731


def test_cli_station_errors_are_one_line(evaluated, tmp_path, capsys):
    root, *_ = evaluated
    rc = main(["evaluate", "--workdir", str(root), "--stations", str(tmp_path / "none"),
               "--no-qdm"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [f"smcore: error: {tmp_path / 'none'}: no such ISMN folder"]
    rc = main(["evaluate", "--workdir", str(root), "--stations", str(tmp_path),
               "--station-flags", "G;U"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--station-flags 'G;U'" in err[0]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no ISMN data files \(\*\.stm\) here"):
        read_stations(tmp_path / "empty")


def test_smcore_run_and_the_demo_pass_the_stations_on(tmp_path, monkeypatch, capsys):
    """`smcore run --stations DIR --station-flags …` hands both to the pipeline (whose
    evaluate step scores the stations); `smcore demo` runs it with the demo's ISMN folder."""
    import smcore.pipeline
    from smcore.cli.demo_run import demo_commands

    seen: dict = {}
    monkeypatch.setattr(smcore.pipeline, "run_pipeline",
                        lambda cfg, wd, **kw: seen.update(kw) or {"prepare": 1.0})
    args = ["run", "--cmip6", str(tmp_path / "c"), "--era5", str(tmp_path / "e"),
            "--workdir", str(tmp_path / "wd"), "--stations", str(tmp_path / "ismn")]
    assert main([*args, "--station-flags", "g,U"]) == 0
    assert seen["stations"] == tmp_path / "ismn" and seen["station_flags"] == ("G", "U")
    assert main(args) == 0 and seen["station_flags"] == ("G",)
    seen.clear()
    capsys.readouterr()
    assert main([*args, "--station-flags", "G;U"]) == 2 and not seen  # before any work
    assert "--station-flags 'G;U'" in capsys.readouterr().err
    run = demo_commands(tmp_path, epochs=1, port=5010, address="127.0.0.1")["run"]
    assert run[run.index("--stations") + 1] == str(tmp_path / "data" / "ismn")


def test_station_series_passes_the_cf_checker(evaluated, tmp_path):
    import json

    from compliance_checker.runner import CheckSuite, ComplianceChecker

    root, *_ = evaluated
    CheckSuite.load_all_available_checkers()
    report = tmp_path / "report.json"
    passed, _ = ComplianceChecker.run_checker(
        str(root / "evaluation" / "stations.nc"), ["cf:1.8"], 0, "normal",
        output_filename=str(report), output_format="json",
    )
    high = json.loads(report.read_text())["cf:1.8"]["high_priorities"]
    failed = [(c["name"], c["msgs"]) for c in high if c["value"][0] < c["value"][1]]
    assert len(high) > 5 and passed and not failed, failed


# --- the demo's synthetic ISMN download ----------------------------------------------------


def test_the_demo_download_exercises_every_rule(small_demo):
    """`smcore demo-data` writes ISMN files that go through every rule of the station path."""
    data, _cfg = small_demo
    folder = data / "ismn"
    assert "SYNTHETIC" in (folder / "Readme.txt").read_text()
    formats = {s.station: s.format for s in read_ismn(folder).sensors}
    assert formats["TP02"] == "ceop" and formats["NCP01"] == "header_values"
    by = {s.station: s for s in read_stations(folder).stations}
    assert sorted(by) == ["JP01", "MN01", "NCP01", "NE01", "NW01", "TP01", "TP02"]
    assert by["TP01"].sensors == ["5TE 0.05-0.05 m"]  # the 0.20 m sensor is left out
    assert len(by["NCP01"].sensors) == 2
    assert by["TP01"].flags["C03"][1] > 0  # organic soil trips the saturation check
    assert by["NW01"].status == "skipped" and by["NW01"].reason.startswith("no complete month")
    used = [s for s in by.values() if s.status == "used"]
    assert len(used) == 6
    assert all(s.complete.size == 48 for s in used if s.station != "TP01")  # 2011-2014
    # the wet months of TP01 lose too many values to C03 to count under the default policy;
    # with C03 allowed, they are kept and every month is complete
    assert by["TP01"].complete.size < 48
    tp01 = {s.station: s for s in read_stations(folder, "G,C03").stations}["TP01"]
    assert tp01.values_kept > by["TP01"].values_kept and tp01.flags["C03"][0] > 0
    assert tp01.flags["C03"][1] <= tp01.flags["D06"][1]  # still dropped: only those with D06
    assert tp01.complete.size == 48


# --- the dashboard: stations on the maps, a click, the box export ---------------------------


@pytest.fixture
def station_workdir(tmp_path, fresh_panel):
    from tests.factories.dashboard import make_workdir
    from tests.factories.stations import add_stations

    wd = make_workdir(tmp_path / "work")
    return wd, add_stations(wd)


def test_the_dashboard_draws_the_stations_and_plots_a_clicked_one(station_workdir):
    import holoviews as hv
    from bokeh.document import Document

    from dashboard.datastore import DataStore
    from dashboard.stations import INSITU
    from dashboard.views.explorer import ExplorerView

    hv.extension("bokeh", logo=False)
    wd, used = station_workdir
    view = ExplorerView(store=DataStore(wd.root))
    view.__panel__().get_root(Document())
    layer = view._stations
    assert layer.names() == [f"{s.network}/{s.station}" for s in used]
    for fig in (view._dl.figure, view._other.figure):
        (points,) = [r for r in fig.renderers if r.name == "stations"]
        lon, lat = points.data_source.data["lon"], points.data_source.data["lat"]
        np.testing.assert_allclose(lon, [s.lon for s in used])
        np.testing.assert_allclose(lat, [s.lat for s in used])
    # a click 0.05° from TP01 selects it, one far from every station selects nothing
    assert layer.select_near(used[1].lon + 0.05, used[1].lat, 0.3) == 1
    assert layer.select_near(100.0, 25.0, 0.3) is None and layer.selected == 1
    frame = layer.station_frame(1)
    series = xr.open_dataset(wd.evaluation / "stations.nc").isel(station=1)
    np.testing.assert_array_equal(frame[INSITU].to_numpy(), series["sm_insitu"].values)
    np.testing.assert_array_equal(frame["CMIP6_DL"].to_numpy(),
                                  series["ssm"].sel(product="CMIP6_DL").values)
    row = pd.read_csv(wd.evaluation / "stations.csv").query(
        "station == 'TP01' and product == 'CMIP6_DL'").iloc[0]
    text = layer.caption.object
    assert "SYNTH-TP/TP01" in text and f"{int(row['months'])} complete months" in text
    assert f"bias {row['bias']:+.3f}" in text and f"ubRMSD {row['ubRMSD']:.3f}" in text


def test_the_box_export_writes_the_box_a_map_shows(station_workdir, tmp_path):
    from bokeh.document import Document

    from dashboard.datastore import DataStore
    from dashboard.views.explorer import ExplorerView

    wd, _used = station_workdir
    view = ExplorerView(store=DataStore(wd.root))
    view.__panel__().get_root(Document())
    fig = view._dl.figure
    fig.x_range.start, fig.x_range.end = 100.1, 110.2  # zoomed in (geographic map)
    fig.y_range.start, fig.y_range.end = 30.3, 36.4
    box_file = tmp_path / "box.nc"
    box_file.write_bytes(view._box.write())
    assert view._box.last is not None and str(view._box.last) == "100.1,110.2,30.3,36.4"
    box = xr.open_dataset(box_file)
    product = xr.open_dataset(wd.product("historical"))
    lat, lon = product["lat"].values, product["lon"].values
    half = (lat[1] - lat[0]) / 2
    rows = (lat + half > 30.3) & (lat - half < 36.4)
    cols = (lon + half > 100.1) & (lon - half < 110.2)
    np.testing.assert_array_equal(box["lat"].values, lat[rows])
    np.testing.assert_array_equal(box["lon"].values, lon[cols])
    np.testing.assert_array_equal(box["ssm"].sel(experiment="historical").values,
                                  product["ssm"].values[:, rows][:, :, cols])
    assert box.attrs["Conventions"] == "CF-1.8" and box.attrs["bbox"] == "100.1,110.2,30.3,36.4"
    assert float(box.attrs["geospatial_lat_min"]) == pytest.approx(lat[rows][0] - half)
    assert view._box.button.filename == "smcore_historical_100.1_110.2E_30.3_36.4N.nc"
