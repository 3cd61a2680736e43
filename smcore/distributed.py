"""Run the data work in-process, on a local cluster, or on any dask.distributed scheduler.

``--scheduler`` on the data commands (``prepare``, ``evaluate``, ``analyse``, ``run``) takes:

* nothing or ``threads`` (default): everything runs in this process (dask's threaded
  scheduler where dask is used);
* ``local:N``: a ``distributed.LocalCluster`` with N single-threaded worker processes on
  this machine, listening on 127.0.0.1 only and speaking TLS with a certificate made for this
  run (``Security.temporary()``): other users of a shared login node can reach 127.0.0.1 but,
  without the run's key, can neither submit work to the cluster nor read its data;
* ``tcp://host:port`` (or ``host:port``): a running scheduler, e.g. one started with
  ``dask scheduler`` or by dask-jobqueue on an HPC system (see docs/scaling.md).

The client is *not* made dask's default scheduler: smcore sends work to it explicitly,
through :func:`map_tasks` / :func:`submit` (one Python task per independent piece, e.g. one
CMIP6 dataset) and :func:`compute` (dask graphs). Every task runs its own dask pieces with
the synchronous scheduler (a worker holds one piece at a time) and with as many BLAS
threads as the client process, so the floating-point operations and their order are those
of the in-process path: results are bit-identical (same machine type and libraries).
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import dask
from dask.callbacks import Callback

from smcore.errors import ConfigError, InputError
from smcore.progress import StepBar

__all__ = [
    "parse_scheduler",
    "scheduler",
    "n_workers",
    "local_security",
    "map_tasks",
    "submit",
    "result",
    "compute",
    "blas_threads",
    "DEFAULT_LOCAL_WORKERS",
]

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_LOCAL_WORKERS = 2
"""Workers of a bare ``local`` (no ``:N``)."""


def parse_scheduler(spec: str | None) -> tuple[str, int | str | None]:
    """Split a ``--scheduler`` value into its kind and argument.

    Returns ``("threads", None)``, ``("local", n_workers)`` or ``("address", addr)``.
    Raises :class:`ConfigError` (one line) for anything else.
    """
    spec = None if spec is None else spec.strip()
    if spec is None or spec in ("", "threads"):
        return ("threads", None)
    if spec == "local" or spec.startswith("local:"):
        _, _, n = spec.partition(":")
        try:
            workers = int(n) if n else DEFAULT_LOCAL_WORKERS
        except ValueError as exc:
            raise ConfigError(f"--scheduler {spec!r}: expected local:N with N an integer") from exc
        if workers < 1:
            raise ConfigError(f"--scheduler {spec!r}: need at least one worker")
        return ("local", workers)
    if "://" in spec or (":" in spec and spec.rsplit(":", 1)[1].isdigit()):
        return ("address", spec)
    raise ConfigError(
        f"--scheduler {spec!r}: expected threads, local:N or a scheduler address like tcp://host:8786"
    )


@contextlib.contextmanager
def scheduler(
    spec: str | None,
    *,
    memory_limit: str | float | None = "auto",
    quiet: bool = False,
    report: Callable[[str], None] | None = None,
    connect_timeout: float = 30.0,
) -> Iterator[Any]:
    """Context holding the ``distributed.Client`` of ``spec`` (``None`` for the in-process default).

    ``local:N`` starts N single-threaded worker processes bound to 127.0.0.1, each
    limited to ``memory_limit`` (``"auto"``: the machine's memory divided by N; a
    number of bytes or a string like ``"4GiB"``); scheduler, workers and client talk TLS with
    a temporary certificate of this run (:func:`local_security`). An address connects to a running
    scheduler (its workers keep their own limits), waiting at most ``connect_timeout``
    seconds. Prints the dask dashboard link (to ``report``, else stderr) unless ``quiet``.
    Raises :class:`ConfigError` when the scheduler cannot be reached.
    """
    kind, arg = parse_scheduler(spec)
    if kind == "threads":
        yield None
        return
    from distributed import Client, LocalCluster

    cluster = None
    if kind == "local":
        security = local_security()
        cluster = LocalCluster(
            n_workers=int(arg),  # type: ignore[arg-type]
            threads_per_worker=1,
            processes=True,
            memory_limit=memory_limit,
            dashboard_address="127.0.0.1:0",
            host="127.0.0.1",
            protocol="tls://",
            security=security,
        )
        client = Client(cluster, security=security, set_as_default=False)
    else:
        try:
            client = Client(str(arg), timeout=connect_timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"cannot reach dask scheduler at {arg}: {exc}") from exc
    if not quiet:
        line = f"dask: {n_workers(client)} workers, dashboard {client.dashboard_link}"
        (report or (lambda m: print(m, file=sys.stderr)))(line)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def local_security() -> Any:
    """TLS for a ``local:N`` cluster: a key and certificate made for this run only.

    Every connection (client, scheduler, workers) must present them, so a process of another
    user on the same machine cannot talk to the cluster. Needs ``cryptography``; its absence
    is a :class:`ConfigError`.
    """
    from distributed.security import Security

    try:
        return Security.temporary()
    except ImportError as exc:  # pragma: no cover - cryptography is a dependency
        raise ConfigError(
            "--scheduler local:N needs the 'cryptography' package (pip install cryptography)"
        ) from exc


def n_workers(client: Any) -> int:
    """Workers currently connected to ``client``'s scheduler (at least 1)."""
    return max(1, len(client.scheduler_info().get("workers", {})))


