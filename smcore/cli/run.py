"""`smcore run`: prepare → train → predict → evaluate → analyse, each step skipped when up to date."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from smcore.cli import app
from smcore.cli.common import (
    CONFIG_OPTION,
    MEMBERS_OPTION,
    SCHEDULER_OPTION,
    WORKDIR_OPTION,
    build_config,
    split_csv,
)
from smcore.cli.prepare import config_sets_experiments


@app.command("run")
def run_command(
    cmip6: Path = typer.Option(
        ..., "--cmip6",
        help="CMIP6 files: an ESGF DRS tree, a flat folder, or an intake-esm catalog "
        "(catalog.json) of Zarr stores or NetCDF files.",
    ),
    era5: str = typer.Option(..., "--era5", help="ERA5-Land swvl1: a folder, a file or a glob (quote it)."),
    workdir: Path = WORKDIR_OPTION,
    truth: Optional[Path] = typer.Option(
        None, "--truth", help="Folder of truth_<experiment>.nc (demo): perfect-model validation."
    ),
    stations: Optional[Path] = typer.Option(
        None, "--stations",
        help="An ISMN download (folder or .zip): also score every product at its stations.",
    ),
    station_flags: Optional[str] = typer.Option(
        None, "--station-flags",
        help="ISMN quality flags whose values are kept, e.g. G,U,C03 (default G).",
    ),
    experiments: Optional[str] = typer.Option(
        None, "--experiments", help="Comma-separated experiment_ids (default: historical + every SSP found)."
    ),
    train_years: Optional[str] = typer.Option(None, "--train", help="Training years Y0-Y1 (default 1950-1999)."),
    val_years: Optional[str] = typer.Option(None, "--val", help="Validation years Y0-Y1 (default 2000-2007)."),
    test_years: Optional[str] = typer.Option(None, "--test", help="Test years Y0-Y1 (default 2008-2014)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Training epochs (default 100)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Months per step (default 8)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Initial learning rate (default 1e-4)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda | mps (default auto)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (default 123)."),
    members: Optional[int] = MEMBERS_OPTION,
    resume: bool = typer.Option(False, "--resume", help="Continue training from WD/training/last.pt."),
    force: bool = typer.Option(False, "--force", help="Rerun every step even if up to date."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
    scheduler: Optional[str] = SCHEDULER_OPTION,
    config: Optional[Path] = CONFIG_OPTION,
) -> None:
    """Run the whole pipeline on CMIP6 + ERA5-Land files; steps already up to date are skipped."""
    import time

    from smcore.pipeline import run_pipeline

    cfg = build_config(
        config,
        **{
            "periods.train": train_years,
            "periods.val": val_years,
            "periods.test": test_years,
            "train.epochs": epochs,
            "train.batch_size": batch_size,
            "train.lr": lr,
            "train.device": device,
            "train.seed": seed,
            "train.members": members,
        },
    )
    exps = split_csv(experiments)
    if exps is None and config_sets_experiments(config):
        exps = list(cfg.experiments)
    from smcore.evaluation.stations import parse_flags
    from smcore.train.loop import TrainingInterrupted

    flags = parse_flags(station_flags)  # a bad policy fails before any work

    t0 = time.perf_counter()
    try:
        timings = run_pipeline(
            cfg,
            workdir,
            cmip6=cmip6,
            era5=era5,
            truth=truth,
            stations=stations,
            station_flags=flags,
            prepare_options={"experiments": exps},
            force=force,
            resume=resume,
            progress=progress,
            report=typer.echo,
            scheduler=scheduler,
        )
    except TrainingInterrupted as exc:
        typer.echo(f"smcore: {exc}", err=True)
        raise typer.Exit(130) from None
    parts = ", ".join(f"{k} {'skipped' if v is None else f'{v:.0f} s'}" for k, v in timings.items())
    typer.echo(f"done in {time.perf_counter() - t0:.0f} s ({parts}); results in {workdir}")
