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


def split_csv(text: Optional[str]) -> Optional[list[str]]:
    """``"a, b,,c"`` → ``["a", "b", "c"]``; ``None`` stays ``None``."""
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


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
            value = tuple(split_csv(value) or ())
        clean[key] = value
    try:
        return load_config(config_path, **clean)
    except (KeyError, ValueError) as exc:
        raise ConfigError(str(exc).strip("'\"")) from exc


def workdir_config(workdir: Path, config_path: Optional[Path], **overrides: Any) -> Config:
    """The configuration of a step that runs on an existing work directory.

    The ``--config`` file if given; else the configuration recorded by ``smcore prepare``
    (``prepared/manifest.json``), else the ``smcore_config`` attribute of the historical
    product, else the defaults. Non-``None`` ``overrides`` (dotted keys) apply on top.
    """
    import json

    from smcore.workdir import WorkDir

    if config_path is not None:
        return build_config(config_path, **overrides)
    wd = WorkDir(workdir)
    recorded: dict[str, Any] | None = None
    if wd.manifest.is_file():
        try:
            recorded = json.loads(wd.manifest.read_text()).get("config")
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{wd.manifest}: unreadable manifest: {exc}") from exc
        source: Path = wd.manifest
    if recorded is None and wd.product("historical").is_file():
        import netCDF4

        source = wd.product("historical")
        try:
            with netCDF4.Dataset(source) as nc:
                text = getattr(nc, "smcore_config", None)
            recorded = json.loads(text) if text else None
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{source}: unreadable smcore_config attribute: {exc}") from exc
    if recorded is None:
        return build_config(None, **overrides)
    try:
        base = Config.from_dict(recorded)
        return base.override(**{k: v for k, v in overrides.items() if v is not None})
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: invalid recorded configuration: {exc}") from exc
