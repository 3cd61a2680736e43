"""Benchmark `smcore prepare` on the full demo set: wall time and peak resident memory.

    .venv/bin/python benchmarks/prepare.py [--data demo/data] [--workdir DIR] [--config FILE]

``--data`` is the output of ``smcore demo-data`` (``cmip6/`` and ``era5land/`` inside;
``era5/`` is accepted too). The configuration is ``--config``, else ``DATA/smcore.toml`` when
it exists, else the paper's defaults. The prepare always recomputes (``force``). The last
line is machine-readable::

    prepare seconds=<wall s> peak_rss_gb=<GB> models=<channels> months=<months prepared per model>

where months counts the historical months plus the months of every scenario.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("demo/data"))
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--config", type=Path, default=None)
    args = ap.parse_args(argv)

    from smcore.config import load_config
    from smcore.prep import prepare

    data = args.data
    era5 = data / "era5land" if (data / "era5land").exists() else data / "era5"
    config = args.config or (data / "smcore.toml" if (data / "smcore.toml").exists() else None)
    cfg = load_config(config)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="smcore-bench-"))
    print(f"data={data} config={config or 'defaults'} workdir={workdir}", file=sys.stderr)

    t0 = time.perf_counter()
    res = prepare(cfg, workdir, cmip6=data / "cmip6", era5=era5, force=True, progress=True, report=print)
    seconds = time.perf_counter() - t0
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # kB on Linux
    months = sum(res.data.inputs(e).sizes["time"] for e in res.data.experiments)
    print(
        f"prepare seconds={seconds:.1f} peak_rss_gb={peak_gb:.2f} "
        f"models={len(res.channels)} months={months}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
