"""Which pipeline step is running in a work directory now: ``WD/.stamps/running.json``.

``smcore run`` calls :func:`mark_running` before a step and :func:`mark_finished` after it;
the dashboard calls :func:`read` to tell *running* from *waiting*. The file holds the step,
the process id and the start time, and is replaced atomically. A file whose process is no
longer alive (a run that was killed) counts as nothing running.

While a step that this process marked runs, its progress bars (:mod:`smcore.progress`) add
how far they are to the file (``"progress"``: one :class:`Progress` record per open bar,
outermost first), at most every :data:`PROGRESS_INTERVAL_S` seconds; :func:`progress_of`
reads them back, checked, and :func:`describe_progress` says them in a line.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from smcore.io.atomic import write_json
from smcore.workdir import WorkDir

__all__ = [
    "RUNNING_FILE", "PROGRESS_INTERVAL_S", "Progress", "running_path", "mark_running",
    "mark_finished", "read", "pid_alive", "open_bar", "progress_of", "describe_progress",
]

RUNNING_FILE = "running.json"
"""Name of the run-state file in the work directory's ``.stamps/`` folder."""

PROGRESS_INTERVAL_S = 2.0
"""Least seconds between two writes of the running step's progress."""


def _wd(workdir: str | Path | WorkDir) -> WorkDir:
    return workdir if isinstance(workdir, WorkDir) else WorkDir(workdir)


def running_path(workdir: str | Path | WorkDir) -> Path:
    """``WD/.stamps/running.json``."""
    return _wd(workdir).stamps / RUNNING_FILE


@dataclass
class Progress:
    """How far one progress bar of the running step is.

    ``n`` of ``total`` ``unit`` (``total`` None when unknown) after ``elapsed`` seconds;
    ``desc`` names the bar (e.g. ``epoch 2``, ``predict ssp126``).
    """

    desc: str
    n: int
    total: int | None
    unit: str
    elapsed: float


class _Step:
    """The step this process marked running, and its open bars (outermost first)."""

    def __init__(self, path: Path, state: dict[str, Any]) -> None:
        self.path, self.state = path, state
        self.bars: list[tuple[Progress, float]] = []  # each with its start (monotonic)
        self.lock = threading.Lock()
        self.written = 0.0

    def write(self, force: bool = False) -> None:
        """Write the state and the bars (called holding :attr:`lock`)."""
        now = time.monotonic()
        if self is not _current or (not force and now - self.written < PROGRESS_INTERVAL_S):
            return  # the step is over (its file is gone), or it was written a moment ago
        self.written = now
        records = []
        for bar, start in self.bars:
            bar.elapsed = round(now - start, 1)
            records.append(asdict(bar))
        try:
            write_json({**self.state, "progress": records}, self.path)
        except OSError:
            pass  # the dashboard's view of the progress is not worth stopping the step for


_current: _Step | None = None


def mark_running(workdir: str | Path | WorkDir, step: str, pid: int | None = None) -> None:
    """Record that this process (or process ``pid``) is running ``step`` now.

    When it is this process, its progress bars report to the file until :func:`mark_finished`.
    """
    global _current
    path = running_path(workdir)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"step": step, "pid": pid or os.getpid(), "started": time.time()}
    write_json(state, path)
    _current = _Step(path, state) if state["pid"] == os.getpid() else None


def mark_finished(workdir: str | Path | WorkDir, step: str) -> None:
    """Record that ``step`` is over (the file is removed if it still names this process's step)."""
    global _current
    path = running_path(workdir)
    if _current is not None and _current.path == path and _current.state["step"] == step:
        with _current.lock:
            _current = None
    state = _load(path)
    if state is None or (state.get("step") == step and state.get("pid") == os.getpid()):
        path.unlink(missing_ok=True)


class BarRecord:
    """One progress bar's record in the running step's file (see :func:`open_bar`)."""

    def __init__(self, step: _Step | None, progress: Progress) -> None:
        self._step, self.progress = step, progress

    def _live(self) -> _Step | None:
        step = self._step
        return step if step is not None and step is _current else None

    def update(self, n: int = 1) -> None:
        """Count ``n`` more ``unit`` done."""
        self.progress.n += n
        step = self._live()
        if step is not None:
            with step.lock:
                step.write()

    def close(self) -> None:
        """The bar is done: its record leaves the file."""
        step, self._step = self._live(), None
        if step is not None:
            with step.lock:
                step.bars = [(b, t) for b, t in step.bars if b is not self.progress]
                step.write(force=True)


def open_bar(desc: str, total: int | None, unit: str, n: int = 0) -> BarRecord:
    """A bar counting ``n`` of ``total`` ``unit``.

    It is kept in the file of the step this process is running (:func:`mark_running`), else
    nowhere (its updates are then no-ops).
    """
    progress = Progress(str(desc or ""), int(n), None if total is None else int(total),
                        str(unit or ""), 0.0)
    step = _current
    if step is not None:
        with step.lock:
            step.bars.append((progress, time.monotonic()))
            step.write(force=True)
    return BarRecord(step, progress)


def pid_alive(pid: object) -> bool:
    """Whether a process with this id exists (False for anything that is not a positive int)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    except OSError:
        return False
    return True


def _load(path: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def read(workdir: str | Path | WorkDir) -> dict[str, Any] | None:
    """``{"step", "pid", "started"}`` of the step running now, or None.

    ``"progress"`` is there while the step's bars run (:func:`progress_of`). None when
    nothing was recorded, the file is unreadable, or its process is gone.
    """
    state = _load(running_path(workdir))
    if state is None or not isinstance(state.get("step"), str) or not pid_alive(state.get("pid")):
        return None
    return state


def _number(value: object) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool)
        and math.isfinite(value) and value >= 0
    )


def progress_of(state: dict[str, Any] | None) -> list[Progress]:
    """The running step's bars in ``state`` (from :func:`read`), outermost first.

    A record that is not what :class:`Progress` holds is left out: the file is read by the
    dashboard, which must not fail on it.
    """
    records = state.get("progress") if isinstance(state, dict) else None
    out = []
    for r in records if isinstance(records, list) else []:
        if not isinstance(r, dict) or not isinstance(r.get("desc"), str):
            continue
        n, total, elapsed = r.get("n"), r.get("total"), r.get("elapsed")
        if not (_number(n) and _number(elapsed) and (total is None or _number(total))):
            continue
        out.append(Progress(r["desc"], int(n), None if total is None else int(total),
                            str(r.get("unit") or ""), float(elapsed)))
    return out


def describe_progress(bars: list[Progress]) -> str:
    """The bars in a line, outermost first: ``train 1/5 epochs · epoch 2 128/600 months``."""
    parts = []
    for bar in bars:
        unit = "" if bar.unit in ("", "it") else bar.unit
        if unit and (bar.total or 0) != 1 and not unit.endswith("s"):
            unit += "s"
        count = f"{bar.n}/{bar.total}" if bar.total else f"{bar.n}"
        parts.append(" ".join(p for p in (bar.desc, count, unit) if p))
    return " · ".join(parts)
