"""Reading NetCDF from several threads at once (the dashboard's sessions and warm-up) is safe.

netCDF-C/HDF5 are not thread-safe and xarray reads a file's header outside its own lock; the
unlocked readers crashed the process (a segmentation fault or a double free in ``nc_open``),
and a read under a lock of its own beside one of xarray's writes failed with "HDF error".
The stress runs in a child process so that a crash fails this test instead of the session.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

from smcore.io.nclock import NETCDF_LOCK

STRESS = textwrap.dedent(
    """
    import sys, threading, time
    import numpy as np, pandas as pd, xarray as xr
    from smcore.io.product import checkpoint_of, open_product
    from smcore.io.nclock import open_netcdf
    from smcore.io.netcdf import write_netcdf

    root = sys.argv[1]
    paths = []
    for k in range(4):
        time_ = pd.date_range("2000-01-01", periods=12, freq="MS")
        ds = xr.Dataset(
            {"ssm": (("time", "lat", "lon"), np.random.rand(12, 30, 30).astype("f4"),
                     {"units": "m3 m-3"})},
            coords={"time": time_, "lat": np.arange(30.0), "lon": np.arange(30.0)},
            attrs={"checkpoint_sha256": "ab" * 32, **{f"a{i}": "x" * 200 for i in range(150)}},
        )
        p = f"{root}/f{k}.nc"
        ds.to_netcdf(p)
        paths.append(p)
    stop = time.time() + float(sys.argv[2])
    failures = []
    threading.excepthook = lambda args: failures.append(repr(args.exc_value))
    loaded = xr.open_dataset(paths[0]).load()  # before any thread starts

    def work(k):
        n = 0
        while time.time() < stop:
            p = paths[(k + n) % 4]
            if n % 3 == 0:
                open_product(p, chunks=None).isel(time=n % 12).values
            elif n % 3 == 1:
                assert checkpoint_of(p) == "ab" * 32
            else:
                with open_netcdf(p) as ds:
                    ds.load()
            n += 1

    def write(k):
        # smcore's writes beside the reads, as the dashboard's exports do
        n = 0
        while time.time() < stop:
            write_netcdf(loaded, f"{root}/out{k}_{n % 2}.nc")
            n += 1

    threads = [threading.Thread(target=work, args=(k,)) for k in range(5)]
    threads.append(threading.Thread(target=write, args=(0,)))
    [t.start() for t in threads]
    [t.join() for t in threads]
    if failures:
        sys.exit("failed in a thread: " + "; ".join(failures[:3]))
    print("survived")
    """
)


def test_concurrent_reads_from_threads_do_not_crash(tmp_path: Path) -> None:
    script = tmp_path / "stress.py"
    script.write_text(STRESS)
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path), "4"],
        capture_output=True, text=True, timeout=180, cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "survived" in proc.stdout


def test_the_lock_is_reentrant_and_pickles_to_the_process_lock() -> None:
    with NETCDF_LOCK, NETCDF_LOCK:  # xarray takes it again inside an open that holds it
        pass
    assert pickle.loads(pickle.dumps(NETCDF_LOCK)) is NETCDF_LOCK
