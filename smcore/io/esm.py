"""intake-esm catalogs (ESM collections) of CMIP6 Zarr stores or NetCDF files as input.

An ESM collection (https://github.com/NCAR/esm-collection-spec) is a JSON file that names
a CSV table (``catalog_file``, relative to the JSON or absolute) with one row per asset:
the dataset's identity in columns and the asset's location in the ``assets.column_name``
column (``zstore`` in the Pangeo CMIP6 catalogue, ``path`` in most local ones), its format
in ``assets.format`` (``zarr`` or ``netcdf``) or per row in ``assets.format_column_name``.
The Pangeo CMIP6 layout has one Zarr store per dataset and the columns ``activity_id,
institution_id, source_id, experiment_id, member_id, table_id, variable_id, grid_label,
zstore, dcpp_init_year, version``.

The JSON and CSV are parsed by intake-esm itself (:class:`intake_esm.esm_datastore`); each
asset is then inspected like a file of a DRS tree (:func:`smcore.io.cmip6.inspect_file`):
the catalog row gives the identity and version, the store's or file's attributes are
checked against it, and calendars, units, gaps, overlaps and unreadable assets become the
same :class:`~smcore.io.cmip6.Problem` lines, each naming the asset. Only local assets are
read: relative asset paths are taken relative to the folder of the JSON file, absolute ones
(or ``file://`` URIs) as they are, and, when missing there, below the JSON's folder (a
catalog moved with its stores); remote ones (``gs://``, ``s3://``, ``https://``) are
reported as unreadable (copy them first).
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smcore.errors import InputError
from smcore.io.cmip6 import IDENTITY, CMIP6File, Problem, frequency_of, inspect_file
from smcore.progress import StepBar

__all__ = [
    "PANGEO_COLUMNS",
    "CatalogAsset",
    "is_catalog",
    "read_catalog",
    "catalog_files",
    "catalog_inputs",
    "write_catalog",
    "zarr_v2",
]

PANGEO_COLUMNS = (
    "activity_id",
    "institution_id",
    "source_id",
    "experiment_id",
    "member_id",
    "table_id",
    "variable_id",
    "grid_label",
    "zstore",
    "dcpp_init_year",
    "version",
)
"""Columns of the Pangeo CMIP6 catalogue's CSV, in its order."""

FORMATS = ("zarr", "netcdf")
"""Asset formats smcore reads."""

_REMOTE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


@dataclass(frozen=True)
class CatalogAsset:
    """One row of a catalog: where the asset is, its format, identity and version."""

    location: str
    path: Path
    format: str
    identity: dict[str, str | None]
    version: str | None
    row: int
    """Line of the row in the CSV (the header is line 1)."""
    problem: str | None = None
    """Why the asset cannot be read at all (remote, unknown format, no location)."""


