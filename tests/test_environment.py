"""``environment.yml`` (conda-forge) and ``pyproject.toml`` list the same dependencies."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]

# PyPI name -> conda-forge name, where they differ
CONDA_NAME = {"torch": "pytorch", "netcdf4": "netcdf4"}
# conda packages that are no Python dependency of smcore (the interpreter, pip, the YAML
# parser of this very test)
CONDA_ONLY = {"python", "pip", "pyyaml"}


def _pyproject() -> tuple[dict[str, Requirement], dict[str, Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {Requirement(r).name.lower(): Requirement(r) for r in project["dependencies"]}
    dev = {
        Requirement(r).name.lower(): Requirement(r)
        for r in project["optional-dependencies"]["dev"]
    }
    return runtime, dev


def _conda() -> tuple[dict[str, str], list[str], dict]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    specs: dict[str, str] = {}
    pip: list[str] = []
    for item in env["dependencies"]:
        if isinstance(item, dict):
            pip.extend(item.get("pip", []))
            continue
        m = re.match(r"^([A-Za-z0-9_.\-]+)\s*([^\s]*)", str(item))
        assert m, f"unparsable conda spec {item!r}"
        specs[m.group(1).lower()] = m.group(2)
    return specs, pip, env


def _specifier(conda_version: str) -> SpecifierSet:
    """A conda version spec (``>=1.2``, ``=3.11``, ``1.2.*``, empty) as a pip specifier set."""
    v = conda_version.strip()
    if not v:
        return SpecifierSet()
    if v.startswith("=") and not v.startswith("=="):
        return SpecifierSet(f"=={v[1:]}.*")
    return SpecifierSet(v)


def test_conda_forge_python_311_and_the_checkout_installed_by_pip():
    specs, pip, env = _conda()
    assert env["channels"][0] == "conda-forge"
    assert specs["python"] == "=3.11"  # tomllib; the version of the project's CI
    assert "-e .[dev]" in pip
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert SpecifierSet(requires).contains("3.11")


def test_every_dependency_is_in_both_files_with_the_same_bounds():
    runtime, dev = _pyproject()
    specs, _pip, _env = _conda()
    wanted = {**runtime, **dev}
    for name, req in wanted.items():
        conda = CONDA_NAME.get(name, name)
        assert conda in specs, f"{name} (conda-forge: {conda}) missing from environment.yml"
        assert _specifier(specs[conda]) == req.specifier, (
            f"{name}: pyproject says {req.specifier or 'any'}, "
            f"environment.yml says {specs[conda] or 'any'}"
        )
    known = {CONDA_NAME.get(n, n) for n in wanted} | CONDA_ONLY
    extra = sorted(set(specs) - known)
    assert not extra, f"environment.yml lists {extra}, which pyproject.toml does not"


def test_the_cpu_build_of_pytorch():
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"^\s*-\s*pytorch\s*>=[\d.]+\s+\*cpu\*\s*$", text, re.M)
