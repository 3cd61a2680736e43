"""`smcore analyse`: SSMI trends, change rates and area fractions of the product (WD/analysis)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from smcore.cli import app
from smcore.cli.common import CONFIG_OPTION, SCHEDULER_OPTION, WORKDIR_OPTION, workdir_config
from smcore.workdir import WorkDir


@app.command("analyse")
def analyse_command(
    workdir: Path = WORKDIR_OPTION,
    truth: Optional[Path] = typer.Option(
        None, "--truth", help="Folder of truth_<experiment>.nc (demo): compare the trend maps with the truth."
    ),
    no_figures: bool = typer.Option(False, "--no-figures", help="Do not write the PNG figures."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    scheduler: Optional[str] = SCHEDULER_OPTION,
    config: Optional[Path] = CONFIG_OPTION,
) -> None:
    """SSMI trends (Theil-Sen, Mann-Kendall), change rates and area fractions -> WD/analysis."""
    from smcore.analysis.analyse import analyse
    from smcore.distributed import scheduler as dask_scheduler

    cfg = workdir_config(workdir, config)
    with dask_scheduler(scheduler, report=typer.echo) as client:
        result = analyse(
            WorkDir(workdir), cfg, truth=truth, progress=not quiet, figures=not no_figures,
            client=client,
        )
    typer.echo(f"wrote {result.trends_path}")
    typer.echo(f"wrote {result.change_rates_path}")
    typer.echo(f"wrote {result.area_fractions_path}")
    for fig in result.figures:
        typer.echo(f"wrote {fig}")
    if result.truth_comparison is not None:
        annual = result.truth_comparison[result.truth_comparison["season"] == "annual"]
        for row in annual.itertuples():
            typer.echo(f"truth: {row.experiment} annual trend spatial r = {row.spatial_r:.3f}")
