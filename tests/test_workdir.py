"""The work directory's table of artifacts, its experiments rule and its configuration."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from smcore.config import Config
from smcore.errors import ConfigError, InputError
from smcore.workdir import (
    ARTIFACTS,
    STEPS,
    WorkDir,
    artifact,
    hint_for,
    markdown_table,
    step_of,
    workdir_config,
)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "workdir.md"


def test_docs_hold_the_code_table():
    text = DOCS.read_text()
    block = re.search(r"<!-- artifacts:start -->\n(.*?)\n<!-- artifacts:end -->", text, re.S)
    assert block is not None, "docs/workdir.md lacks the artifacts table markers"
    assert block.group(1).strip() == markdown_table()


def test_every_artifact_is_described_in_its_section_of_the_docs():
    text = DOCS.read_text()
    for a in ARTIFACTS:
        name = a.name.replace("{experiment}", "<experiment>")
        section = text.split(f"## `{a.path.split('/')[0]}/`", 1)
        assert len(section) == 2, f"docs/workdir.md has no section for {a.path.split('/')[0]}/"
        assert name in section[1].split("\n## ", 1)[0], f"{a.path} is not described in its section"


def test_table_is_consistent():
    keys = [a.key for a in ARTIFACTS]
    assert len(keys) == len(set(keys))
    assert {a.step for a in ARTIFACTS} == set(STEPS)
    order = [STEPS.index(a.step) for a in ARTIFACTS]
    assert order == sorted(order)


def test_paths_steps_and_hints(tmp_path):
    wd = WorkDir(tmp_path)
    assert wd.product("ssp126") == tmp_path.resolve() / "product" / "CMIP6_DL_ssp126.nc"
    assert wd.path("metrics") == wd.evaluation / "metrics.csv"
    assert wd.checkpoint_best == wd.path("checkpoint_best")
    assert step_of("product/CMIP6_DL_ssp585.nc") == "predict"
    assert step_of("prepared/data.zarr/inputs/historical") == "prepare"
    assert step_of("analysis/trend_maps_ssp126.png") == "analyse"
    assert step_of("elsewhere.txt") is None
    assert hint_for("evaluation/maps.nc", "/w") == "smcore evaluate --workdir /w"
    assert hint_for("nothing") == "smcore run"
    with pytest.raises(ValueError, match="needs an experiment"):
        artifact("product").relative()
    outputs = wd.outputs("evaluate", ["historical"])
    assert wd.path("metrics") in outputs and wd.path("truth_metrics") not in outputs
    assert wd.outputs("predict", ["historical", "ssp585"]) == [
        wd.product("historical"), wd.product("ssp585")
    ]


def _manifest(wd: WorkDir, experiments: list[str], config: object) -> None:
    wd.prepared.mkdir(parents=True)
    wd.manifest.write_text(json.dumps({"experiments": experiments, "config": config}))


def test_experiments_are_the_prepared_ones_in_study_order(tmp_path):
    wd = WorkDir(tmp_path)
    with pytest.raises(InputError, match="no prepared data here"):
        wd.experiments()
    _manifest(wd, ["ssp585", "historical", "ssp126"], Config().to_dict())
    assert Config().experiments != ("historical", "ssp126", "ssp585")
    assert wd.experiments() == ["historical", "ssp126", "ssp585"]
    assert wd.scenarios() == ["ssp126", "ssp585"]
    assert wd.experiments(["ssp585"]) == ["ssp585"]
    with pytest.raises(InputError, match="ssp245 were not prepared"):
        wd.experiments(["ssp245"])


def test_workdir_config_recorded_defaults_and_errors(tmp_path):
    wd = WorkDir(tmp_path)
    assert workdir_config(wd) == Config()
    _manifest(wd, ["historical"], Config().override(scale=4).to_dict())
    assert workdir_config(wd).scale == 4
    assert workdir_config(wd, **{"train.epochs": 3, "scale": None}).train.epochs == 3
    wd.manifest.write_text(json.dumps({"config": {"nonsense": 1}}))
    with pytest.raises(ConfigError, match=r"manifest.json: invalid recorded configuration"):
        workdir_config(wd)
    wd.manifest.write_text("{not json")
    with pytest.raises(ConfigError, match="manifest.json: unreadable manifest"):
        workdir_config(wd)
