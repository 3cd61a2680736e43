"""Options and helpers shared by the command modules."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from smcore.config import Config, load_config, parse_year_range
from smcore.errors import ConfigError

CONFIG_OPTION = typer.Option(
    None, "--config", help="TOML file overriding the study configuration (see README)."
)
WORKDIR_OPTION = typer.Option(..., "--workdir", help="Work directory holding prepared data and products.")
SCHEDULER_OPTION = typer.Option(
    None,
    "--scheduler",
    help="Where the data work runs: threads (default, in-process), local:N (N worker "
    "processes here) or a dask scheduler address like tcp://host:8786 (see docs/scaling.md).",
)
MEMBERS_OPTION = typer.Option(
    None, "--members",
    help="Networks of a deep ensemble (default 1): member k trains with seed + k, and predict "
    "combines their distributions. Each member costs one training.",
)


def split_csv(text: Optional[str]) -> Optional[list[str]]:
    """``"a, b,,c"`` → ``["a", "b", "c"]``; ``None`` stays ``None``."""
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def typed_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """CLI option values as configuration values: ``"Y0-Y1"`` year ranges and comma-separated
    experiment lists parsed, ``None`` (options left unset) dropped."""
    clean: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        if key.startswith("periods.") and isinstance(value, str):
            value = parse_year_range(value)
        if key == "experiments" and isinstance(value, str):
            value = tuple(split_csv(value) or ())
        clean[key] = value
    return clean


def build_config(config_path: Optional[Path], **overrides: Any) -> Config:
    """Load the configuration file (if any), then apply the non-``None`` CLI overrides together."""
    try:
        return load_config(config_path, **typed_overrides(overrides))
    except (KeyError, ValueError) as exc:
        raise ConfigError(str(exc).strip("'\"")) from exc


def workdir_config(workdir: Path, config_path: Optional[Path], **overrides: Any) -> Config:
    """The configuration of a step on an existing work directory (:func:`smcore.workdir.workdir_config`)."""
    from smcore.workdir import workdir_config as recorded

    try:
        overrides = typed_overrides(overrides)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    return recorded(workdir, config_path, **overrides)
