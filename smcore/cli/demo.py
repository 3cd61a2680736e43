"""`smcore demo-data OUT`: write the embedded synthetic dataset as real-format files."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from smcore.cli import app
from smcore.cli.common import CONFIG_OPTION, build_config


@app.command("demo-data")
def demo_command(
    out: Path = typer.Argument(
        ..., help="Folder to write (created; replaced only if it holds demo data)."
    ),
    seed: int = typer.Option(
        0, "--seed", help="Random seed: the same seed and options give the same data."
    ),
    small: bool = typer.Option(
        False, "--small",
        help="Reduced set for fast tests: 7 models, 1991-2014 and 2015-2040, two SSPs.",
    ),
    era5_resolution: float = typer.Option(
        0.25, "--era5-resolution",
        help="Grid of the ERA5-Land-like reference: 0.25 (CDS grid option) or 0.1.",
    ),
    config: Optional[Path] = CONFIG_OPTION,
    force: bool = typer.Option(
        False, "--force", help="Rewrite even if OUT is an up-to-date demo folder."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Write synthetic CMIP6 mrsos (ESGF layout), ERA5-Land swvl1 (new CDS) and the truth.

    The synthetic truth is built on China's real geography (land mask, DEM, Tibetan
    Plateau); each model sees it through its own grid with its own biases, seasonal and
    trend errors and its own weather. OUT/truth holds the truth for perfect-model
    validation; OUT/smcore.toml is the matching configuration.
    """
    from smcore.demo.generate import DemoOptions, generate_demo

    cfg = build_config(config)
    options = DemoOptions(seed=seed, small=small, era5_resolution=era5_resolution)
    result = generate_demo(out, cfg, options, force=force, progress=not quiet)
    if result.status == "up-to-date":
        typer.echo(f"{result.out} is up to date (seed {seed}); use --force to rewrite it")
        return
    typer.echo(
        f"wrote {result.files} files ({result.bytes / 1e6:.0f} MB) to {result.out} "
        f"in {result.seconds:.0f} s; configuration: {result.out / 'smcore.toml'}"
    )
