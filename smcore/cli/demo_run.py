"""`smcore demo [DIR]`: the demo inputs, then the dashboard and the pipeline side by side.

The dashboard answers as soon as the demo inputs exist; ``smcore run`` fills its work
directory meanwhile and each tab fills in when its files appear. Both run as child processes
in this command's process group: Ctrl-C in the terminal reaches all three and each stops
cleanly; a SIGTERM sent to this command alone is passed on to both.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from smcore import runstate
from smcore.cli import app

__all__ = ["demo_command", "demo_commands", "run_demo"]

GRACE_S = 20.0
"""Seconds a child is given to stop after Ctrl-C before it is sent SIGTERM (then SIGKILL)."""


def demo_commands(
    folder: Path,
    *,
    epochs: int | None,
    port: int,
    address: str,
    python: str = sys.executable,
) -> dict[str, list[str]]:
    """The three child commands: ``data`` (demo inputs), ``serve`` and ``run``."""
    data, work = folder / "data", folder / "work"
    smcore = [python, "-m", "smcore"]
    run = [
        *smcore, "run", "--cmip6", str(data / "cmip6"), "--era5", str(data / "era5land"),
        "--workdir", str(work), "--truth", str(data / "truth"),
        "--stations", str(data / "ismn"),
    ]  # fmt: skip
    if epochs is not None:
        run += ["--epochs", str(epochs)]
    return {
        "data": [*smcore, "demo-data", str(data)],
        "serve": [*smcore, "serve", "--workdir", str(work), "--port", str(port),
                  "--address", address],
        "run": run,
    }  # fmt: skip


class _Stop(BaseException):
    """SIGINT or SIGTERM reached this process."""


def _stop(children: dict[str, subprocess.Popen], first: int | None, grace: float) -> None:
    """Stop the children: send ``first`` (None: they already got it), wait, then escalate."""
    for sig, wait in ((first, grace), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        alive = [p for p in children.values() if p.poll() is None]
        if not alive:
            return
        if sig is not None:
            for p in alive:
                p.send_signal(sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(p.poll() is None for p in alive):
            time.sleep(0.1)


def run_demo(
    folder: Path,
    *,
    epochs: int | None = 5,
    port: int = 5006,
    address: str = "127.0.0.1",
    pipeline: bool = True,
    commands: dict[str, list[str]] | None = None,
) -> int:
    """Write the demo inputs, then serve ``folder/work`` while ``smcore run`` fills it.

    ``commands`` replaces :func:`demo_commands` (tests). Returns the exit status: 128 + the
    signal when stopped by Ctrl-C or SIGTERM, otherwise the status of the child that failed.
    """
    say = typer.echo
    cmds = commands or demo_commands(folder, epochs=epochs, port=port, address=address)
    folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    children: dict[str, subprocess.Popen] = {}
    received: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        if not received:
            received.append(signum)
            raise _Stop

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        children["data"] = subprocess.Popen(cmds["data"], env=env)
        status = children["data"].wait()
        if status != 0:
            say(f"smcore demo: writing the demo inputs failed (status {status})", err=True)
            return status
        del children["data"]
        (folder / "work").mkdir(parents=True, exist_ok=True)
        children["serve"] = subprocess.Popen(cmds["serve"], env=env)
        host = "127.0.0.1" if address in ("127.0.0.1", "localhost", "::1") else address
        say(f"smcore demo: dashboard at http://{host}:{port}/ (tabs fill in as the pipeline "
            "writes them; Ctrl-C stops everything)")  # fmt: skip
        if pipeline:
            children["run"] = subprocess.Popen(cmds["run"], env=env)
            # `smcore run` marks its steps from train on; prepare comes first
            runstate.mark_running(folder / "work", "prepare", pid=children["run"].pid)
        finished = False
        while True:
            if children["serve"].poll() is not None:
                code = children["serve"].returncode
                say(f"smcore demo: the dashboard stopped (status {code})", err=True)
                _stop(children, signal.SIGTERM, 10.0)
                return code or 1
            run = children.get("run")
            if run is not None and not finished and run.poll() is not None:
                finished = True
                if run.returncode == 0:
                    say(f"smcore demo: pipeline complete; the dashboard stays at "
                        f"http://{host}:{port}/ until Ctrl-C")  # fmt: skip
                else:
                    say(f"smcore demo: the pipeline failed (status {run.returncode}); the "
                        "dashboard shows what it wrote; Ctrl-C to stop", err=True)  # fmt: skip
            time.sleep(0.5)
    except _Stop:
        say("smcore demo: stopping…", err=True)
        if received[0] == signal.SIGINT:
            # Ctrl-C: the terminal sent SIGINT to the whole process group, children included
            _stop(children, None, GRACE_S)
        else:  # sent to this process alone: pass it on
            _stop(children, received[0], GRACE_S)
        return 128 + received[0]
    finally:
        _stop(children, signal.SIGTERM, 10.0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@app.command("demo")
def demo_command(
    folder: Path = typer.Argument(  # noqa: B008 - typer reads its defaults this way
        Path("demo"), help="Folder of the demo: inputs in FOLDER/data, results in FOLDER/work."
    ),
    epochs: Optional[int] = typer.Option(5, "--epochs", help="Training epochs of the demo run."),  # noqa: UP045
    port: int = typer.Option(5006, "--port", min=1, max=65535, help="Dashboard TCP port."),
    address: str = typer.Option(
        "127.0.0.1", "--address", help="Interface to bind (default: this machine only)."
    ),
    pipeline: bool = typer.Option(
        True, "--run/--no-run", help="Run the pipeline beside the dashboard."
    ),
) -> None:
    """Demo inputs, then the dashboard at once and the pipeline beside it (Ctrl-C stops both)."""
    status = run_demo(folder, epochs=epochs, port=port, address=address, pipeline=pipeline)
    if status:
        raise typer.Exit(status)
