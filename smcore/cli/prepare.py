"""`smcore prepare`: CMIP6 + ERA5-Land files → the prepared store in WD/prepared."""

from __future__ import annotations

from pathlib import Path

import tomllib
import typer

from smcore.cli import app
from smcore.cli.common import CONFIG_OPTION, SCHEDULER_OPTION, WORKDIR_OPTION, build_config, split_csv
from smcore.errors import ConfigError


def _members(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        src, sep, member = item.partition("=")
        if not sep or not src.strip() or not member.strip():
            raise ConfigError(
                f"--member {item!r}: expected SOURCE_ID=MEMBER_ID, e.g. UKESM1-0-LL=r1i1p1f2"
            )
        out[src.strip()] = member.strip()
    return out


def config_sets_experiments(path: Path | None) -> bool:
    if path is None:
        return False
    try:
        return "experiments" in tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return False  # build_config reports the unreadable file


@app.command("prepare")
def prepare_command(
    cmip6: Path = typer.Option(
        ..., "--cmip6",
        help="CMIP6 files: an ESGF DRS tree, a flat folder, or an intake-esm catalog "
        "(catalog.json) of Zarr stores or NetCDF files.",
    ),
    era5: str = typer.Option(
        ..., "--era5", help="ERA5-Land swvl1: a folder, a file or a glob (quote it)."
    ),
    workdir: Path = WORKDIR_OPTION,
    experiments: str | None = typer.Option(
        None,
        "--experiments",
        help="Comma-separated experiment_ids, historical included "
        "(default: historical and every SSP found).",
    ),
    train: str | None = typer.Option(
        None, "--train", help="Training years Y0-Y1 (default 1950-1999)."
    ),
    val: str | None = typer.Option(
        None, "--val", help="Validation years Y0-Y1 (default 2000-2007)."
    ),
    test: str | None = typer.Option(None, "--test", help="Test years Y0-Y1 (default 2008-2014)."),
    future: str | None = typer.Option(
        None, "--future", help="Scenario years Y0-Y1 (default 2015-2100)."
    ),
    layer_depth_mm: float | None = typer.Option(
        None,
        "--layer-depth-mm",
        help="Soil layer depth for kg m-2 → m3 m-3 (default 100 mm, mrsos).",
    ),
    member: list[str] | None = typer.Option(
        None, "--member", help="SOURCE_ID=MEMBER_ID: use this member of a model (repeatable)."
    ),
    exclude: str | None = typer.Option(
        None, "--exclude", help="Comma-separated source_ids to leave out."
    ),
    force: bool = typer.Option(
        False, "--force", help="Recompute even if the prepared store is up to date."
    ),
    scheduler: str | None = SCHEDULER_OPTION,
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Regrid models to the coarse grid and ERA5-Land to the target grid; write WD/prepared."""
    from smcore.distributed import scheduler as dask_scheduler
    from smcore.prep.prepare import prepare

    cfg = build_config(
        config,
        **{
            "periods.train": train,
            "periods.val": val,
            "periods.test": test,
            "periods.future": future,
            "layer_depth_mm": layer_depth_mm,
        },
    )
    exps = split_csv(experiments)
    if exps is None and config_sets_experiments(config):
        exps = list(cfg.experiments)
    with dask_scheduler(scheduler, report=typer.echo) as client:
        prepare(
            cfg,
            workdir,
            cmip6=cmip6,
            era5=era5,
            experiments=exps,
            members=_members(member),
            exclude=split_csv(exclude) or [],
            force=force,
            progress=True,
            report=typer.echo,
            client=client,
        )
