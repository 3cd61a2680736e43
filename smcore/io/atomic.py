"""Write files so that a reader never sees half of one: temp file in the same folder, then rename.

A temporary is a hidden sibling of its target, named ``.<name>.<pid>.<random>.tmp…``; a folder
being replaced waits as ``.<name>.old.<pid>`` until its successor is in place. Before the rename
that publishes it, a file (or every file of a folder) is flushed to disk with ``fsync``, and the
folder holding it is ``fsync``-ed after the rename, so a crash leaves either the old or the new
artifact, never a truncated one. New artifacts get the permissions the user's umask allows
(``0o666 & ~umask`` for files, ``0o777 & ~umask`` for folders), as any other program's files,
so that group-shared work directories work.

An exception (``KeyboardInterrupt`` and :class:`smcore.errors.Interrupted` included) removes the
temporary and leaves the target as it was. What a killed process could not remove is found by
:func:`sweep_temporaries` at the next start.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas is imported only by the writers that need it
    import pandas as pd

__all__ = [
    "atomic_path",
    "atomic_dir",
    "write_json",
    "write_csv",
    "sweep_temporaries",
    "is_temporary",
    "current_umask",
]

# .<name>.<pid>.<8 random chars>.tmp<suffix> (from mkstemp/mkdtemp), the same without the pid
# (written by earlier versions), and .<name>.old.<pid> (a folder being replaced).
_TMP = re.compile(r"^\..+?\.(?:(?P<pid>\d+)\.)?[A-Za-z0-9_]{8}\.tmp")
_OLD = re.compile(r"^\..+\.old\.(?P<pid>\d+)$")


def current_umask() -> int:
    """The process's umask, read without changing it (``/proc``), else by setting it back."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync(path: Path, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return  # e.g. a folder that cannot be opened on this platform
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems (and /proc-like ones) refuse fsync on folders
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for folder, _dirs, files in os.walk(root):
        for name in files:
            _fsync(Path(folder) / name)
        _fsync(Path(folder), directory=True)


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}."


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The file is fsync-ed before the rename and its folder after it; it gets the umask's
    permissions. On any exception (KeyboardInterrupt included) the temporary file is
    removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=_temp_prefix(path),
        suffix=suffix if suffix is not None else ".tmp" + path.suffix,
        dir=path.parent,
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~current_umask())
        _fsync(tmp_path)
        os.replace(tmp_path, path)
        _fsync(path.parent, directory=True)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; swap it in for ``path`` if the block succeeds.

    Every file of the new folder is fsync-ed before the swap; the folder gets the umask's
    permissions. On any exception the temporary folder is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent))
    old: Path | None = None
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~current_umask())
        _fsync_tree(tmp)
        if path.exists():
            old = path.with_name(f".{path.name}.old.{os.getpid()}")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
        os.replace(tmp, path)
        _fsync(path.parent, directory=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and old.exists() and not path.exists():
            os.replace(old, path)  # interrupted between the two renames: put the old one back
            old = None
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def is_temporary(name: str) -> bool:
    """Whether a file name is one of :func:`atomic_path`'s or :func:`atomic_dir`'s temporaries."""
    return bool(_TMP.match(name) or _OLD.match(name))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    except OSError:
        return False
    return True


def sweep_temporaries(folders: Iterable[str | Path]) -> list[Path]:
    """Remove the temporaries a killed process left in ``folders`` (not recursively).

    A temporary whose name carries the id of a running process (this one, or another smcore
    working in the same folder) is kept. Returns what was removed.
    """
    removed: list[Path] = []
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            m = _TMP.match(entry.name) or _OLD.match(entry.name)
            if m is None:
                continue
            pid = m.group("pid")
            if pid is not None and _alive(int(pid)):
                continue
            p = Path(entry.path)
            try:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(p)
                else:
                    p.unlink()
            except FileNotFoundError:
                continue
            except OSError:
                continue  # not ours to remove (permissions): leave it
            removed.append(p)
    return removed


def write_json(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    return Path(path)


def write_csv(df: pd.DataFrame, path: str | Path, **kwargs: Any) -> Path:
    """Write a DataFrame as CSV (no index unless asked), atomically."""
    kwargs.setdefault("index", False)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, **kwargs)
    return Path(path)
