"""`smcore export`: the merged product of a lon/lat box, CF-1.8, with its full provenance."""

from __future__ import annotations

from pathlib import Path

import typer

from smcore.cli import app
from smcore.cli.common import WORKDIR_OPTION, split_csv
from smcore.config import parse_year_range
from smcore.errors import ConfigError


@app.command("export")
def export_command(
    workdir: Path = WORKDIR_OPTION,
    bbox: str = typer.Option(
        ..., "--bbox", metavar="LON0,LON1,LAT0,LAT1",
        help="The box in degrees east/north, e.g. 100,110,30,36: every 0.25° cell overlapping it.",
    ),
    out: Path = typer.Option(  # noqa: B008 - typer's idiom
        ..., "--out", help="The NetCDF file (or, with --format zarr, the Zarr store) to write."
    ),
    experiments: str | None = typer.Option(
        None, "--experiments",
        help="Comma-separated experiments (default: every prepared one with a product).",
    ),
    period: str | None = typer.Option(
        None, "--period", metavar="Y0-Y1", help="Only these years (default: all)."
    ),
    fmt: str = typer.Option("netcdf", "--format", help="netcdf (default) or zarr."),
) -> None:
    """Write the product (and its trends, where analysed) of a box, with full provenance."""
    from smcore.export import export_region, parse_bbox

    box = parse_bbox(bbox)
    years = None
    if period is not None:
        try:
            years = parse_year_range(period)
        except ValueError as exc:
            raise ConfigError(f"--period: {exc}") from exc
    export_region(
        workdir, box, out, experiments=split_csv(experiments), period=years, format=fmt,
        report=typer.echo,
    )
