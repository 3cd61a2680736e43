"""smcore.runstate: which step `smcore run` is running, for the dashboard."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from smcore import runstate


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_running_then_finished(tmp_path):
    assert runstate.read(tmp_path) is None
    runstate.mark_running(tmp_path, "train")
    state = runstate.read(tmp_path)
    assert state["step"] == "train" and state["pid"] == os.getpid() and state["started"] > 0
    assert runstate.running_path(tmp_path) == tmp_path.resolve() / ".stamps" / "running.json"
    runstate.mark_running(tmp_path, "predict")  # the next step replaces it
    assert runstate.read(tmp_path)["step"] == "predict"
    runstate.mark_finished(tmp_path, "train")  # not the step running now: kept
    assert runstate.read(tmp_path)["step"] == "predict"
    runstate.mark_finished(tmp_path, "predict")
    assert runstate.read(tmp_path) is None and not runstate.running_path(tmp_path).exists()


def test_a_dead_process_is_not_running(tmp_path):
    path = runstate.running_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"step": "evaluate", "pid": _dead_pid(), "started": 0}))
    assert runstate.read(tmp_path) is None
    runstate.mark_finished(tmp_path, "evaluate")  # another process's stale file: left alone
    assert path.exists()


def test_unreadable_state_is_not_running(tmp_path):
    path = runstate.running_path(tmp_path)
    path.parent.mkdir(parents=True)
    for text in ("{not json", "[1, 2]", json.dumps({"step": "train", "pid": "x"})):
        path.write_text(text)
        assert runstate.read(tmp_path) is None
    assert not runstate.pid_alive(0) and not runstate.pid_alive(True) and runstate.pid_alive(1)


def _bars(root):
    return [(b.desc, b.n, b.total, b.unit) for b in runstate.progress_of(runstate.read(root))]


def test_the_running_steps_bars_say_how_far_it_is(tmp_path, monkeypatch):
    from smcore.progress import StepBar

    monkeypatch.setattr(runstate, "PROGRESS_INTERVAL_S", 0.0)
    outside = StepBar(total=3, desc="no step", disable=True)  # nothing marked: nowhere
    outside.update()
    assert runstate.read(tmp_path) is None
    runstate.mark_running(tmp_path, "train")
    with StepBar(total=2, desc="train", unit="epoch", disable=True) as outer:
        with StepBar(total=600, desc="epoch 1", unit="month", disable=True) as inner:
            inner.update(8)
            assert _bars(tmp_path) == [("train", 0, 2, "epoch"), ("epoch 1", 8, 600, "month")]
            assert runstate.describe_progress(runstate.progress_of(runstate.read(tmp_path))) == (
                "train 0/2 epochs · epoch 1 8/600 months"
            )
        outer.update()
        assert _bars(tmp_path) == [("train", 1, 2, "epoch")]  # a closed bar leaves the file
        for _ in StepBar(["a", "b", "c"], desc="models", unit="model", disable=True):
            pass  # iterating counts too
        assert _bars(tmp_path) == [("train", 1, 2, "epoch")]
        seen = []
        for _ in StepBar(["a", "b"], desc="models", unit="model", disable=True):
            seen.append(_bars(tmp_path)[-1])
        assert seen == [("models", 0, 2, "model"), ("models", 1, 2, "model")]
        runstate.mark_finished(tmp_path, "train")
        outer.update()  # the step is over: its file is not written again
        assert not runstate.running_path(tmp_path).exists()


def test_progress_is_written_every_few_seconds_not_every_update(tmp_path, monkeypatch):
    from smcore.progress import StepBar

    monkeypatch.setattr(runstate, "PROGRESS_INTERVAL_S", 3600.0)
    runstate.mark_running(tmp_path, "predict")
    try:
        with StepBar(total=100, desc="predict ssp126", unit="month", disable=True) as bar:
            for _ in range(50):
                bar.update()
            assert _bars(tmp_path) == [("predict ssp126", 0, 100, "month")]  # as it opened
            monkeypatch.setattr(runstate, "PROGRESS_INTERVAL_S", 0.0)
            bar.update()
            assert _bars(tmp_path) == [("predict ssp126", 51, 100, "month")]
    finally:
        runstate.mark_finished(tmp_path, "predict")


def test_another_process_marking_a_step_does_not_track_this_ones_bars(tmp_path):
    from smcore.progress import StepBar

    runstate.mark_running(tmp_path, "prepare", pid=1)  # `smcore demo` marks its child's step
    with StepBar(total=5, desc="regridding", disable=True) as bar:
        bar.update(5)
    assert "progress" not in json.loads(runstate.running_path(tmp_path).read_text())


def test_malformed_progress_records_are_left_out():
    good = {"desc": "epoch 2", "n": 8, "total": 600, "unit": "month", "elapsed": 1.5}
    state = {"step": "train", "progress": [
        good, "x", {"desc": 3, "n": 1, "total": 2, "elapsed": 0}, {**good, "n": -1},
        {**good, "total": "600"}, {**good, "elapsed": None}, {**good, "n": True},
        {**good, "total": float("inf")}, {**good, "n": float("nan")},
        {**good, "total": None, "unit": "it"},
    ]}
    bars = runstate.progress_of(state)
    assert [(b.n, b.total) for b in bars] == [(8, 600), (8, None)]
    assert runstate.describe_progress(bars) == "epoch 2 8/600 months · epoch 2 8"
    assert runstate.progress_of({"step": "x", "progress": {"a": 1}}) == []
    assert runstate.progress_of(None) == []
