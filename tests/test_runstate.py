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
