"""`smcore analyse`: SSMI trends, change rates and area fractions of the product (WD/analysis)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from smcore.cli import app
from smcore.cli.common import CONFIG_OPTION, SCHEDULER_OPTION, WORKDIR_OPTION, workdir_config


@app.command("analyse")
def analyse_command(
    workdir: Path = WORKDIR_OPTION,
    truth: Optional[Path] = typer.Option(
        None, "--truth", help="Folder of truth_<experiment>.nc (demo): compare the trend maps with the truth."
    ),
    mk_test: Optional[str] = typer.Option(
        None, "--mk-test",
        help="Mann-Kendall variant per pixel: original, hamed_rao (autocorrelation-corrected "
        "variance, default) or tfpw (trend-free pre-whitening); config analysis.mk_test.",
    ),
    fdr_alpha: Optional[float] = typer.Option(
        None, "--fdr-alpha",
        help="False discovery rate of the Benjamini-Hochberg significance mask of each trend "
        "map (default 0.1); config analysis.fdr_alpha.",
    ),
    no_figures: bool = typer.Option(False, "--no-figures", help="Do not write the PNG figures."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    scheduler: Optional[str] = SCHEDULER_OPTION,
    config: Optional[Path] = CONFIG_OPTION,
) -> None:
    """SSMI trends (Theil-Sen, Mann-Kendall), change rates and area fractions -> WD/analysis."""
    from smcore.analysis.analyse import analyse
    from smcore.distributed import scheduler as dask_scheduler

    cfg = workdir_config(
        workdir, config, **{"analysis.mk_test": mk_test, "analysis.fdr_alpha": fdr_alpha}
    )
    with dask_scheduler(scheduler, report=typer.echo) as client:
        analyse(
            cfg, workdir, truth=truth, progress=not quiet, report=typer.echo,
            figures=not no_figures, client=client,
        )
