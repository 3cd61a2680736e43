"""`smcore train`: fit YNet on the prepared store of a work directory."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from smcore.cli import app
from smcore.cli.common import CONFIG_OPTION, MEMBERS_OPTION, WORKDIR_OPTION, workdir_config
from smcore.errors import ConfigError, SmcoreError
from smcore.workdir import WorkDir


@app.command("train")
def train_command(
    workdir: Path = WORKDIR_OPTION,
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Number of epochs (default 100)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Months per step (default 8; the paper: 1)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Initial Adam learning rate (default 1e-4)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda | mps (default auto)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (default 123)."),
    amp: Optional[str] = typer.Option(
        None, "--amp",
        help="auto | bf16 | off: bf16 mixed precision (auto: on GPUs that have it; on a CPU where it "
        "measured >= 10 % faster than fp32, timed once and cached).",
    ),
    micro_batch: Optional[int] = typer.Option(
        None, "--micro-batch",
        help="Months per forward/backward pass; gradients of a batch's passes add up (0 = auto: the "
        "fastest of 2, 4, 8 on the CPU, measured with the precision; the whole batch on a GPU).",
    ),
    members: Optional[int] = MEMBERS_OPTION,
    resume: bool = typer.Option(False, "--resume", help="Continue from WD/training/last.pt."),
    ddp: bool = typer.Option(
        False, "--ddp",
        help="Data-parallel over the processes of `torchrun --nproc-per-node N` (one per GPU, "
        "or gloo on the CPU); --batch-size is the global batch.",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
    config: Optional[Path] = CONFIG_OPTION,
) -> None:
    """Train YNet (land-only Gaussian NLL or MSE, Adam, plateau LR); write WD/training."""
    from smcore.train.loop import TrainingInterrupted, train

    cfg = workdir_config(
        workdir,
        config,
        **{
            "train.epochs": epochs,
            "train.batch_size": batch_size,
            "train.lr": lr,
            "train.device": device,
            "train.seed": seed,
            "train.amp": amp,
            "train.micro_batch": micro_batch,
            "train.members": members,
        },
    )
    if ddp:
        from smcore.train.ddp import launch_rank, session

        quiet = launch_rank() not in (None, 0)  # rank 0 speaks for all ranks
    else:
        quiet = False
    try:
        if ddp:
            with session(cfg.train) as dist:
                summary = train(cfg, workdir, resume=resume, progress=progress, dist=dist)
        else:
            summary = train(cfg, workdir, resume=resume, progress=progress)
    except TrainingInterrupted as exc:
        if not quiet:
            typer.echo(f"smcore: {exc}", err=True)
        raise typer.Exit(130) from None
    except KeyError as exc:  # pragma: no cover - defensive: a malformed checkpoint
        raise ConfigError(f"incompatible checkpoint: missing {exc}") from exc
    except SmcoreError:
        if quiet:
            raise typer.Exit(2) from None
        raise
    if quiet:
        return
    typer.echo(
        f"trained {summary['epochs_run']} epochs on {summary['device']} ({summary['amp']}) in "
        f"{summary['seconds']:.0f} s; best validation loss {summary['best_val_loss']:.4f} at epoch "
        f"{summary['best_epoch']}; {WorkDir(workdir).training}"
    )
