"""Fixtures shared by the test modules.

Builders of inputs live in :mod:`tests.factories` (one module per subject, one configuration
builder); the fixtures here hand out what several modules need, built once:

- ``small_demo``: ``smcore demo-data --small`` (seed 0) written once per session, read-only;
- ``ynet_prepared`` / ``fresh_ynet_workdir``: the tiny prepared store of the training tests and
  work directories that share it;
- ``dashboard_workdir``: a complete synthetic work directory for the dashboard tests (one per
  module, as modules may write into theirs);
- ``fresh_panel``: clears the dashboard's loader caches and Panel's state after a test;
- ``model_walks``: counts Bokeh's collections of a document's models during a test;
- ``load_client``: the load generator's module (``benchmarks/dashboard_load.py``), whose
  :class:`Session` speaks the Bokeh protocol as a browser does;
- (autouse) ``SMCORE_CACHE_DIR`` points to a temporary folder for the whole session.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from smcore.config import Config


@pytest.fixture(scope="session", autouse=True)
def _smcore_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """smcore's cache (the CPU precision probe's timings) in a temporary folder, not the user's."""
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("smcore-cache")
        mp.setenv("SMCORE_CACHE_DIR", str(path))
        yield path


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Config]:
    """The ``--small`` demo (7 models, 1991-2014, ssp126 and ssp585) and its configuration.

    Shared by every module that needs it: do not write into it.
    """
    from smcore.config import load_config
    from smcore.demo.generate import DemoOptions, generate_demo

    out = tmp_path_factory.mktemp("demo") / "small"
    result = generate_demo(out, Config(), DemoOptions(seed=0, small=True), progress=False)
    assert result.status == "written"
    return out, load_config(out / "smcore.toml")


@pytest.fixture(scope="session")
def ynet_prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A work directory holding the tiny prepared store of :mod:`tests.factories.ynet`."""
    from tests.factories.ynet import make_prepared

    root = tmp_path_factory.mktemp("prep") / "wd"
    make_prepared(root)
    return root


@pytest.fixture
def fresh_ynet_workdir(ynet_prepared: Path, tmp_path: Path) -> Callable[[str], Path]:
    """``make(name)``: a new work directory under ``tmp_path`` with a copy of the tiny store."""

    def make(name: str = "wd") -> Path:
        dst = tmp_path / name
        shutil.copytree(ynet_prepared / "prepared", dst / "prepared")
        return dst

    return make


@pytest.fixture(scope="module")
def dashboard_workdir(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - a WorkDir
    """A complete synthetic work directory (:func:`tests.factories.dashboard.make_workdir`)."""
    from tests.factories.dashboard import make_workdir

    return make_workdir(tmp_path_factory.mktemp("dash") / "work")


@pytest.fixture
def fresh_panel() -> Iterator[None]:
    """Forget the dashboard's cached artifacts and Panel's session state after the test."""
    yield
    import panel as pn

    from dashboard import loaders
    from dashboard.live import RENDERS

    loaders.clear_caches()
    RENDERS.clear()  # figures rendered with this test's outlines or files
    pn.state.reset()


@pytest.fixture
def model_walks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """``[n]``: how many times Bokeh collected a document's models (``recompute``) since the
    fixture began; set ``walks[0] = 0`` to count afresh."""
    from bokeh.document.models import DocumentModelManager

    walks = [0]
    recompute = DocumentModelManager.recompute

    def counted(self: DocumentModelManager) -> None:
        walks[0] += 1
        recompute(self)

    monkeypatch.setattr(DocumentModelManager, "recompute", counted)
    return walks


@pytest.fixture(scope="session")
def load_client():  # noqa: ANN201 - a module
    """``benchmarks/dashboard_load.py`` as a module (its protocol client and page)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "dashboard_load.py"
    spec = importlib.util.spec_from_file_location("dashboard_load", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def step_progress(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[list[dict]]]:
    """``run(workdir, step, fn)``: ``fn()`` while ``step`` is marked running in ``workdir``
    (:mod:`smcore.runstate`); returns the progress lists the step's bars wrote to its file,
    in order (every update written: no interval)."""
    from smcore import runstate

    def run(workdir: Path, step: str, fn: Callable[[], object]) -> list[list[dict]]:
        written: list[list[dict]] = []
        write = runstate.write_json

        def spy(obj: dict, path: Path) -> Path:
            if "progress" in obj:
                written.append(obj["progress"])
            return write(obj, path)

        monkeypatch.setattr(runstate, "PROGRESS_INTERVAL_S", 0.0)
        monkeypatch.setattr(runstate, "write_json", spy)
        runstate.mark_running(workdir, step)
        try:
            fn()
        finally:
            runstate.mark_finished(workdir, step)
        assert not runstate.running_path(workdir).exists()
        return written

    return run
