import subprocess
import sys

from smcore.cli import app, main

COMMANDS = ["demo-data", "catalog", "prepare", "train", "predict", "evaluate", "analyse", "run", "serve"]


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for cmd in COMMANDS:
        assert cmd in out


def test_every_command_has_help(capsys):
    for cmd in COMMANDS:
        assert main([cmd, "--help"]) == 0, cmd
        assert "Usage" in capsys.readouterr().out


def test_registered_commands_are_exactly_the_documented_ones():
    names = {c.name for c in app.registered_commands}
    assert set(COMMANDS) <= names


def test_console_script_entry_point_runs():
    res = subprocess.run([sys.executable, "-m", "smcore", "--help"], capture_output=True, text=True)
    assert res.returncode == 0
    assert "prepare" in res.stdout


def test_a_mistyped_command_line_shows_the_usage_and_exits_2(capsys):
    for argv, problem in [
        (["evaluate", "--bogus"], "No such option: --bogus"),
        (["nosuchcommand"], "No such command 'nosuchcommand'"),
        (["evaluate"], "Missing option '--workdir'"),
    ]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert problem in err and "Usage: smcore" in err, err
        assert "--debug" not in err and "Error:" in err  # click's message, not a crash's
