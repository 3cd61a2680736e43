"""Dependencies that security relies on (issue: torch ``weights_only`` bypasses, dask TLS)."""

from __future__ import annotations

from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _requirements() -> dict[str, Requirement]:
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    return {r.name.lower(): r for r in map(Requirement, deps)}


def test_torch_floor_excludes_versions_with_weights_only_bypasses():
    """Checkpoints are read with ``torch.load(weights_only=True)``; torch < 2.10 can be tricked."""
    import torch

    spec = _requirements()["torch"].specifier
    assert not spec.contains("2.9.1") and spec.contains("2.10.0")
    assert Version(torch.__version__.split("+")[0]) >= Version("2.10")


def test_cryptography_for_the_tls_of_local_clusters():
    """``--scheduler local:N`` makes a temporary TLS certificate (``Security.temporary``)."""
    import cryptography  # noqa: F401 - installed, as the dependency says

    assert "cryptography" in _requirements()
