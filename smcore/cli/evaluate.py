"""`smcore evaluate`: score CMIP6_DL and the baselines over the test period (WD/evaluation)."""

from __future__ import annotations

from pathlib import Path

import typer

from smcore.cli import app
from smcore.cli.common import CONFIG_OPTION, SCHEDULER_OPTION, WORKDIR_OPTION, workdir_config


@app.command("evaluate")
def evaluate_command(
    workdir: Path = WORKDIR_OPTION,
    truth: Path | None = typer.Option(  # noqa: B008 - typer's idiom
        None,
        "--truth",
        help="Folder of truth_<experiment>.nc (demo): also score against the truth.",
    ),
    no_qdm: bool = typer.Option(
        False, "--no-qdm", help="Leave out the quantile-delta-mapping baseline."
    ),
    stations: Path | None = typer.Option(  # noqa: B008 - typer's idiom
        None,
        "--stations",
        help="An ISMN download (folder or .zip, Header+values or CEOP files): also score "
        "every product at its stations (evaluation/stations.csv).",
    ),
    station_flags: str | None = typer.Option(
        None,
        "--station-flags",
        help="ISMN quality flags whose values are kept, e.g. G,U,C03 (default G).",
    ),
    scheduler: str | None = SCHEDULER_OPTION,
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Score CMIP6_DL, the ensemble mean, every model and the baselines on the test months."""
    from smcore.distributed import scheduler as dask_scheduler
    from smcore.evaluation.evaluate import evaluate
    from smcore.evaluation.stations import parse_flags

    cfg = workdir_config(workdir, config)
    flags = parse_flags(station_flags)  # a bad policy fails before any work
    with dask_scheduler(scheduler, report=typer.echo) as client:
        evaluate(
            cfg, workdir, truth=truth, report=typer.echo, use_qdm=not no_qdm, client=client,
            stations=stations, station_flags=flags,
        )
