"""The prepared-data store: read and write ``WD/prepared`` (see docs/workdir.md).

The store is a Zarr folder with a root group (static fields, the reference on the
target grid, normalisation statistics) and one group ``inputs/<experiment>`` per
experiment holding the models on the coarse grid, plus a ``manifest.json``.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import xarray as xr

from smcore.errors import InputError
from smcore.io.atomic import atomic_dir, write_json
from smcore.workdir import WorkDir

__all__ = ["PreparedData", "open_prepared", "write_prepared", "split_years", "store_state"]

_PROVENANCE = (
    "Conventions",
    "institution",
    "source",
    "history",
    "references",
    "smcore_version",
    "smcore_config",
)

ROOT_VARS = ("reference", "land_mask", "elevation", "climatology", "x_mean", "x_std", "y_mean", "y_std")


def split_years(attr: str) -> tuple[int, int]:
    """``"1950-1999"`` → ``(1950, 1999)``."""
    a, b = str(attr).split("-")
    return int(a), int(b)


@dataclass
class PreparedData:
    """Lazy view of a prepared store.

    ``static`` is the root dataset (dims time, lat, lon, month, model, clat, clon);
    :meth:`inputs` gives one experiment's coarse model data ``(time, model, clat, clon)``.
    """

    path: Path
    static: xr.Dataset
    manifest: dict[str, Any]
    _inputs: dict[str, xr.DataArray] = field(default_factory=dict, repr=False)

    @property
    def channels(self) -> list[str]:
        """Model source_ids in channel order."""
        return [str(m) for m in self.static["model"].values]

    @property
    def experiments(self) -> list[str]:
        return list(self.manifest.get("experiments", []))

    def inputs(self, experiment: str) -> xr.DataArray:
        """Coarse model inputs of one experiment, m3 m-3, dims (time, model, clat, clon)."""
        if experiment not in self._inputs:
            if experiment not in self.experiments:
                raise InputError(
                    self.path, f"experiment {experiment!r} was not prepared (have: {', '.join(self.experiments)})"
                )
            ds = _open_zarr(self.path, group=f"inputs/{experiment}")
            self._inputs[experiment] = ds["mrsos"]
        return self._inputs[experiment]

    def split(self, name: str) -> tuple[int, int]:
        """Year range of ``train``, ``val`` or ``test`` as stored at prepare time."""
        return split_years(self.static.attrs[name])

    def split_mask(self, name: str, time: xr.DataArray | None = None) -> np.ndarray:
        """Boolean mask over ``time`` (default: the reference months) of one split."""
        y0, y1 = self.split(name)
        t = self.static["time"] if time is None else time
        years = pd.DatetimeIndex(t.values).year
        return np.asarray((years >= y0) & (years <= y1))


def _open_zarr(path: Path, group: str | None = None) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        try:
            return xr.open_zarr(path, group=group, consolidated=None)
        except (FileNotFoundError, KeyError, ValueError) as exc:
            raise InputError(path, f"cannot open prepared store{f' group {group}' if group else ''}: {exc}") from exc


def open_prepared(workdir: str | Path | WorkDir) -> PreparedData:
    """Open the prepared store of a work directory (raises a one-line error if absent)."""
    wd = workdir if isinstance(workdir, WorkDir) else WorkDir(workdir)
    if not wd.manifest.exists() or not wd.prepared_store.exists():
        raise InputError(wd.prepared, "no prepared data here: run `smcore prepare` first")
    manifest = json.loads(wd.manifest.read_text())
    static = _open_zarr(wd.prepared_store)
    missing = [v for v in ROOT_VARS if v not in static.variables]
    if missing:
        raise InputError(wd.prepared_store, f"prepared store lacks {', '.join(missing)}")
    return PreparedData(path=wd.prepared_store, static=static, manifest=manifest)


def write_prepared(
    workdir: str | Path | WorkDir,
    static: xr.Dataset,
    inputs: Mapping[str, xr.DataArray],
    manifest: dict[str, Any],
) -> PreparedData:
    """Write the prepared store and its manifest atomically and return it opened.

    ``static`` must hold :data:`ROOT_VARS`; ``inputs`` maps experiment_id to a
    ``(time, model, clat, clon)`` DataArray. The store is built in a temporary
    folder and swapped in only when complete, so an interrupted prepare leaves
    any previous store untouched. Dask-backed arrays are computed chunk by chunk.
    """
    wd = workdir if isinstance(workdir, WorkDir) else WorkDir(workdir)
    missing = [v for v in ROOT_VARS if v not in static.variables]
    if missing:
        raise ValueError(f"static dataset lacks {', '.join(missing)}")
    manifest = dict(manifest)
    manifest["experiments"] = list(inputs)
    wd.prepared.mkdir(parents=True, exist_ok=True)
    with atomic_dir(wd.prepared_store) as tmp:
        static.to_zarr(tmp, mode="w", consolidated=True, zarr_format=2)
        for exp, da in inputs.items():
            group = da.rename("mrsos").to_dataset()
            group.attrs = {k: static.attrs[k] for k in _PROVENANCE if k in static.attrs}
            group.attrs["title"] = f"smcore prepared inputs ({exp})"
            group.to_zarr(tmp, group=f"inputs/{exp}", mode="w", consolidated=True, zarr_format=2)
        # The store is complete: the old manifest goes just before the swap, so that an
        # interruption until here leaves the previous store and manifest as they were.
        wd.manifest.unlink(missing_ok=True)
    manifest["store"] = store_state(wd.prepared_store)
    write_json(manifest, wd.manifest)
    return open_prepared(wd)


def store_state(store: str | Path) -> dict[str, Any]:
    """Size and modification time of the store's consolidated metadata (``.zmetadata``).

    Recorded in the manifest: a store rewritten or swapped since no longer matches it.
    """
    meta = Path(store) / ".zmetadata"
    try:
        st = meta.stat()
    except FileNotFoundError:
        return {"zmetadata": None}
    return {"zmetadata": [st.st_size, st.st_mtime_ns]}
