"""`smcore serve` and dashboard.server: localhost by default, explicit origins, clear errors."""

from __future__ import annotations

import socket

import panel as pn
import pytest
from _dashboard_factories import make_workdir

from dashboard.server import check_workdir, serve, websocket_origins
from smcore.cli import main
from smcore.errors import ConfigError, InputError


def test_origins_default_to_this_machine():
    assert websocket_origins("127.0.0.1", 5006) == ["127.0.0.1:5006", "localhost:5006"]
    assert websocket_origins("localhost", 80, ["myhost:8443", " "]) == [
        "127.0.0.1:80",
        "localhost:80",
        "myhost:8443",
    ]
    assert websocket_origins("10.0.0.5", 5006) == ["10.0.0.5:5006"]


def test_wildcard_origins_are_refused():
    with pytest.raises(ConfigError, match="wildcards are not allowed"):
        websocket_origins("127.0.0.1", 5006, ["*"])


def test_missing_workdir_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(InputError, match="work directory does not exist"):
        check_workdir(tmp_path / "nope")
    assert main(["serve", "--workdir", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "work directory does not exist" in err[0]


def test_serve_help_documents_the_options(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich folds long option names in narrow terminals
    assert main(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--workdir", "--port", "--address", "--allow-websocket-origin"):
        assert option in out
    assert "127.0.0.1" in out


def test_server_binds_localhost_by_default(tmp_path):
    wd = make_workdir(tmp_path / "w")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = serve(wd.root, port=port, start=False)
    try:
        assert server.address == "127.0.0.1" and server.port == port
        assert {f"127.0.0.1:{port}", f"localhost:{port}"} <= set(server._tornado._websocket_origins)
    finally:
        server.stop()
        pn.state.reset()
