"""End to end: `smcore run` on the small embedded demo, then a rerun that skips every step.

Also the integrity of a work directory: stamps that record the outputs, a fresh training that
leaves no stale checkpoint, products of one checkpoint only, and `smcore run` killed with
SIGTERM inside each step, then rerun to the same results.
"""

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from smcore.cli import main
from smcore.config import EXPERIMENTS, load_config
from smcore.errors import InputError
from smcore.io.atomic import is_temporary
from smcore.pipeline import file_state, is_fresh, mark_done, step_key
from smcore.workdir import STEPS, WorkDir

REPO = Path(__file__).resolve().parents[1]


def test_step_key_changes_with_inputs(tmp_path):
    f = tmp_path / "a"
    f.write_text("1")
    k1 = step_key(files=file_state([f]))
    f.write_text("22")
    assert step_key(files=file_state([f])) != k1
    wd = WorkDir(tmp_path)
    out = tmp_path / "out"
    assert not is_fresh(wd, "x", k1, [out])
    out.write_text("")
    mark_done(wd, "x", k1, 1.0, [out])
    assert is_fresh(wd, "x", k1, [out])
    assert not is_fresh(wd, "x", "other", [out])
    out.unlink()
    assert not is_fresh(wd, "x", k1, [out])


def _set_train_keys(text: str, **values: str) -> str:
    """``text`` (a configuration file) with ``[train]`` keys set to ``values`` (TOML literals)."""
    lines = [
        line for line in text.splitlines() if line.split("=")[0].strip() not in values
    ]
    at = lines.index("[train]") + 1
    return "\n".join(lines[:at] + [f"{k} = {v}" for k, v in values.items()] + lines[at:]) + "\n"


