"""Errors that the command line reports as one line, without a traceback.

:func:`signals_as_exceptions` turns SIGTERM (and SIGINT) into :class:`Interrupted` in the main
thread, so that a killed step unwinds like any exception: the atomic writers
(:mod:`smcore.io.atomic`) remove their temporaries and every artifact already written stays as
it was.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "SmcoreError", "InputError", "ConfigError", "Interrupted", "signals_as_exceptions",
    "check_interrupted",
]


class SmcoreError(Exception):
    """Base class of every error smcore reports to a user as a one-line message."""


class InputError(SmcoreError):
    """A user's input file (or folder) is unusable; the message names it and the problem."""

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class ConfigError(SmcoreError, ValueError):
    """The configuration or the command-line options are inconsistent.

    Also a :class:`ValueError`, so that code reading a configuration file reports it like
    any other invalid value.
    """


class Interrupted(BaseException):
    """The process received SIGTERM (or SIGINT) inside :func:`signals_as_exceptions`.

    Like :class:`KeyboardInterrupt` a :class:`BaseException`, so that ``except Exception``
    does not swallow it while every ``finally`` and the atomic writers' cleanup run; not a
    ``KeyboardInterrupt``, which the command-line framework would turn into a silent exit.
    ``exit_code`` is the shell's ``128 + signal``.
    """

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        try:
            self.name = signal.Signals(self.signum).name
        except ValueError:  # pragma: no cover - every caller passes a real signal
            self.name = f"signal {self.signum}"
        super().__init__(f"interrupted by {self.name}")

    @property
    def exit_code(self) -> int:
        """The shell's exit status of a process ended by this signal: 128 + its number."""
        return 128 + self.signum


_PENDING: list[int] = []
"""Signals whose :class:`Interrupted` may have been dropped (see :func:`signals_as_exceptions`)."""


def _raise(signum: int, frame: Any) -> None:
    _PENDING.append(signum)
    raise Interrupted(signum)


def check_interrupted() -> None:
    """Raise :class:`Interrupted` for a signal whose exception was dropped (else do nothing).

    Long runs call this between steps, so that a dropped signal stops them at the next step.
    """
    if _PENDING:
        signum = _PENDING[0]
        _PENDING.clear()
        raise Interrupted(signum)


@contextlib.contextmanager
def signals_as_exceptions(
    signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT),
) -> Iterator[None]:
    """Within the block, ``signals`` raise :class:`Interrupted` in the main thread.

    The previous handlers are restored on exit. Nested uses and handlers installed inside the
    block (e.g. the training loop's, which saves ``last.pt`` first) take precedence while they
    are active. Outside the main thread this does nothing (Python delivers signals there only).

    A signal that arrives while the main thread runs Python code called back from C (numba's
    compiler calls into Python through ctypes) raises where ctypes prints and drops the
    exception: the signal is remembered and raised again by :func:`check_interrupted` (which
    pipelines call between steps) and when the block ends, so the process still stops once
    the work in hand has completed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}
    try:
        for sig in signals:
            previous[sig] = signal.signal(sig, _raise)
        yield
    except Interrupted:
        _PENDING.clear()  # it did propagate
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    check_interrupted()
