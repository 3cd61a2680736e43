import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from smcore.errors import Interrupted, signals_as_exceptions
from smcore.io.atomic import (
    atomic_dir,
    atomic_path,
    is_temporary,
    sweep_temporaries,
    write_csv,
    write_json,
)
from smcore.io.netcdf import provenance_attrs, write_netcdf


def test_atomic_path_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_dir_swaps_in_complete_folder(tmp_path):
    target = tmp_path / "store"
    with atomic_dir(target) as tmp:
        (tmp / "x").write_text("1")
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(target) as tmp:
            (tmp / "x").write_text("2")
            raise KeyboardInterrupt
    assert (target / "x").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_write_csv(tmp_path):
    p = write_csv(pd.DataFrame({"a": [1, 2]}), tmp_path / "t.csv")
    assert p.read_text().splitlines() == ["a", "1", "2"]


def test_write_netcdf_requires_units_and_sets_cf(tmp_path):
    da = xr.DataArray(np.ones((2, 3), "f4"), dims=("lat", "lon"), coords={"lat": [0.0, 1.0], "lon": [0.0, 1.0, 2.0]})
    with pytest.raises(ValueError, match="units"):
        write_netcdf(da.to_dataset(name="v"), tmp_path / "x.nc")
    ds = da.to_dataset(name="v")
    ds["v"].attrs["units"] = "1"
    ds.attrs = provenance_attrs("test")
    write_netcdf(ds, tmp_path / "x.nc")
    back = xr.open_dataset(tmp_path / "x.nc")
    assert back.attrs["Conventions"] == "CF-1.8"
    assert back["lat"].attrs["units"] == "degrees_north"
    assert back["v"].encoding["zlib"]


@pytest.fixture
def group_umask():
    old = os.umask(0o002)  # a group-shared work directory
    yield
    os.umask(old)


def test_new_artifacts_get_the_umask_permissions(tmp_path, group_umask):
    with atomic_path(tmp_path / "a.nc") as tmp:
        tmp.write_text("x")
    write_json({"a": 1}, tmp_path / "b.json")
    with atomic_dir(tmp_path / "store") as tmp:
        (tmp / "x").write_text("1")
    assert stat.S_IMODE((tmp_path / "a.nc").stat().st_mode) == 0o664
    assert stat.S_IMODE((tmp_path / "b.json").stat().st_mode) == 0o664
    assert stat.S_IMODE((tmp_path / "store").stat().st_mode) == 0o775
    assert stat.S_IMODE((tmp_path / "store" / "x").stat().st_mode) == 0o664


def _fd_path(fd):
    return os.readlink(f"/proc/self/fd/{fd}")


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_files_and_folders_are_fsynced_around_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", _fd_path(fd)))
        real_fsync(fd)

    def replace(a, b):
        events.append(("replace", str(b)))
        real_replace(a, b)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "a.nc"
    with atomic_path(target) as tmp:
        tmp.write_text("x")
    assert events[0] == ("fsync", str(tmp)) and events[1] == ("replace", str(target))
    assert events[2] == ("fsync", str(tmp_path))
    events.clear()
    with atomic_dir(tmp_path / "store") as tmp:
        (tmp / "sub").mkdir()
        (tmp / "sub" / "x").write_text("1")
    synced = [p for kind, p in events[: events.index(("replace", str(tmp_path / "store")))]
              if kind == "fsync"]
    assert {str(tmp / "sub" / "x"), str(tmp / "sub"), str(tmp)} <= set(synced)
    assert events[-1] == ("fsync", str(tmp_path))


def test_sweep_removes_what_killed_processes_left_only(tmp_path):
    dead = 2**22 + 12345  # above any pid_max: no such process
    stale = [
        tmp_path / f".a.nc.{dead}.abcd_123.tmp.nc",
        tmp_path / ".b.csv.x1y2z3w4.tmp.csv",  # written before temporaries carried a pid
        tmp_path / f".data.zarr.{dead}.k2j3h4g5.tmp",
        tmp_path / f".evaluation.old.{dead}",
    ]
    pid = os.getpid()
    live = [tmp_path / f".c.nc.{pid}.abcd_123.tmp.nc", tmp_path / f".store.old.{pid}"]
    keep = [tmp_path / "a.nc", tmp_path / ".hidden", tmp_path / "notes.tmp"]
    for p in stale + live + keep:
        if p.name.endswith(".tmp") or ".old." in p.name:
            p.mkdir()
            (p / "chunk").write_text("1")
        else:
            p.write_text("1")
    assert all(is_temporary(p.name) for p in stale + live)
    assert not any(is_temporary(p.name) for p in keep)
    removed = sweep_temporaries([tmp_path, tmp_path / "absent"])
    assert sorted(removed) == sorted(stale)
    assert sorted(tmp_path.iterdir()) == sorted(live + keep)


def test_sigterm_unwinds_an_atomic_write(tmp_path):
    target = tmp_path / "a.nc"
    target.write_text("old")
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as info:
        with signals_as_exceptions():
            with atomic_path(target) as tmp:
                tmp.write_text("half")
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)  # the signal interrupts this
    assert info.value.exit_code == 143 and str(info.value) == "interrupted by SIGTERM"
    assert signal.getsignal(signal.SIGTERM) == before
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.nc"]


def test_cli_exits_143_on_sigterm_without_traceback(tmp_path):
    code = (
        "import os, signal, sys, threading\n"
        "from smcore import cli\n"
        "from smcore.io.atomic import atomic_path\n"
        "def cmd():\n"
        f"    with atomic_path({str(tmp_path / 'x.nc')!r}) as tmp:\n"
        "        tmp.write_text('half')\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        threading.Event().wait(30)\n"
        "cli.app.command('hang')(cmd)\n"
        "sys.exit(cli.main(['hang']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 143, done.stderr
    assert done.stderr.strip().splitlines() == ["smcore: interrupted by SIGTERM"]
    assert list(tmp_path.iterdir()) == []


def test_a_signal_dropped_inside_a_callback_is_raised_when_the_block_ends():
    """Python run from C (a ctypes callback, as numba's compiler does) drops the exception a
    signal handler raises; smcore remembers the signal and raises it afterwards."""
    import ctypes

    from smcore.errors import Interrupted, check_interrupted, signals_as_exceptions

    callback_type = ctypes.CFUNCTYPE(None)

    def inside_c() -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs here; ctypes prints and drops its exception
            pass

    call = callback_type(inside_c)
    with pytest.raises(Interrupted, match="SIGTERM"):
        with signals_as_exceptions():
            call()
            after = True  # the block went on: the exception was dropped in the callback
    assert after
    check_interrupted()  # nothing pending any more