class _Raised:
    """An :class:`InputError` raised in a worker, carried back as data (it does not pickle)."""

    def __init__(self, exc: InputError) -> None:
        self.path, self.problem = exc.path, exc.problem


def blas_threads() -> int | None:
    """Threads of this process's BLAS (None if unknown; needs threadpoolctl)."""
    try:
        import numpy  # noqa: F401 - loads the BLAS library so that it can be inspected
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    counts = [d["num_threads"] for d in threadpool_info() if d.get("user_api") == "blas"]
    return max(counts) if counts else None


def _run_task(fn: Callable[[T], R], item: T, blas: int | None = None) -> R | _Raised:
    """Worker side of :func:`map_tasks` and :func:`submit`.

    Dask inside the task runs synchronously; BLAS uses ``blas`` threads, as in the
    client's process (dask workers default to one): a threaded BLAS dot product splits
    its sum by thread, so this keeps results bit-identical to the in-process path.
    """
    limits: Any = contextlib.nullcontext()
    if blas is not None:
        try:
            from threadpoolctl import threadpool_limits

            limits = threadpool_limits(limits=blas, user_api="blas")
        except ImportError:
            pass
    with dask.config.set(scheduler="synchronous"), limits:
        try:
            return fn(item)
        except InputError as exc:
            return _Raised(exc)


def _submit(client: Any, fn: Callable[[T], R], item: T, blas: int | None) -> Any:
    # A task's arrays travel with it; distributed warns about "large graphs" above 10 MiB,
    # which is what a task holding one chunk of data is meant to be.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sending large graph")
        return client.submit(_run_task, fn, item, blas, pure=False)


def submit(client: Any, fn: Callable[[T], R], item: T) -> Any:
    """``fn(item)`` as one task on ``client``'s cluster; collect it with :func:`result`."""
    return _submit(client, fn, item, blas_threads())


def result(future: Any) -> Any:
    """The value of a :func:`submit` task; an :class:`InputError` it raised is raised here."""
    value = future.result()
    if isinstance(value, _Raised):
        raise InputError(value.path, value.problem)
    return value


def map_tasks(
    fn: Callable[[T], R],
    items: Iterable[T],
    client: Any = None,
    *,
    window: int | None = None,
    desc: str = "",
    progress: bool = False,
    unit: str = "task",
) -> Iterator[R]:
    """``fn(item)`` for each item, yielded in the order of ``items``.

    Without a client the calls run one after another in this process. With one, each
    call is a task on the cluster; at most ``window`` (default: twice the workers) are
    submitted and not yet collected, so finished results do not pile up on workers or
    here. ``fn`` must be importable by the workers (a module-level function or a
    ``functools.partial`` of one). An :class:`InputError` raised by a task is raised here.
    """
    items = list(items)
    bar = StepBar(total=len(items), desc=desc, unit=unit, disable=not progress)
    try:
        if client is None:
            for item in items:
                yield fn(item)
                bar.update()
            return
        window = window or 2 * n_workers(client)
        blas = blas_threads()
        pending: collections.deque[Any] = collections.deque()
        todo = iter(items)
        for item in itertools.islice(todo, window):
            pending.append(_submit(client, fn, item, blas))
        while pending:
            fut = pending.popleft()
            try:
                value = result(fut)
            except InputError:
                for f in pending:
                    f.cancel()
                raise
            fut.release()
            for item in itertools.islice(todo, 1):
                pending.append(_submit(client, fn, item, blas))
            yield value
            bar.update()
    finally:
        bar.close()


def compute(
    *objs: Any, client: Any = None, desc: str = "", progress: bool = False
) -> tuple[Any, ...]:
    """``dask.compute(*objs)`` on ``client``'s cluster, or in-process threads without one.

    The same graphs run either way, so results are identical. On a cluster the progress
    bar counts finished output chunks; in-process it counts tasks.
    """
    if client is None:
        with _TqdmCallback(desc, progress):
            return tuple(dask.compute(*objs))
    from distributed import as_completed, futures_of

    persisted = client.persist(list(objs))
    futures = futures_of(persisted)
    bar = StepBar(total=len(futures), desc=desc, unit="chunk", disable=not progress, leave=False)
    with bar:
        for _ in as_completed(futures, loop=client.loop):
            bar.update()
    return tuple(client.compute(persisted, sync=True))


class _TqdmCallback(Callback):
    """Dask local-scheduler callback that advances a tqdm bar once per finished task."""

    def __init__(self, desc: str, enabled: bool) -> None:
        super().__init__()
        self._desc = desc
        self._enabled = enabled
        self._bar: Any = None

    def _start_state(self, dsk: Any, state: dict[str, Any]) -> None:
        total = sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))
        self._bar = StepBar(total=total, desc=self._desc, unit="task",
                            disable=not self._enabled, leave=False)

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def _finish(self, dsk: Any, state: Any, errored: bool) -> None:
        if self._bar is not None:
            self._bar.close()
