"""Which pipeline step is running in a work directory now: ``WD/.stamps/running.json``.

``smcore run`` calls :func:`mark_running` before a step and :func:`mark_finished` after it;
the dashboard calls :func:`read` to tell *running* from *waiting*. The file holds the step,
the process id and the start time, and is replaced atomically. A file whose process is no
longer alive (a run that was killed) counts as nothing running.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from smcore.io.atomic import write_json
from smcore.workdir import WorkDir

__all__ = ["RUNNING_FILE", "running_path", "mark_running", "mark_finished", "read", "pid_alive"]

RUNNING_FILE = "running.json"
"""Name of the run-state file in the work directory's ``.stamps/`` folder."""


def _wd(workdir: str | Path | WorkDir) -> WorkDir:
    return workdir if isinstance(workdir, WorkDir) else WorkDir(workdir)


def running_path(workdir: str | Path | WorkDir) -> Path:
    """``WD/.stamps/running.json``."""
    return _wd(workdir).stamps / RUNNING_FILE


def mark_running(workdir: str | Path | WorkDir, step: str, pid: int | None = None) -> None:
    """Record that this process (or process ``pid``) is running ``step`` now."""
    path = running_path(workdir)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json({"step": step, "pid": pid or os.getpid(), "started": time.time()}, path)


def mark_finished(workdir: str | Path | WorkDir, step: str) -> None:
    """Record that ``step`` is over (the file is removed if it still names this process's step)."""
    path = running_path(workdir)
    state = _load(path)
    if state is None or (state.get("step") == step and state.get("pid") == os.getpid()):
        path.unlink(missing_ok=True)


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

    None when nothing was recorded, the file is unreadable, or its process is gone.
    """
    state = _load(running_path(workdir))
    if state is None or not isinstance(state.get("step"), str) or not pid_alive(state.get("pid")):
        return None
    return state
