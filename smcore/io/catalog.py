"""Scan a DRS tree or a flat folder of CMIP6 files and group them into datasets.

A dataset is the set of files sharing (source_id, experiment_id, member_id, table_id,
variable_id, grid_label). When a DRS tree holds several versions of one dataset, the
newest version is used and the older ones are reported. The scan reads only headers
and time axes, and never fails on a bad file: the file is reported as a problem of its
dataset (or of an "unidentified" entry when even its name says nothing).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from smcore.errors import InputError
from smcore.io.cmip6 import IDENTITY, CMIP6File, Problem, inspect_file, key_label, parse_filename
from smcore.io.units import CMIP6_STANDARD_UNITS, parse_units
from smcore.progress import StepBar

__all__ = ["CMIP6Dataset", "find_netcdf", "scan", "group_files", "catalog_records", "RECORD_KEYS"]

RECORD_KEYS = (
    "source_id",
    "experiment_id",
    "member_id",
    "table_id",
    "variable_id",
    "grid_label",
    "calendar",
    "start",
    "end",
    "n_files",
    "problems",
)
"""Keys of each object printed by ``smcore catalog --json``."""

BLOCKING = frozenset(
    {"unreadable", "variable", "time", "calendar", "gap", "overlap", "duplicate", "identity"}
)
"""Problem kinds that make a dataset unusable for ``smcore prepare``."""


@dataclass
class CMIP6Dataset:
    """One CMIP6 dataset: its identity, its (usable) files in time order and its problems."""

    source_id: str | None
    experiment_id: str | None
    member_id: str | None
    table_id: str | None
    variable_id: str | None
    grid_label: str | None
    frequency: str = "mon"
    calendar: str | None = None
    version: str | None = None
    institution_id: str | None = None
    files: list[CMIP6File] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    n_files: int = 0
    """Files of the dataset (of its newest version), usable or not."""

    @property
    def keys(self) -> np.ndarray:
        """All time keys of all files (sorted, duplicates kept)."""
        if not self.files:
            return np.zeros(0, dtype=np.int64)
        return np.sort(np.concatenate([np.asarray(f.keys, dtype=np.int64) for f in self.files]))

    @property
    def start(self) -> str | None:
        """First month, ``YYYY-MM`` (``None`` without time steps)."""
        k = self.keys
        return _month_label(self.frequency, int(k[0]), self.calendar) if k.size else None

    @property
    def end(self) -> str | None:
        """Last month, ``YYYY-MM`` (``None`` without time steps)."""
        k = self.keys
        return _month_label(self.frequency, int(k[-1]), self.calendar) if k.size else None

    def blocking(self) -> list[Problem]:
        """Problems that make this dataset unusable."""
        return [p for p in self.problems if p.kind in BLOCKING]

    def record(self) -> dict[str, Any]:
        """The ``--json`` object of this dataset (exactly :data:`RECORD_KEYS`)."""
        return {
            "source_id": self.source_id,
            "experiment_id": self.experiment_id,
            "member_id": self.member_id,
            "table_id": self.table_id,
            "variable_id": self.variable_id,
            "grid_label": self.grid_label,
            "calendar": self.calendar,
            "start": self.start,
            "end": self.end,
            "n_files": self.n_files,
            "problems": [str(p) for p in self.problems],
        }


def _month_label(freq: str, key: int, calendar: str | None) -> str:
    """``YYYY-MM`` of a time key of any frequency."""
    if freq == "mon":
        return key_label("mon", key)
    if freq == "yr":
        return f"{key:04d}-01"
    return key_label(freq, key, calendar or "standard")[:7]


def find_netcdf(root: str | Path) -> list[Path]:
    """All ``*.nc``/``*.nc4`` files below ``root`` (or ``root`` itself), sorted."""
    root = Path(root)
    if not root.exists():
        raise InputError(root, "no such file or folder")
    if root.is_file():
        return [root]
    return sorted(
        p
        for p in root.rglob("*")
        if p.suffix in (".nc", ".nc4") and p.is_file() and not p.name.startswith(".")
    )


def scan(
    root: str | Path,
    variable: str | None = None,
    table_id: str | None = None,
    progress: bool = False,
) -> list[CMIP6Dataset]:
    """Scan ``root`` for CMIP6 files and return their datasets, sorted by identity.

    ``root`` is a DRS tree, a flat folder, one file, or an intake-esm catalog (a JSON
    file, see :mod:`smcore.io.esm`) of Zarr stores or NetCDF files, whose assets are
    diagnosed alike. ``variable``/``table_id`` restrict the scan to files whose name (or
    catalog row; for names that are not DRS names, whose global attributes) match. Raises
    :class:`InputError` only when ``root`` does not exist, holds no NetCDF file or is not
    a readable catalog.
    """
    from smcore.io.esm import catalog_files, is_catalog

    if is_catalog(root):
        return group_files(catalog_files(root, variable, table_id, progress=progress))
    paths = find_netcdf(root)
    if not paths:
        raise InputError(root, "no NetCDF (*.nc) files here")
    candidates: list[Path] = []
    for p in paths:
        name = parse_filename(p)
        if name is not None:
            if variable is not None and name.variable_id != variable:
                continue
            if table_id is not None and name.table_id != table_id:
                continue
        candidates.append(p)
    files: list[CMIP6File] = []
    for p in StepBar(
        candidates, desc="reading headers", unit="file", disable=not progress, leave=False
    ):
        f = inspect_file(p, variable=variable)
        if parse_filename(p) is None and f.readable:
            # a non-DRS name: filter on what the attributes say
            if variable is not None and f.variable_id not in (None, variable):
                continue
            if table_id is not None and f.table_id not in (None, table_id):
                continue
        files.append(f)
    return group_files(files)


def group_files(files: Iterable[CMIP6File]) -> list[CMIP6Dataset]:
    """Group inspected files into datasets and diagnose each one."""
    by_id: dict[tuple[str | None, ...], list[CMIP6File]] = defaultdict(list)
    for f in files:
        by_id[f.identity].append(f)
    datasets = [_diagnose(ident, fs) for ident, fs in by_id.items()]
    return sorted(datasets, key=lambda d: tuple(getattr(d, k) or "" for k in IDENTITY))


def _diagnose(ident: tuple[str | None, ...], files: list[CMIP6File]) -> CMIP6Dataset:
    fields_ = dict(zip(IDENTITY, ident, strict=True))
    ds = CMIP6Dataset(**fields_)  # type: ignore[arg-type]
    problems: list[Problem] = []
    # newest DRS version wins; older ones are reported, not mixed in
    versions = sorted({f.version for f in files if f.version is not None})
    if len(versions) > 1:
        newest = versions[-1]
        old = [f for f in files if f.version is not None and f.version != newest]
        problems.append(
            Problem(
                "version",
                f"{len(old)} file(s) of older version(s) {', '.join(versions[:-1])} ignored; "
                f"using {newest}",
                str(old[0].path),
            )
        )
        files = [f for f in files if f.version in (None, newest)]
        ds.version = newest
    elif versions:
        ds.version = versions[0]
    ds.n_files = len(files)
    usable: list[CMIP6File] = []
    for f in files:
        problems.extend(f.problems)
        if f.readable and not any(p.kind in ("variable", "time", "calendar") for p in f.problems):
            usable.append(f)
    usable.sort(key=lambda f: (f.first_key if f.first_key is not None else -1, str(f.path)))
    ds.files = usable
    ds.frequency = next((f.frequency for f in files), "mon")
    ds.institution_id = next((f.institution_id for f in usable if f.institution_id), None)
    calendars = sorted({f.calendar for f in usable if f.calendar})
    ds.calendar = calendars[0] if calendars else None
    if len(calendars) > 1:
        problems.append(
            Problem(
                "calendar",
                f"files use different calendars: {', '.join(calendars)}",
                str(usable[0].path),
            )
        )
    problems.extend(_unit_problems(ds, usable))
    if ds.frequency != "fx":
        problems.extend(time_problems(usable, ds.frequency, ds.calendar or "standard"))
    ds.problems = problems
    if ds.start is None and not any(p.kind in _EXPLAIN_NO_PERIOD for p in problems):
        ds.problems.append(_no_period(ds, files))
    return ds


_EXPLAIN_NO_PERIOD = frozenset({"unreadable", "variable", "time", "calendar", "period"})
"""Problem kinds that say why a dataset has no time period."""


def _no_period(ds: CMIP6Dataset, files: Sequence[CMIP6File]) -> Problem:
    """Why a dataset has no period (a dataset is never listed without one and no reason)."""
    path = str(files[0].path) if files else None
    if ds.frequency == "fx":
        return Problem("period", f"{path}: a fixed field (fx): no time axis, no period", path)
    return Problem("time", f"{path}: no time steps", path)


def _unit_problems(ds: CMIP6Dataset, files: Sequence[CMIP6File]) -> list[Problem]:
    out: list[Problem] = []
    missing = [f for f in files if f.units is None]
    if missing:
        out.append(
            Problem(
                "units",
                f"{missing[0].path}: {ds.variable_id} has no units attribute",
                str(missing[0].path),
            )
        )
    spellings = sorted({f.units for f in files if f.units is not None})
    if len(spellings) > 1 and len({str(parse_units(u)) for u in spellings}) > 1:
        out.append(
            Problem(
                "units",
                f"files disagree on units: {', '.join(repr(u) for u in spellings)}",
                str(files[0].path),
            )
        )
    expected = CMIP6_STANDARD_UNITS.get(ds.variable_id or "")
    if expected is not None:
        for u in spellings:
            parsed = parse_units(u)
            if parsed is None or parsed != parse_units(expected):
                f = next(f for f in files if f.units == u)
                out.append(
                    Problem(
                        "units",
                        f"{f.path}: units {u!r} where CMIP6 prescribes {expected!r}",
                        str(f.path),
                    )
                )
    return out


def time_problems(
    files: Sequence[CMIP6File], freq: str, calendar: str = "standard"
) -> list[Problem]:
    """Duplicate time steps inside a file, overlapping files, and gaps between them.

    Keys are consecutive integers for ``mon``/``yr``/``day``; sub-daily data use the most
    common step.
    """
    out: list[Problem] = []
    for f in files:
        k = np.asarray(f.keys, dtype=np.int64)
        uniq, counts = np.unique(k, return_counts=True)
        dup = uniq[counts > 1]
        if dup.size:
            shown = ", ".join(key_label(freq, int(x), calendar) for x in dup[:3])
            more = f" and {dup.size - 3} more" if dup.size > 3 else ""
            out.append(
                Problem("duplicate", f"{f.path}: duplicate time steps {shown}{more}", str(f.path))
            )
        if k.size > 1 and np.any(np.diff(k) < 0):
            out.append(
                Problem("time", f"{f.path}: time steps are not in increasing order", str(f.path))
            )
    ordered = [f for f in files if f.keys]
    for a, b in zip(ordered, ordered[1:], strict=False):
        if b.first_key <= a.last_key:  # type: ignore[operator]
            lo, hi = b.first_key, min(a.last_key, b.last_key)  # type: ignore[type-var]
            out.append(
                Problem(
                    "overlap",
                    f"{b.path} overlaps {a.path.name} "
                    f"({key_label(freq, lo, calendar)}..{key_label(freq, hi, calendar)})",  # type: ignore[arg-type]
                    str(b.path),
                )
            )
    all_keys = (
        np.unique(np.concatenate([np.asarray(f.keys, dtype=np.int64) for f in ordered]))
        if ordered
        else np.zeros(0, np.int64)
    )
    if all_keys.size > 1:
        diffs = np.diff(all_keys)
        step = 1
        if freq == "subhr":
            vals, counts = np.unique(diffs, return_counts=True)
            step = int(vals[np.argmax(counts)])
        for i in np.flatnonzero(diffs > step):
            before, after = int(all_keys[i]), int(all_keys[i + 1])
            n_missing = (after - before) // step - 1
            path = next((f.path for f in ordered if f.first_key == after), ordered[0].path)
            out.append(
                Problem(
                    "gap",
                    f"gap: {n_missing} time step(s) missing between "
                    f"{key_label(freq, before, calendar)} and {key_label(freq, after, calendar)} "
                    f"(before {Path(path).name})",
                    str(path),
                )
            )
    return out


def catalog_records(datasets: Sequence[CMIP6Dataset]) -> list[dict[str, Any]]:
    """The ``smcore catalog --json`` list."""
    return [d.record() for d in datasets]