def is_catalog(path: str | Path) -> bool:
    """Whether ``path`` is an ESM-collection JSON file (rather than a folder of files)."""
    p = Path(path)
    return p.suffix.lower() == ".json" and p.is_file()


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _open(path: Path) -> Any:
    """The intake-esm datastore of ``path``; one-line :class:`InputError` on any problem."""
    try:
        json.loads(path.read_text())
    except OSError as exc:
        raise InputError(path, f"unreadable catalog: {_short(exc)}") from exc
    except ValueError as exc:
        raise InputError(path, f"not a JSON file: {_short(exc)}") from exc
    try:
        import pydantic
        from intake_esm import esm_datastore
    except ImportError as exc:  # pragma: no cover - a dependency of smcore
        raise InputError(path, f"reading intake-esm catalogs needs intake-esm ({exc})") from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return esm_datastore(str(path))
    except FileNotFoundError as exc:
        missing = exc.filename or _short(exc)
        raise InputError(path, f"the catalog's CSV file is missing: {missing}") from exc
    except pydantic.ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ())) or "?"
        raise InputError(
            path, f"not an ESM collection: {where}: {first.get('msg', _short(exc))}"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - anything intake-esm refuses is a bad catalog
        raise InputError(path, f"unreadable intake-esm catalog: {_short(exc)}") from exc


def _text(value: Any) -> str | None:
    """A CSV cell as text (``None`` for empty cells)."""
    if value is None:
        return None
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    text = str(value).strip()
    return text or None


def _version(value: Any) -> str | None:
    """A catalog's version cell as a DRS version label: ``20190308`` → ``v20190308``."""
    text = _text(value)
    if text is None:
        return None
    return f"v{text}" if text.isdigit() else text


def _moved(path: Path, base: Path) -> Path:
    """An absolute asset path that does not exist, found again beside the catalog.

    A catalog moved together with its stores (e.g. a demo folder) still names the old
    place: the longest tail of ``path`` that exists below ``base`` (the catalog's folder)
    is taken; ``path`` itself when there is none (it is then reported as missing).
    """
    parts = path.parts[1:]
    for i in range(len(parts) - 1):
        candidate = base.joinpath(*parts[i:])
        if candidate.exists():
            return candidate
    return path


def read_catalog(
    path: str | Path, variable: str | None = None, table_id: str | None = None
) -> tuple[list[CatalogAsset], Path]:
    """The assets of the catalog at ``path`` (rows of other variables/tables left out).

    Returns the assets and the CSV file. Raises :class:`InputError` naming the JSON when it
    is not an ESM collection, its CSV is missing or lacks the assets column.
    """
    path = Path(path)
    cat = _open(path)
    spec = cat.esmcat.assets
    csv = Path(str(cat.esmcat.catalog_file))
    df = cat.df
    column = spec.column_name
    if column not in df.columns:
        raise InputError(csv, f"no column {column!r} (the assets column named in {path.name})")
    fixed = spec.format.value if spec.format is not None else None
    fmt_column = spec.format_column_name
    if fixed is None and (fmt_column is None or fmt_column not in df.columns):
        raise InputError(
            path, f"no asset format: neither assets.format nor a {fmt_column!r} column"
        )
    base = path.resolve().parent
    assets: list[CatalogAsset] = []
    for i, row in enumerate(df.to_dict("records")):
        ident = {k: _text(row.get(k)) for k in IDENTITY}
        if variable is not None and ident["variable_id"] not in (None, variable):
            continue
        if table_id is not None and ident["table_id"] not in (None, table_id):
            continue
        location = _text(row.get(column)) or ""
        fmt = (fixed or _text(row.get(fmt_column)) or "").lower()  # type: ignore[arg-type]
        problem = None
        if location.startswith("file://"):
            location = location[len("file://"):]
        if not location:
            problem = f"row {i + 2} of {csv.name} has no {column}"
            asset_path = csv
        elif _REMOTE.match(location):
            problem = (
                f"{location}: unreadable: a remote asset; smcore reads local files and stores "
                "only (copy it, e.g. with `gsutil -m cp -r`, and point the catalog at the copy)"
            )
            asset_path = Path(location)
        else:
            asset_path = Path(location).expanduser()
            if not asset_path.is_absolute():
                asset_path = Path(os.path.normpath(base / asset_path))
            elif not asset_path.exists():
                asset_path = _moved(asset_path, base)
            if fmt not in FORMATS:
                problem = (
                    f"{asset_path}: unreadable: asset format {fmt or '(none)'!r} "
                    f"(smcore reads {' and '.join(FORMATS)})"
                )
        assets.append(
            CatalogAsset(
                location=location,
                path=asset_path,
                format=fmt,
                identity=ident,
                version=_version(row.get("version")),
                row=i + 2,
                problem=problem,
            )
        )
    return assets, csv


def inspect_asset(asset: CatalogAsset, variable: str | None = None) -> CMIP6File:
    """:func:`~smcore.io.cmip6.inspect_file` of one asset, its identity from the catalog."""
    if asset.problem is not None:
        p = str(asset.path)
        return CMIP6File(
            path=asset.path,
            version=asset.version,
            frequency=frequency_of(asset.identity.get("table_id")),
            problems=(Problem("unreadable", asset.problem, p),),
            format=asset.format or "netcdf",
            **asset.identity,  # type: ignore[arg-type]
        )
    return inspect_file(
        asset.path,
        variable=variable,
        identity=asset.identity,
        version=asset.version,
        format=asset.format,
        said_by="the catalog",
    )


def catalog_files(
    path: str | Path,
    variable: str | None = None,
    table_id: str | None = None,
    progress: bool = False,
) -> list[CMIP6File]:
    """Every (selected) asset of a catalog, inspected; see :func:`smcore.io.catalog.scan`."""
    assets, _csv = read_catalog(path, variable, table_id)
    files: list[CMIP6File] = []
    for asset in StepBar(assets, desc="reading headers", unit="asset", disable=not progress,
                         leave=False):
        f = inspect_asset(asset, variable=variable)
        if f.readable:  # identity columns left empty: the attributes decide, as for files
            if variable is not None and f.variable_id not in (None, variable):
                continue
            if table_id is not None and f.table_id not in (None, table_id):
                continue
        files.append(f)
    return files


def catalog_inputs(path: str | Path, variable: str | None, table_id: str | None) -> list[Path]:
    """The files a catalog's content depends on: its JSON, its CSV, every file of its assets.

    A Zarr store contributes every file below it (metadata and chunks), so that a changed
    store changes the fingerprint of ``smcore prepare`` (:mod:`smcore.prep.manifest`).
    """
    path = Path(path)
    assets, csv = read_catalog(path, variable, table_id)
    out = [path, csv]
    for a in assets:
        if a.problem is not None or not a.path.exists():
            continue
        if a.path.is_dir():
            out.extend(sorted(p for p in a.path.rglob("*") if p.is_file()))
        else:
            out.append(a.path)
    return out


def write_catalog(
    json_path: str | Path,
    rows: Iterable[Mapping[str, Any]],
    *,
    asset_column: str = "zstore",
    format: str = "zarr",
    columns: Sequence[str] = PANGEO_COLUMNS,
    description: str = "CMIP6 data",
) -> Path:
    """Write an ESM collection: ``json_path`` and its CSV beside it (``<stem>.csv``).

    ``rows`` hold ``columns`` (missing cells are left empty); the JSON describes the Pangeo
    CMIP6 layout (aggregation over ``variable_id``, ``member_id`` and
    ``dcpp_init_year``), so that ``intake.open_esm_datastore`` opens it as it opens Pangeo's.
    """
    import pandas as pd

    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    csv_path = json_path.with_suffix(".csv")
    cols = list(columns)
    if asset_column not in cols:
        cols.append(asset_column)
    df = pd.DataFrame([{c: r.get(c) for c in cols} for r in rows], columns=cols)
    df.to_csv(csv_path, index=False)
    attributes = [
        {"column_name": c, "vocabulary": ""} for c in cols if c != asset_column
    ]
    groupby = [c for c in ("activity_id", "institution_id", "source_id", "experiment_id",
                           "table_id", "grid_label") if c in cols]
    aggregations: list[dict[str, Any]] = [{"type": "union", "attribute_name": "variable_id"}]
    for c in ("member_id", "dcpp_init_year"):
        if c in cols:
            aggregations.append(
                {"type": "join_new", "attribute_name": c,
                 "options": {"coords": "minimal", "compat": "override"}}
            )
    collection = {
        "esmcat_version": "0.1.0",
        "id": json_path.stem,
        "description": description,
        "catalog_file": csv_path.name,
        "attributes": attributes,
        "assets": {"column_name": asset_column, "format": format},
        "aggregation_control": {
            "variable_column_name": "variable_id",
            "groupby_attrs": groupby,
            "aggregations": aggregations,
        },
    }
    json_path.write_text(json.dumps(collection, indent=2) + "\n")
    return json_path


def zarr_v2() -> dict[str, int]:
    """``to_zarr`` keywords for a Zarr v2 store (Pangeo's format), whatever the zarr-python."""
    import zarr

    return {"zarr_format": 2} if int(zarr.__version__.split(".")[0]) >= 3 else {}