@pytest.fixture(scope="module")
def small_demo_run(small_demo, tmp_path_factory):
    """`smcore run` on the small demo (historical, ssp126, ssp585) with a tiny network.

    The configuration names no experiments, so the configured ones are the study's five
    while the inputs hold only two scenarios: every step after prepare must follow what was
    prepared.
    """
    tmp = tmp_path_factory.mktemp("run")
    data, _ = small_demo
    text = (data / "smcore.toml").read_text()
    text = text.replace("epochs = 100", "epochs = 1").replace("features = 64", "features = 8")
    text = text.replace("depth = 15", "depth = 2")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("experiments ="))
    # fp32 in passes of 4 months, not chosen by timing: every run computes the same numbers
    text = _set_train_keys(text, amp='"off"', micro_batch="4")
    tiny = tmp / "tiny.toml"
    tiny.write_text(text)
    assert load_config(tiny).experiments == EXPERIMENTS
    wd = tmp / "wd"
    args = [
        "run", "--cmip6", str(data / "cmip6"), "--era5", str(data / "era5land"), "--workdir", str(wd),
        "--truth", str(data / "truth"), "--config", str(tiny), "--no-progress",
    ]
    # In a process of its own, as the interrupted runs of the kill test: same threads, same numbers.
    done = subprocess.run(
        [sys.executable, "-m", "smcore", *args], cwd=REPO, capture_output=True, text=True,
        timeout=800,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return WorkDir(wd), args, load_config(data / "smcore.toml")


@pytest.mark.slow
def test_run_small_demo_end_to_end_and_skip(small_demo_run, capsys):
    w, args, cfg = small_demo_run
    assert cfg.experiments == ("historical", "ssp126", "ssp585")
    assert w.experiments() == list(cfg.experiments)
    assert sorted(p.name for p in w.product_dir.iterdir()) == [
        f"CMIP6_DL_{e}.nc" for e in cfg.experiments
    ]
    for exp in cfg.experiments:
        ds = xr.open_dataset(w.product(exp))
        assert ds["ssm"].attrs["units"] == "m3 m-3"
        assert ds["ssm"].shape[1:] == cfg.target.shape
    metrics = pd.read_csv(w.path("metrics"))
    assert {"CMIP6_DL", "ensemble_mean", "ridge_stacking"} <= set(metrics["product"])
    truth = pd.read_csv(w.path("truth_metrics"))
    assert sorted(set(truth["experiment"])) == sorted(cfg.experiments)
    trends = xr.open_dataset(w.path("trends"))
    assert list(trends["experiment"].values) == ["ssp126", "ssp585"]
    rates = pd.read_csv(w.path("change_rates"))
    assert set(rates["experiment"]) == {"ssp126", "ssp585"}
    _check_model_uncertainty(w, trends, rates)
    assert len(pd.read_csv(w.history)) == 1
    for step in ("train", "predict", "evaluate", "analyse"):
        assert all(p.exists() for p in w.outputs(step, w.experiments()))
    capsys.readouterr()
    assert main(args) == 0
    out = capsys.readouterr().out
    for name in ("train", "predict", "evaluate", "analyse"):
        assert f"[{name}] up to date, skipping" in out
    assert "up to date, reusing" in out


def _check_model_uncertainty(w, trends, rates):
    """The models' view written by analyse: AR6 classes, change-rate ranges, the partition."""
    from smcore.analysis.robustness import CLASS_MEANINGS

    rob = trends["robustness"]
    assert rob.attrs["flag_meanings"] == " ".join(CLASS_MEANINGS[k] for k in sorted(CLASS_MEANINGS))
    land = trends["trend"].notnull()
    assert set(np.unique(rob.where(land).values[land.values])) <= set(CLASS_MEANINGS)
    assert rob.where(~land).isnull().all()  # the fill outside land
    for share in ("share_significant", "share_agree"):
        v = trends[share].values[land.values]
        assert np.all((v >= 0) & (v <= 1))
    assert (rates["model_p05"] <= rates["model_p95"]).all() and (rates["n_models"] == 7).all()
    part = pd.read_csv(w.path("uncertainty_partition"))
    assert {"north", "south", "arid", "humid"} <= set(part["region"])
    fractions = part[["internal_fraction", "model_fraction", "scenario_fraction"]].sum(axis=1)
    assert np.allclose(fractions, 1.0)
    exe = Path(sys.executable).with_name("compliance-checker")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cc.json"
        subprocess.run([str(exe), "--test=cf:1.8", "--format=json", "-o", str(out),
                        str(w.path("trends"))], capture_output=True, text=True, timeout=300)
        report = json.loads(out.read_text())["cf:1.8"]
    assert report["high_count"] == 0 and report["medium_count"] == 0


@pytest.mark.slow
def test_every_dashboard_tab_builds_on_a_run_work_directory(small_demo_run):
    """The dashboard reads what `smcore run` wrote: every tab builds, nothing is missing."""
    import numpy as np
    import panel as pn
    from bokeh.document import Document

    from dashboard import loaders
    from dashboard.app import App
    from dashboard.views.explorer import SLOTS, ExplorerView

    w, _, _ = small_demo_run
    try:
        app = App(w.root)
        store = app.store
        assert store.problems == [] and store.config is not None
        assert store.param.scenario.objects == ["ssp126", "ssp585"]
        sidebar = store.__panel__()
        assert not sidebar.select(pn.pane.Alert)
        assert "✘" not in store.status_markdown() and "◐" not in store.status_markdown()
        for view in app.views:
            layout = view.__panel__()
            assert not isinstance(layout, pn.pane.Alert), f"{view.title}: {layout.object}"
            layout.get_root(Document())
        explorer = next(v for v in app.views if isinstance(v, ExplorerView))
        assert store.month in store.param.month.objects
        assert store.month in explorer._dl.figure.title.text
        assert np.isfinite(explorer._dl.image).any()
        series = explorer._series.lines[SLOTS.index("CMIP6_DL")].data_source.data["ssm"]
        assert len(series) == len(store.param.month.objects) and np.isfinite(series).all()
        assert explorer._series.figure.title.text.startswith("Cell ")
    finally:
        loaders.clear_caches()
        pn.state.reset()


# -- stamps record the outputs ---------------------------------------------------------------
def test_stamp_records_outputs_and_checkpoint_content(tmp_path):
    wd = WorkDir(tmp_path)
    ckpt, table = tmp_path / "training" / "best.pt", tmp_path / "training" / "history.csv"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"weights-1")
    table.write_text("epoch\n1\n")
    key = step_key(x=1)
    mark_done(wd, "train", key, 1.0, [ckpt, table])
    assert is_fresh(wd, "train", key, [ckpt, table])
    # a history rewritten (an interrupted standalone `smcore train`): not fresh
    table.write_text("epoch\n")
    assert not is_fresh(wd, "train", key, [ckpt, table])
    mark_done(wd, "train", key, 1.0, [ckpt, table])
    # a checkpoint of the same size and time but other content: not fresh (SHA-256)
    st = ckpt.stat()
    ckpt.write_bytes(b"weights-2")
    os.utime(ckpt, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert ckpt.stat().st_size == st.st_size and ckpt.stat().st_mtime_ns == st.st_mtime_ns
    assert not is_fresh(wd, "train", key, [ckpt, table])
    # a stamp that records no outputs (older smcore) is not fresh either
    (wd.stamps / "train.json").write_text(f'{{"key": "{key}"}}')
    assert not is_fresh(wd, "train", key, [ckpt, table])


def test_interrupted_fresh_training_leaves_no_stale_best_checkpoint(
    fresh_ynet_workdir, monkeypatch
):
    """A fresh `smcore train` stopped before its first new best must not leave the old best.pt.

    Before, the next `smcore run` found the train stamp matching and best.pt present, and
    predicted from the previous run's network as if this training had finished.
    """
    from smcore.train import loop
    from smcore.train.predict import predict
    from tests.factories.ynet import tiny_config

    root = fresh_ynet_workdir()
    wd = WorkDir(root)
    cfg = tiny_config(epochs=1)
    loop.train(cfg, wd, progress=False)
    outputs = wd.outputs("train")
    key = step_key(train="the same configuration")
    mark_done(wd, "train", key, 1.0, outputs)
    assert wd.checkpoint_best.exists() and is_fresh(wd, "train", key, outputs)

    original = loop.train_epoch

    def stopped_in_first_epoch(*args, **kwargs):
        signal.raise_signal(signal.SIGTERM)  # the loop stops after its first step
        return original(*args, **kwargs)

    monkeypatch.setattr(loop, "train_epoch", stopped_in_first_epoch)
    with pytest.raises(loop.TrainingInterrupted):
        loop.train(cfg, wd, progress=False)
    assert wd.checkpoint_last.exists()  # resumable
    assert not wd.checkpoint_best.exists() and not wd.summary.exists()
    assert not is_fresh(wd, "train", key, outputs)
    with pytest.raises(InputError, match="no checkpoint here"):
        predict(cfg, wd, progress=False)


# -- products of one checkpoint --------------------------------------------------------------
def _set_checkpoint(path, sha):
    import netCDF4

    with netCDF4.Dataset(path, "a") as nc:
        nc.checkpoint_sha256 = sha


def test_evaluate_refuses_products_of_different_checkpoints(tmp_path, capsys):
    from tests.factories.evaluation import make_workdir

    make_workdir(tmp_path, with_truth=False)
    hist = tmp_path / "product" / "CMIP6_DL_historical.nc"
    ssp = tmp_path / "product" / "CMIP6_DL_ssp245.nc"
    _set_checkpoint(hist, "a" * 64)
    _set_checkpoint(ssp, "b" * 64)
    assert main(["evaluate", "--workdir", str(tmp_path), "--no-qdm"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("smcore: error: products made from different checkpoints: ")
    assert f"{hist} (checkpoint aaaaaaaaaaaa…)" in err[0]
    assert f"{ssp} (checkpoint bbbbbbbbbbbb…)" in err[0]
    assert not (tmp_path / "evaluation").exists()


def test_analyse_refuses_products_of_different_checkpoints(tmp_path):
    from smcore.analysis.analyse import analyse
    from tests.factories.analysis import make_workdir, tiny_config

    cfg = tiny_config()
    wd = make_workdir(tmp_path / "wd", cfg)
    for exp in wd.experiments():
        _set_checkpoint(wd.product(exp), "c" * 64)
    _set_checkpoint(wd.product(wd.scenarios()[-1]), "d" * 64)
    with pytest.raises(InputError, match="products made from different checkpoints") as err:
        analyse(cfg, wd, progress=False, figures=False)
    assert str(wd.product(wd.scenarios()[-1])) in str(err.value)
    assert not wd.analysis.exists()


# -- killed with SIGTERM inside each step, then rerun ----------------------------------------
class _Smcore:
    """``python -m smcore ARGS`` in a process of its own; its output collected as it comes."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "smcore", *args], cwd=REPO, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 600.0) -> bool:
        """Until a line holds ``text`` (True) or the process ends without one (False)."""
        end = time.monotonic() + timeout
        with self._changed:
            while not any(text in line for line in self.lines):
                if self.proc.poll() is not None and not self._reader.is_alive():
                    return False
                left = end - time.monotonic()
                if left <= 0:
                    lines = "\n".join(self.lines)
                    raise TimeoutError(f"no {text!r} after {timeout:.0f} s:\n{lines}")
                self._changed.wait(min(left, 0.5))
        return True

    def finish(self, timeout: float = 800.0) -> int:
        rc = self.proc.wait(timeout)
        self._reader.join(10)
        return rc


# a line printed once the step is under way, and one printed once it has finished
_STARTED = {
    "prepare": "channels (", "train": "[train] running", "predict": "[predict] running",
    "evaluate": "[evaluate] running", "analyse": "[analyse] running",
}
_FINISHED = {
    "prepare": "prepared 7 models", "train": "[predict] ", "predict": "[evaluate] ",
    "evaluate": "[analyse] ", "analyse": "done in ",
}
# seconds after the start line within which the kill lands (the steps take ~5, 16, 27, 43 and
# 11 s on 2 cores)
_WINDOW = {
    "prepare": (0.0, 1.5), "train": (0.3, 6.0), "predict": (0.3, 8.0), "evaluate": (0.3, 8.0),
    "analyse": (0.3, 4.0),
}
_OWN = {"prepare": "prepared", "train": "training", "predict": "product", "evaluate": "evaluation",
        "analyse": "analysis"}


def _snapshot(root: Path, step: str) -> dict[str, str]:
    """SHA-256 of every file of the work directory except ``step``'s own and temporaries."""
    out: dict[str, str] = {}
    for folder, dirs, files in os.walk(root):
        rel = Path(folder).relative_to(root)
        if rel.parts[:1] == (_OWN[step],):
            dirs[:] = []
            continue
        dirs[:] = [d for d in dirs if not is_temporary(d)]
        for name in files:
            rel_file = (rel / name).as_posix()
            # the step's own stamp, and the marker of the running step (not an artifact: it
            # says which process works in the directory, and goes with that process)
            if is_temporary(name) or rel_file in (f".stamps/{step}.json", ".stamps/running.json"):
                continue
            out[rel_file] = hashlib.sha256((Path(folder) / name).read_bytes()).hexdigest()
    return out


def _earlier(snapshot: dict[str, str], step: str) -> dict[str, str]:
    """``snapshot`` without the files (and stamps) of the steps after ``step``."""
    later = STEPS[STEPS.index(step) + 1:]
    mine = {_OWN[s] for s in later} | {f".stamps/{s}.json" for s in later}
    return {k: v for k, v in snapshot.items()
            if k.split("/")[0] not in mine and k not in mine}


def _temporaries(root: Path) -> list[str]:
    return sorted(
        str(Path(folder, name).relative_to(root))
        for folder, dirs, files in os.walk(root)
        for name in dirs + files
        if is_temporary(name) or ".tmp" in name
    )


def _same_netcdf(a: Path, b: Path) -> None:
    x, y = xr.load_dataset(a), xr.load_dataset(b)
    for ds in (x, y):
        ds.attrs = {k: v for k, v in ds.attrs.items() if k not in ("history", "checkpoint_sha256")}
    assert x.identical(y), f"{b} differs from {a}"


@pytest.mark.slow
def test_kill_inside_every_step_then_rerun_gives_the_same_results(small_demo_run, tmp_path):
    """`smcore run` killed with SIGTERM at a random moment inside each step, then rerun.

    One work directory: the first run is killed in prepare, the next (which reruns prepare) in
    train, and so on; the last run completes. After each kill the artifacts of the earlier steps
    are byte-identical and the killed step is not "up to date" on the next run; at the end no
    temporary is left and every result equals the uninterrupted run's.
    """
    ref, args, _ = small_demo_run
    seed = int(os.environ.get("SMCORE_KILL_SEED", time.time_ns() % 100_000))
    rng = random.Random(seed)
    root = tmp_path / "wd"
    argv = list(args)
    argv[argv.index("--workdir") + 1] = str(root)
    interrupted: str | None = None
    log = [f"seed {seed}"]
    for step in STEPS:
        lo, hi = _WINDOW[step]
        for _attempt in range(3):
            run = _Smcore(argv)
            assert run.wait_for(_STARTED[step]), run.output
            if interrupted is not None:  # the step killed last time was not taken as up to date
                out = run.output
                assert f"[{interrupted}] up to date" not in out, out
                assert ("up to date, reusing" not in out) if interrupted == "prepare" else (
                    f"[{interrupted}] running" in out
                ), out
            before = _snapshot(root, step)
            delay = rng.uniform(lo, hi)
            time.sleep(max(0.0, delay - 0.1))
            run.proc.send_signal(signal.SIGTERM)
            rc = run.finish()
            out = run.output
            log.append(f"{step}: killed {delay:.2f} s in, exit {rc}")
            assert rc in (130, 143), out
            after = _snapshot(root, step)
            if _FINISHED[step] not in out:
                assert after == before, f"{step}: earlier artifacts changed\n{out}"
                interrupted = step
                break
            # the step finished before the signal, and the next one may have begun writing its
            # own files: the earlier steps' artifacts are still untouched; run it again, killed
            # sooner
            assert _earlier(after, step) == _earlier(before, step), (
                f"{step}: earlier artifacts changed\n{out}"
            )
            lo, hi = lo / 3, hi / 3
            (root / ".stamps" / f"{step}.json").unlink(missing_ok=True)
            if step == "prepare":
                (root / "prepared" / "manifest.json").unlink()
        else:
            pytest.fail(f"could not kill inside {step}: " + "; ".join(log))
    last = _Smcore(argv)
    assert last.finish() == 0, last.output
    out = last.output
    assert f"[{interrupted}] running" in out and f"[{interrupted}] up to date" not in out, out
    print("; ".join(log))

    assert _temporaries(root) == []
    w = WorkDir(root)
    for exp in ref.experiments():
        _same_netcdf(ref.product(exp), w.product(exp))
    for key in ("maps", "regions", "regional_series", "trends"):
        _same_netcdf(ref.path(key), w.path(key))
    for key in ("metrics", "taylor", "truth_metrics", "change_rates", "area_fractions",
                "truth_trend_comparison", "history"):
        a, b = pd.read_csv(ref.path(key)), pd.read_csv(w.path(key))
        if key == "history":
            a, b = a.drop(columns="seconds"), b.drop(columns="seconds")
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    with xr.open_zarr(ref.prepared_store) as a, xr.open_zarr(w.prepared_store) as b:
        for name in a.data_vars:
            np.testing.assert_array_equal(a[name].values, b[name].values)
