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
    scheduler: str | None = SCHEDULER_OPTION,
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Score CMIP6_DL, the ensemble mean, every model and the baselines on the test months."""
    from smcore.distributed import scheduler as dask_scheduler
    from smcore.evaluation.evaluate import run_evaluation

    cfg = workdir_config(workdir, config)
    with dask_scheduler(scheduler, report=typer.echo) as client:
        run_evaluation(workdir, cfg, truth, use_qdm=not no_qdm, echo=typer.echo, client=client)
