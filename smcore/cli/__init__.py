"""The ``smcore`` command line: one module per command, registered on :data:`app`.

Errors a user can fix (:class:`smcore.errors.SmcoreError`) print as one line and exit
with status 2, as does a mistyped command line (click's usage and error message); unexpected
errors print one line and exit with status 1. ``--debug``
(anywhere on the command line) shows the traceback instead. SIGTERM and SIGINT unwind a
command as an exception (:func:`smcore.errors.signals_as_exceptions`): temporaries are removed,
artifacts already written stay as they were, one line says so and the exit status is 128 + the
signal (143 for SIGTERM, 130 for Ctrl-C).
"""

from __future__ import annotations

import sys
from typing import Sequence

import click
import typer

from smcore.errors import Interrupted, SmcoreError, signals_as_exceptions

# typer >= 0.2x parses the command line with its own copy of click: its errors are not click's
_EXIT = (click.exceptions.Exit, typer.Exit)
_ABORT = (click.exceptions.Abort, typer.Abort)
try:
    from typer._click.exceptions import ClickException as _TyperClickException
except ImportError:  # pragma: no cover - a typer that uses click itself
    _TyperClickException = click.ClickException
_USAGE = (click.ClickException, _TyperClickException)  # click shows it with the usage

app = typer.Typer(
    name="smcore",
    help="Merge and downscale CMIP6 soil moisture with YNet, evaluate, analyse and explore it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    """Merge and downscale CMIP6 soil moisture with YNet, evaluate, analyse and explore it."""


# Command modules register themselves on ``app`` when imported.
from smcore.cli import (  # noqa: E402,F401
    demo,
    catalog,
    prepare,
    train,
    predict,
    evaluate,
    analyse,
    run,
    serve,
    demo_run,
    export,
)


def _interrupted(exc: Interrupted) -> int:
    print(f"smcore: {exc}", file=sys.stderr)
    return exc.exit_code


_DEBUG = False


def debug_requested() -> bool:
    """Whether the running :func:`main` was given ``--debug`` (anywhere on its command line)."""
    return _DEBUG


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``smcore`` console script; returns the exit status."""
    global _DEBUG
    args = list(sys.argv[1:] if argv is None else argv)
    debug = _DEBUG = "--debug" in args
    args = [a for a in args if a != "--debug"]
    try:
        with signals_as_exceptions():
            result = app(args=args, prog_name="smcore", standalone_mode=False)
    except _EXIT as exc:
        return exc.exit_code
    except _ABORT:
        print("smcore: aborted", file=sys.stderr)
        return 130
    except Interrupted as exc:
        return _interrupted(exc)
    except KeyboardInterrupt:
        print("smcore: interrupted", file=sys.stderr)
        return 130
    except _USAGE as exc:
        if debug:
            raise
        exc.show()
        return exc.exit_code
    except SmcoreError as exc:
        if debug:
            raise
        print(f"smcore: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - one line for users, traceback with --debug
        if debug:
            raise
        print(
            f"smcore: error: {type(exc).__name__}: {exc} (rerun with --debug for a traceback)",
            file=sys.stderr,
        )
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
