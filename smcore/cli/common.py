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


def build_config(config_path: Optional[Path], **overrides: Any) -> Config:
    """Load the configuration file (if any), then apply non-``None`` CLI overrides.

    Year-range overrides may be given as ``"Y0-Y1"`` strings; comma-separated
    experiment lists as strings.
    """
    clean: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        if key.startswith("periods.") and isinstance(value, str):
            value = parse_year_range(value)
        if key == "experiments" and isinstance(value, str):
            value = tuple(v.strip() for v in value.split(",") if v.strip())
        clean[key] = value
    try:
        return load_config(config_path, **clean)
    except (KeyError, ValueError) as exc:
        raise ConfigError(str(exc).strip("'\"")) from exc
