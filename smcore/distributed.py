"""Run dask work in-process, on a local cluster, or on any dask.distributed scheduler.

``--scheduler`` on the data commands takes:

* nothing (default): dask's threaded scheduler in this process;
* ``local:N``: a ``distributed.LocalCluster`` with N single-threaded worker processes;
* ``tcp://host:port`` (or any address ``distributed.Client`` accepts): an existing
  scheduler, e.g. one started by dask-jobqueue on an HPC system or by dask-gateway.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Iterator

from smcore.errors import ConfigError

__all__ = ["scheduler", "parse_scheduler"]


def parse_scheduler(spec: str | None) -> tuple[str, int | str | None]:
    """Split a ``--scheduler`` value into ``("threads", None)``, ``("local", n)`` or ``("address", addr)``."""
    if spec is None or spec in ("", "threads"):
        return ("threads", None)
    if spec.startswith("local"):
        _, _, n = spec.partition(":")
        try:
            workers = int(n) if n else 2
        except ValueError as exc:
            raise ConfigError(f"--scheduler {spec!r}: expected local:N with N an integer") from exc
        if workers < 1:
            raise ConfigError(f"--scheduler {spec!r}: need at least one worker")
        return ("local", workers)
    if "://" in spec or ":" in spec:
        return ("address", spec)
    raise ConfigError(f"--scheduler {spec!r}: expected local:N or a scheduler address like tcp://host:8786")


@contextlib.contextmanager
def scheduler(spec: str | None, *, memory_limit: str = "auto", quiet: bool = False) -> Iterator[object | None]:
    """Context in which dask computations run on the chosen scheduler.

    Yields the ``distributed.Client`` (or ``None`` for the in-process default).
    The dask dashboard link is printed when a cluster is used.
    """
    kind, arg = parse_scheduler(spec)
    if kind == "threads":
        yield None
        return
    from distributed import Client, LocalCluster

    cluster = None
    if kind == "local":
        cluster = LocalCluster(
            n_workers=int(arg),  # type: ignore[arg-type]
            threads_per_worker=1,
            processes=True,
            memory_limit=memory_limit,
            dashboard_address="127.0.0.1:0",
            host="127.0.0.1",
        )
        client = Client(cluster)
    else:
        try:
            client = Client(str(arg), timeout=30)
        except OSError as exc:
            raise ConfigError(f"cannot reach dask scheduler at {arg}: {exc}") from exc
    if not quiet:
        print(f"dask: {len(client.scheduler_info().get('workers', {}))} workers, dashboard {client.dashboard_link}",
              file=sys.stderr)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
