"""Errors that the command line reports as one line, without a traceback."""

from __future__ import annotations

from pathlib import Path

__all__ = ["SmcoreError", "InputError", "ConfigError"]


class SmcoreError(Exception):
    """Base class of every error smcore reports to a user as a one-line message."""


class InputError(SmcoreError):
    """A user's input file (or folder) is unusable; the message names it and the problem."""

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class ConfigError(SmcoreError):
    """The configuration or the command-line options are inconsistent."""
