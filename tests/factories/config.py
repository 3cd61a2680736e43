"""The one configuration builder of the tests: a small study on a grid of their choice."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from smcore.config import Config, GridSpec, ModelSpec, Periods, TrainConfig

__all__ = ["study_config"]


def study_config(
    grid: GridSpec,
    *,
    scale: int = 8,
    years: dict[str, Any] | None = None,
    models: Sequence[ModelSpec] | int | None = None,
    experiments: Sequence[str] | None = None,
    train: dict[str, Any] | None = None,
) -> Config:
    """A :class:`Config` for a small study.

    ``grid`` is the target (fine) grid; ``years`` the :class:`Periods` fields to change
    (``{"train": (2000, 2003), ...}``); ``models`` the ModelSpecs, or a number of
    synthetic models ``M0, M1, …`` (default: the study's 25); ``experiments`` the
    experiment_ids (default: the study's five); ``train`` the :class:`TrainConfig` fields
    to change. Everything else is the study's default.
    """
    base = Config()
    if isinstance(models, int):
        models = tuple(ModelSpec(f"M{i}", "TEST") for i in range(models))
    return Config(
        target=grid,
        scale=scale,
        periods=Periods(**(years or {})),
        experiments=tuple(experiments) if experiments is not None else base.experiments,
        models=tuple(models) if models is not None else base.models,
        train=TrainConfig(**(train or {})),
    )
