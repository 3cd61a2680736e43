"""Keep a failure where it happened: one line in the log, escaped text on the page.

Every value the dashboard takes from an artifact and shows as Markdown goes through
:func:`escape_markdown` (text) or :func:`code_span` (paths, messages), so a file cannot put
HTML or Markdown into the page (a ``summary.json`` field ``<img src=x onerror=alert(1)>``
shows as those characters). A failure
while a tab is built or updated is shown in that tab and logged by :func:`log_failure` as one
line; the traceback is logged too only when the server runs with ``--debug``
(:func:`set_debug`).
"""

from __future__ import annotations

import html
import logging
import re

from smcore.errors import InputError

__all__ = ["escape_markdown", "code_span", "describe", "log_failure", "set_debug", "debug_enabled"]

_DEBUG = False

# Characters that start Markdown inline syntax (markdown-it: code, emphasis, links and
# images, table cells, strikethrough, maths); a backslash before any of them shows it as
# itself. ``<``, ``>`` and ``&`` are escaped as HTML. Block syntax (``#``, ``-``, ``>`` at the
# start of a line) cannot occur: a value is shown on one line, after the dashboard's own text.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]!|~$])")


def escape_markdown(value: object, max_len: int | None = None) -> str:
    """``value`` as text that Markdown shows verbatim, on one line.

    HTML is escaped (``<`` → ``&lt;``), every character that starts Markdown inline syntax
    gets a backslash and line breaks become spaces (a value may sit in a table cell, and must
    not start a line). ``max_len`` shortens long
    values (an ellipsis marks the cut). Never put the result inside backticks: a code span
    shows the backslashes.
    """
    text = " ".join(str(value).split())
    if max_len is not None and len(text) > max_len:
        text = text[: max_len - 1] + "…"
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def code_span(value: object) -> str:
    """``value`` as a Markdown code span, on one line: shown verbatim, HTML included.

    The fence is longer than any run of backticks in the value, so the value cannot end the
    span (CommonMark); Markdown escapes the span's content as HTML text.
    """
    text = " ".join(str(value).split())
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if not text or text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def describe(exc: BaseException) -> str:
    """One line saying what went wrong.

    An :class:`InputError`'s message (file: problem), or the exception's type and the first
    line of its message.
    """
    if isinstance(exc, InputError):
        return " ".join(str(exc).split())
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def set_debug(on: bool = True) -> None:
    """Log the tracebacks of contained failures too (``smcore serve --debug``)."""
    global _DEBUG
    _DEBUG = bool(on)


def debug_enabled() -> bool:
    """Whether contained failures are logged with their tracebacks."""
    return _DEBUG


def log_failure(log: logging.Logger, what: str, exc: BaseException) -> None:
    """Log a contained failure: one warning line, with the traceback only under ``--debug``."""
    if _DEBUG:
        log.error("%s: %s", what, describe(exc), exc_info=exc)
    else:
        log.warning("%s: %s (serve with --debug for the traceback)", what, describe(exc))
