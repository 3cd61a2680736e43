"""One process-wide lock for every call into the netCDF-C/HDF5 libraries.

Neither library is thread-safe, and netCDF4-python releases the GIL inside them. xarray locks
its data reads and data writes, but reads and writes a file's header (attributes, variables,
dimensions) outside any lock, so two threads opening or writing files at once, as the
dashboard's sessions, its warm-up thread and its exports do, can crash the process (a
segmentation fault in ``nc_open``, a bus error, or an "HDF error" in a write beside a read).
Every netCDF call of such a process goes through :data:`NETCDF_LOCK`:

- :func:`open_netcdf` holds it while xarray opens the file and hands it to xarray for every
  later lazy read of that dataset;
- :func:`netcdf4_dataset` holds it for a header read with netCDF4 itself;
- :func:`to_netcdf` holds it for a whole write, computing dask chunks in the writing thread
  (the synchronous scheduler), so that the chunks' own reads take it again instead of waiting
  for it in another thread.

The lock is re-entrant (xarray acquires it again inside an open) and pickles to the receiving
process's own lock, so datasets opened this way still travel to dask workers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import xarray as xr

__all__ = ["NETCDF_LOCK", "netcdf_lock", "open_netcdf", "netcdf4_dataset", "to_netcdf"]


class _ProcessLock:
    """A re-entrant lock that unpickles to the one lock of the process it arrives in."""

    def __init__(self) -> None:
        self._lock = threading.RLock()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> _ProcessLock:
        self._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return netcdf_lock, ()


NETCDF_LOCK = _ProcessLock()
"""Held around every netCDF-C/HDF5 call smcore makes from a thread that may run beside others."""


def netcdf_lock() -> _ProcessLock:
    """:data:`NETCDF_LOCK` (what a pickled lock becomes in another process)."""
    return NETCDF_LOCK


def open_netcdf(path: str | Path, **kwargs: Any) -> xr.Dataset:
    """``xr.open_dataset(path, **kwargs)`` with the header read and all lazy reads locked."""
    with NETCDF_LOCK:
        return xr.open_dataset(path, lock=NETCDF_LOCK, **kwargs)


@contextmanager
def netcdf4_dataset(path: str | Path) -> Iterator[Any]:
    """A ``netCDF4.Dataset`` opened for reading, used and closed while holding the lock."""
    import netCDF4

    with NETCDF_LOCK, netCDF4.Dataset(path) as nc:
        yield nc


def to_netcdf(ds: xr.Dataset, path: str | Path, **kwargs: Any) -> None:
    """``ds.to_netcdf(path, **kwargs)`` holding the lock, dask chunks computed in this thread."""
    import dask

    with NETCDF_LOCK, dask.config.set(scheduler="synchronous"):
        ds.to_netcdf(path, **kwargs)
