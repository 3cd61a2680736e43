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
    shared_weather: float = typer.Option(
        0.0, "--shared-weather", metavar="RHO",
        help="How much month-to-month weather the models share with the truth: 0 (default, "
        "as free-running CMIP6 models) to <1; 0.5 is smcore 0.1's demo.",
    ),
    layout: str = typer.Option(
        "drs", "--layout",
        help="How the models are written: drs (NetCDF files in an ESGF DRS tree, default) or "
        "zarr-catalog (one Zarr store per dataset and an intake-esm catalog, "
        "OUT/cmip6/catalog.json, as the Pangeo CMIP6 catalogue).",
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
    trend errors (shared within model families) and its own weather, which shares nothing
    with the truth's unless --shared-weather says so. OUT/truth holds the truth for
    perfect-model validation; OUT/smcore.toml is the matching configuration.
    """
    from smcore.demo.generate import DemoOptions, generate_demo

    cfg = build_config(config)
    options = DemoOptions(
        seed=seed, small=small, era5_resolution=era5_resolution, shared_weather=shared_weather,
        layout=layout,
    )
    result = generate_demo(out, cfg, options, force=force, progress=not quiet)
    if result.status == "up-to-date":
        typer.echo(f"{result.out} is up to date (seed {seed}); use --force to rewrite it")
        return
    typer.echo(
        f"wrote {result.files} files ({result.bytes / 1e6:.0f} MB) to {result.out} "
        f"in {result.seconds:.0f} s; configuration: {result.out / 'smcore.toml'}"
    )
    if layout == "zarr-catalog":
        typer.echo(f"CMIP6 catalog: {result.out / 'cmip6' / 'catalog.json'} (pass it to --cmip6)")
