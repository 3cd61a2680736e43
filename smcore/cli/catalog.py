"""`smcore catalog PATH`: the CMIP6 datasets of a DRS tree, flat folder or intake-esm catalog."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from smcore.cli import app
from smcore.io.catalog import CMIP6Dataset, catalog_records, scan


def _print_table(datasets: list[CMIP6Dataset]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(140, Console().width))
    table = Table(show_lines=False, header_style="bold")
    for col in (
        "source_id",
        "experiment",
        "member",
        "table",
        "variable",
        "grid",
        "calendar",
        "start",
        "end",
        "files",
        "problems",
    ):
        table.add_column(
            col, justify="right" if col in ("files", "problems") else "left", no_wrap=True
        )
    for d in datasets:
        table.add_row(
            *(
                str(v) if v is not None else "?"
                for v in (
                    d.source_id,
                    d.experiment_id,
                    d.member_id,
                    d.table_id,
                    d.variable_id,
                    d.grid_label,
                    d.calendar,
                    d.start,
                    d.end,
                    d.n_files,
                )
            ),
            str(len(d.problems)) if d.problems else "",
        )
    console.print(table)
    n_bad = sum(1 for d in datasets if d.problems)
    console.print(
        f"{len(datasets)} datasets, {sum(d.n_files for d in datasets)} files, {n_bad} with problems"
    )
    for d in datasets:
        for p in d.problems:
            console.print(
                f"  {d.source_id or '?'} {d.experiment_id or '?'} {d.member_id or '?'}: {p}",
                markup=False,
                soft_wrap=True,
            )


@app.command("catalog")
def catalog_command(
    path: Path = typer.Argument(
        ...,
        help="A CMIP6 DRS tree, a flat folder of CMIP6 files, one file, or an intake-esm "
        "catalog (JSON) of Zarr stores or NetCDF files.",
    ),
    variable: str | None = typer.Option(
        None, "--variable", help="Only this variable_id, e.g. mrsos (default: all)."
    ),
    table_id: str | None = typer.Option(
        None, "--table", help="Only this table_id, e.g. Lmon (default: all)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print a JSON list of datasets instead of a table."
    ),
) -> None:
    """Group CMIP6 files into datasets; report calendars, spans, gaps, overlaps and bad files."""
    datasets = scan(path, variable=variable, table_id=table_id, progress=True)
    if as_json:
        typer.echo(json.dumps(catalog_records(datasets), indent=2))
    else:
        _print_table(datasets)
