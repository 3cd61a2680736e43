"""Paths of everything smcore reads and writes inside a work directory.

The layout is the contract between the pipeline steps and the dashboard;
see ``docs/workdir.md`` for the content of each file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["WorkDir"]


@dataclass(frozen=True)
class WorkDir:
    """A work directory ``root`` and the fixed locations of its artifacts."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root).expanduser().resolve())

    # prepare
    @property
    def prepared(self) -> Path:
        return self.root / "prepared"

    @property
    def prepared_store(self) -> Path:
        """Zarr store of the prepared arrays (static fields, reference, coarse inputs)."""
        return self.prepared / "data.zarr"

    @property
    def manifest(self) -> Path:
        return self.prepared / "manifest.json"

    # train
    @property
    def training(self) -> Path:
        return self.root / "training"

    @property
    def checkpoint_best(self) -> Path:
        return self.training / "best.pt"

    @property
    def checkpoint_last(self) -> Path:
        return self.training / "last.pt"

    @property
    def history(self) -> Path:
        return self.training / "history.csv"

    # predict
    @property
    def product_dir(self) -> Path:
        return self.root / "product"

    def product(self, experiment: str) -> Path:
        """The merged 0.25° product of one experiment: ``CMIP6_DL_<experiment>.nc``."""
        return self.product_dir / f"CMIP6_DL_{experiment}.nc"

    # evaluate
    @property
    def evaluation(self) -> Path:
        return self.root / "evaluation"

    # analyse
    @property
    def analysis(self) -> Path:
        return self.root / "analysis"
