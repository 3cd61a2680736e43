"""`smcore predict`: the merged 0.25° product of every experiment, from the trained YNet."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from smcore.cli import app
from smcore.cli.common import CONFIG_OPTION, WORKDIR_OPTION, split_csv, workdir_config


@app.command("predict")
def predict_command(
    workdir: Path = WORKDIR_OPTION,
    checkpoint: Optional[Path] = typer.Option(
        None, "--checkpoint", help="Checkpoint to use (default WD/training/best.pt)."
    ),
    experiments: Optional[str] = typer.Option(
        None, "--experiments", help="Comma-separated experiment_ids (default: every prepared one)."
    ),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Months per forward pass."),
    device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda | mps (default auto)."),
    amp: Optional[str] = typer.Option(
        None, "--amp", help="auto | bf16 | off (default auto: as measured for training on a CPU)."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
    config: Optional[Path] = CONFIG_OPTION,
) -> None:
    """Write WD/product/CMIP6_DL_<experiment>.nc (ssm, m3 m-3, 0.25°, NaN outside land)."""
    from smcore.train.predict import predict

    cfg = workdir_config(workdir, config, **{"train.device": device, "train.amp": amp})
    exps = split_csv(experiments) or None
    paths = predict(cfg, workdir, checkpoint=checkpoint, experiments=exps, batch_size=batch_size,
                    progress=progress, report=lambda line: typer.echo(line, err=True))
    for p in paths:
        typer.echo(str(p))
