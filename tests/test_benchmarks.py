"""The training benchmark runs where GPU nodes are bare: torch, numpy, pandas, xarray only."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILE_STACK = ("netCDF4", "h5netcdf", "cftime", "zarr", "numcodecs", "dask", "distributed")
TINY = ["--device", "cpu", "--coarse", "4x6", "--scale", "2", "--channels", "3", "--features", "8",
        "--depth", "3", "--months", "8", "--seconds", "1", "--rounds", "1"]
LAST_LINE = r"train_throughput ratio=[0-9.]+ project=[0-9.]+ naive=[0-9.]+ device=cpu"


def test_train_throughput_runs_without_the_file_stack() -> None:
    argv = ["train_throughput.py", *TINY, "--schedule", "2", "--schedule-months", "8",
            "--schedule-val", "4"]
    code = (
        "import runpy, sys\n"
        f"for name in {FILE_STACK!r}:\n"
        "    sys.modules[name] = None  # import fails, as on a node without these packages\n"
        f"sys.argv = {argv!r}\n"
        "runpy.run_path('benchmarks/train_throughput.py', run_name='__main__')\n"
        "readers = [m for m in sys.modules if m.startswith(('smcore.prep', 'smcore.io.c'))]\n"
        "assert not readers, readers\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert re.fullmatch(LAST_LINE, lines[-1]), lines
    schedule = "schedule: 2 epochs x 8 training months (+4 validation) in "
    assert any(line.startswith(schedule) for line in lines), lines
    assert any(line.startswith("work: ") and "GFLOP per training sample" in line for line in lines)
    # the precision of the run (too small a network to measure: fp32) and the share of its ceiling
    assert any(line.startswith("precision: fp32 (default layout), passes of 4 months") for line in lines), lines
    share = r"ceiling share: the project loop \(fp32\) reaches \d+% of the fp32 ceiling"
    assert any(re.match(share, line) for line in lines), lines
