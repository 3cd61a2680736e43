"""``--scheduler``: prepare, analyse and evaluate on a 2-worker LocalCluster equal in-process.

One module-scoped cluster (2 single-threaded worker processes) and one small demo serve every
test; the cluster results are compared bit for bit (``np.array_equal``, ``xarray.identical``,
exact frames) with the default in-process path.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from distributed import get_task_stream

from smcore.analysis.analyse import analyse
from smcore.cli import main
from smcore.config import load_config
from smcore.distributed import compute, map_tasks, parse_scheduler, scheduler
from smcore.errors import ConfigError, InputError
from smcore.evaluation.evaluate import evaluate
from smcore.prep import open_prepared, prepare
from tests.factories.analysis import make_workdir as analysis_workdir
from tests.factories.analysis import tiny_config_toml
from tests.factories.evaluation import make_workdir as eval_workdir
from tests.factories.evaluation import tiny_config as eval_tiny_config

EXPERIMENTS = ["historical", "ssp126"]


@pytest.fixture(scope="module")
def client():
    with scheduler("local:2", quiet=True) as c:
        yield c


@pytest.fixture(scope="module")
def demo(small_demo):
    """The small demo and its configuration, shortened to 2015-2030 for a quick analysis."""
    out, cfg = small_demo
    cfg = cfg.override(
        experiments=tuple(EXPERIMENTS),
        **{"periods.future": (2015, 2030), "periods.change": ((2021, 2025), (2026, 2030))},
    )
    return out, cfg


@pytest.fixture(scope="module")
def prepared(demo, client, tmp_path_factory):
    """Work directories prepared in-process (``a``) and on the cluster (``b``), with products.

    The products are the demo's truth files (no training needed).
    """
    out, cfg = demo
    wds = {}
    for name, cl in (("a", None), ("b", client)):
        wd = tmp_path_factory.mktemp(f"wd_{name}")
        with get_task_stream(client) as stream:
            prepare(
                cfg, wd, cmip6=out / "cmip6", era5=out / "era5land", experiments=EXPERIMENTS,
                client=cl,
            )
        # the work ran on the workers (one task per dataset and reference block), or not at all
        assert (len(stream.data) >= 7 * len(EXPERIMENTS)) if cl else not stream.data
        (wd / "product").mkdir()
        for exp in EXPERIMENTS:
            shutil.copy(out / "truth" / f"truth_{exp}.nc", wd / "product" / f"CMIP6_DL_{exp}.nc")
        wds[name] = wd
    return wds["a"], wds["b"]


def _without_history(ds: xr.Dataset) -> xr.Dataset:
    ds = ds.copy()
    ds.attrs = {k: v for k, v in ds.attrs.items() if k not in ("history", "date_created")}
    return ds


def test_prepare_on_the_cluster_equals_in_process(prepared):
    a, b = (open_prepared(p) for p in prepared)
    assert a.channels == b.channels and a.experiments == b.experiments == EXPERIMENTS
    sa, sb = a.static.load(), b.static.load()
    assert set(sa.data_vars) == set(sb.data_vars)
    for name in sa.data_vars:
        assert np.array_equal(sa[name].values, sb[name].values, equal_nan=True), name
    for exp in EXPERIMENTS:
        xa, xb = a.inputs(exp).load(), b.inputs(exp).load()
        assert np.array_equal(xa.values, xb.values, equal_nan=True), exp
        assert xa.drop_attrs().identical(xb.drop_attrs())


def test_analyse_on_the_cluster_equals_in_process(prepared, demo, client):
    _, cfg = demo
    ra = analyse(cfg, prepared[0], progress=False, figures=False)
    with get_task_stream(client) as stream:
        rb = analyse(cfg, prepared[1], progress=False, figures=False, client=client)
    assert len(stream.data) > 50  # the dask graphs ran on the workers
    ta = _without_history(xr.open_dataset(ra.trends_path).load())
    tb = _without_history(xr.open_dataset(rb.trends_path).load())
    assert ta.identical(tb)
    assert np.isfinite(ta["trend"].values).any()
    for path_a, path_b in ((ra.change_rates_path, rb.change_rates_path),
                           (ra.area_fractions_path, rb.area_fractions_path)):
        assert Path(path_a).read_text() == Path(path_b).read_text()


def test_evaluate_on_the_cluster_equals_in_process(prepared, demo, client):
    _, cfg = demo
    ea = evaluate(cfg, prepared[0], progress=False, use_qdm=False)
    with get_task_stream(client) as stream:
        eb = evaluate(cfg, prepared[1], progress=False, use_qdm=False, client=client)
    assert len(stream.data) >= 3  # ridge blocks and single-model scores ran on the workers
    pd.testing.assert_frame_equal(ea.metrics, eb.metrics, check_exact=True)
    pd.testing.assert_frame_equal(ea.taylor, eb.taylor, check_exact=True)
    for name in ("maps.nc", "regional_series.nc"):
        ma = _without_history(xr.open_dataset(prepared[0] / "evaluation" / name).load())
        mb = _without_history(xr.open_dataset(prepared[1] / "evaluation" / name).load())
        assert ma.identical(mb), name


def test_qdm_baseline_travels_to_the_workers_and_back(tmp_path, client):
    pytest.importorskip("xsdba")
    cfg = eval_tiny_config()
    eval_workdir(tmp_path / "a", cfg, with_truth=False)
    eval_workdir(tmp_path / "b", cfg, with_truth=False)
    ea = evaluate(cfg, tmp_path / "a", progress=False, use_qdm=True)
    eb = evaluate(cfg, tmp_path / "b", progress=False, use_qdm=True, client=client)
    assert "qdm_ensemble_mean" in set(ea.metrics["product"])
    pd.testing.assert_frame_equal(ea.metrics, eb.metrics, check_exact=True)


# -- the task helpers ----------------------------------------------------------------------------
def _fails_on_two(x: int) -> int:
    if x == 2:
        raise InputError("/data/x2.nc", "broken on purpose")
    return x * x


def test_map_tasks_keeps_order_and_reraises_input_errors(client):
    assert list(map_tasks(_fails_on_two, [3, 1, 4], client, window=1)) == [9, 1, 16]
    assert list(map_tasks(_fails_on_two, [3, 1, 4])) == [9, 1, 16]
    with pytest.raises(InputError, match=r"^/data/x2.nc: broken on purpose$"):
        list(map_tasks(_fails_on_two, [1, 2, 3], client))


def test_compute_runs_a_dask_graph_on_the_cluster(client):
    import dask.array as da

    x = da.arange(1000, chunks=100, dtype="float64") / 7.0
    (local,) = compute(x.sum())
    (remote,) = compute(x.sum(), client=client)
    assert local == remote
    ran_on = client.run(lambda: 0)  # the cluster's workers exist and answered
    assert len(ran_on) == 2


# -- parsing and the command line ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, ("threads", None)),
        ("", ("threads", None)),
        ("threads", ("threads", None)),
        ("local", ("local", 2)),
        ("local:3", ("local", 3)),
        ("tcp://10.0.0.5:8786", ("address", "tcp://10.0.0.5:8786")),
        ("scheduler.example.org:8786", ("address", "scheduler.example.org:8786")),
    ],
)
def test_parse_scheduler(spec, expected):
    assert parse_scheduler(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("local:x", "expected local:N with N an integer"),
        ("local:0", "need at least one worker"),
        ("lokal", "expected threads, local:N or a scheduler address"),
        ("host:port", "expected threads, local:N or a scheduler address"),
    ],
)
def test_parse_scheduler_errors(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_scheduler(spec)


def test_cli_bad_scheduler_is_a_one_line_error(tmp_path, capsys):
    assert main(["analyse", "--workdir", str(tmp_path), "--scheduler", "local:zero"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("smcore: error: --scheduler 'local:zero'") and "\n" not in err


def test_cli_analyse_with_a_local_cluster(tmp_path, capsys):
    toml = tiny_config_toml(tmp_path / "tiny.toml")
    cfg = load_config(toml)
    wd = analysis_workdir(tmp_path / "wd", cfg)
    args = ["analyse", "--workdir", str(wd.root), "--config", str(toml), "--no-figures", "--quiet"]
    assert main(args + ["--scheduler", "local:2"]) == 0
    out = capsys.readouterr().out
    assert "dask: 2 workers, dashboard http://127.0.0.1:" in out
    on_cluster = (wd.analysis / "change_rates.csv").read_text()
    assert main(args) == 0
    assert (wd.analysis / "change_rates.csv").read_text() == on_cluster


def test_unreachable_scheduler_is_a_config_error():
    with pytest.raises(ConfigError, match="cannot reach dask scheduler"):
        with scheduler("tcp://127.0.0.1:9", quiet=True, connect_timeout=1):
            pass



# -- a local cluster other users of the machine cannot use ----------------------------------------
def test_local_cluster_listens_on_loopback_with_tls_only(client):
    """Others on a shared login node reach 127.0.0.1 too: without the run's key, nowhere."""
    from distributed import Client
    from distributed.security import Security

    address = client.scheduler.address
    assert address.startswith("tls://127.0.0.1:")
    workers = list(client.scheduler_info()["workers"])
    assert len(workers) == 2 and all(w.startswith("tls://127.0.0.1:") for w in workers)
    assert client.security.require_encryption
    strangers = [
        (address.replace("tls://", "tcp://"), None),  # no TLS at all
        (address, Security.temporary()),  # TLS, but a certificate of their own
    ]
    for where, security in strangers:
        with pytest.raises(Exception):  # noqa: B017, PT011 - refused, however distributed says it
            Client(where, security=security, timeout=3, set_as_default=False)
    assert client.submit(abs, -3).result() == 3  # the run's own client still works


def test_corrupted_reference_chunk_is_named_on_the_cluster(client, tmp_path):
    """A read error on a worker names the file, not a dask task."""
    from tests.factories.cmip6 import (
        corrupt_chunk,
        small_config,
        write_era5,
        write_inputs,
    )

    cmip6, era5 = write_inputs(tmp_path)
    (bad,) = write_era5(era5, years=(2002, 2002), checksum=True)
    corrupt_chunk(bad, "swvl1", 3)
    with pytest.raises(InputError) as err:
        prepare(small_config(), tmp_path / "wd", cmip6=cmip6, era5=era5, client=client,
                progress=False, report=lambda _m: None)
    assert str(err.value) == f"{bad}: unreadable data: NetCDF: HDF error"
    assert not (tmp_path / "wd" / "prepared").exists()
