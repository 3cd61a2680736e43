"""`smcore demo`: the dashboard and the pipeline as children of one process group.

The children are stand-ins (Python sleeping) so that the test checks only the launcher: the
order of the steps, that the page's server starts before the pipeline ends, and that Ctrl-C
(SIGINT to the group) and a SIGTERM to the launcher alone both stop every child.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from smcore import runstate
from smcore.cli.demo_run import demo_commands

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

CHILD = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    Path(sys.argv[1]).write_text(str(os.getpid()))
    time.sleep(float(sys.argv[2]))
    """
)


def _launcher(tmp_path: Path, run_seconds: float) -> tuple[subprocess.Popen, Path]:
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    py = sys.executable
    commands = {
        "data": [py, "-c", "pass"],
        "serve": [py, str(child), str(tmp_path / "serve.pid"), "600"],
        "run": [py, str(child), str(tmp_path / "run.pid"), str(run_seconds)],
    }
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from smcore.cli.demo_run import run_demo\n"
        f"sys.exit(run_demo(Path({str(tmp_path / 'demo')!r}), commands={commands!r}))\n"
    )
    # a process group of its own, as a terminal gives `make demo`
    proc = subprocess.Popen(
        [py, "-c", code],
        cwd=Path(__file__).resolve().parents[1],
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, tmp_path


def _pids(tmp_path: Path, names: tuple[str, ...], timeout: float = 60) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = {n: tmp_path / f"{n}.pid" for n in names}
        if all(f.exists() and f.read_text() for f in files.values()):
            return {n: int(f.read_text()) for n, f in files.items()}
        time.sleep(0.1)
    raise AssertionError(f"children {names} did not start")


def _gone(pid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_the_commands_serve_the_demo_work_directory(tmp_path):
    cmds = demo_commands(tmp_path, epochs=3, port=5010, address="127.0.0.1", python="py")
    assert cmds["data"] == ["py", "-m", "smcore", "demo-data", str(tmp_path / "data")]
    assert cmds["serve"][3:] == [
        "serve", "--workdir", str(tmp_path / "work"), "--port", "5010", "--address", "127.0.0.1"
    ]  # fmt: skip
    assert cmds["run"][3] == "run" and cmds["run"][-2:] == ["--epochs", "3"]
    assert cmds["run"][cmds["run"].index("--workdir") + 1] == str(tmp_path / "work")


def test_ctrl_c_stops_the_dashboard_and_the_pipeline(tmp_path):
    proc, _ = _launcher(tmp_path, run_seconds=600)
    pids = _pids(tmp_path, ("serve", "run"))
    assert (tmp_path / "demo" / "work").is_dir()  # served before the pipeline wrote anything
    # the page shows the pipeline's first step as running until `smcore run` marks the next
    assert runstate.read(tmp_path / "demo" / "work") == {
        "step": "prepare",
        "pid": pids["run"],
        "started": pytest.approx(time.time(), abs=120),
    }
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert all(_gone(pid) for pid in pids.values())
    assert "dashboard at http://127.0.0.1:5006/" in out and "stopping" in out


def test_sigterm_to_the_launcher_reaches_both_children(tmp_path):
    proc, _ = _launcher(tmp_path, run_seconds=0.2)  # the pipeline ends, the server stays
    pids = _pids(tmp_path, ("serve", "run"))
    assert _gone(pids["run"])
    time.sleep(1.0)
    assert proc.poll() is None  # still serving
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, out
    assert _gone(pids["serve"])
    assert "pipeline complete" in out
