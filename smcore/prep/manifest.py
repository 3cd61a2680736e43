"""The prepare manifest: input listing, fingerprint and the "up to date" test."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from smcore.config import Config
from smcore.io.catalog import find_netcdf
from smcore.io.cmip6 import parse_filename
from smcore.workdir import WorkDir

__all__ = ["candidate_cmip6_files", "file_records", "fingerprint", "is_up_to_date"]


def candidate_cmip6_files(root: str | Path, variable: str, table_id: str) -> list[Path]:
    """NetCDF files under ``root`` that may hold ``variable`` of ``table_id``.

    Files with DRS names of other variables or tables are left out; files whose
    names are not DRS names are kept (their attributes decide). For an intake-esm catalog
    (:mod:`smcore.io.esm`): its JSON, its CSV and every file of its selected assets.
    """
    from smcore.io.esm import catalog_inputs, is_catalog

    if is_catalog(root):
        return catalog_inputs(root, variable, table_id)
    out = []
    for p in find_netcdf(root):
        name = parse_filename(p)
        if name is None or (name.variable_id == variable and name.table_id == table_id):
            out.append(p)
    return out


def file_records(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """``[{"path", "size", "mtime"}]`` (absolute path, bytes, seconds since the epoch)."""
    out = []
    for p in paths:
        st = Path(p).stat()
        out.append(
            {"path": str(Path(p).resolve()), "size": st.st_size, "mtime": st.st_mtime_ns / 1e9}
        )
    return out


def fingerprint(
    records: Iterable[Mapping[str, Any]], cfg: Config, options: Mapping[str, Any]
) -> str:
    """SHA-256 of the inputs (paths, sizes, mtimes), the configuration, the options and version."""
    from smcore import __version__

    payload = {
        "version": __version__,
        "config": cfg.to_dict(),
        "options": dict(options),
        "files": sorted((r["path"], r["size"], r["mtime"]) for r in records),
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def is_up_to_date(wd: WorkDir, fp: str) -> bool:
    """True when ``wd`` holds a complete prepared store made from the same fingerprint.

    The store must also be the one the manifest was written with (its ``store`` record: the
    size and modification time of the consolidated metadata).
    """
    if not (wd.manifest.exists() and (wd.prepared_store / ".zmetadata").exists()):
        return False
    try:
        manifest = json.loads(wd.manifest.read_text())
    except (OSError, ValueError):
        return False
    if manifest.get("fingerprint") != fp:
        return False
    recorded = manifest.get("store")
    if recorded is None:
        return True  # a manifest of an older smcore: the fingerprint is all it has
    from smcore.prep.store import store_state

    return bool(recorded == store_state(wd.prepared_store))
