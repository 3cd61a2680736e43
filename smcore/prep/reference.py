"""The reference (ERA5-Land) on the target grid, the land mask and the training statistics."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from smcore.config import Config
from smcore.distributed import map_tasks
from smcore.errors import InputError
from smcore.io.cmip6 import key_label, key_to_month_start, month_range
from smcore.io.era5 import ReferenceData, open_era5
from smcore.io.units import check_plausible
from smcore.prep.inputs import to_target_convention
from smcore.progress import StepBar
from smcore.regrid import GridError, bilinear_to_grid

__all__ = [
    "check_splits",
    "reference_on_target",
    "compute_reference",
    "reference_block",
    "land_mask",
    "training_statistics",
    "REFERENCE_MIN_WEIGHT",
]

REFERENCE_MIN_WEIGHT = 0.5
"""A target cell gets a reference value when its valid bilinear neighbours weigh at least this."""


def _years_text(years: Sequence[int]) -> str:
    years = sorted(set(int(y) for y in years))
    runs: list[str] = []
    start = prev = years[0]
    for y in years[1:] + [None]:  # type: ignore[list-item]
        if y is not None and y == prev + 1:
            prev = y
            continue
        runs.append(f"{start}" if start == prev else f"{start}-{prev}")
        if y is not None:
            start = prev = y
    return ", ".join(runs)


def check_splits(ref: ReferenceData, cfg: Config, source: str | Path) -> None:
    """Raise :class:`InputError` if a train/val/test year (or a month between) is missing."""
    have = set(int(k) for k in ref.keys)
    span = (
        f"{key_label('mon', int(min(have)))}..{key_label('mon', int(max(have)))}"
        if have
        else "nothing"
    )
    for name in ("train", "val", "test"):
        y0, y1 = getattr(cfg.periods, name)
        missing = [int(k) // 12 for k in month_range(y0, y1) if int(k) not in have]
        if missing:
            raise InputError(
                source,
                f"{name} years {_years_text(missing)} are not in the data (it covers {span})",
            )
    missing = [int(k) for k in month_range(*cfg.periods.historical) if int(k) not in have]
    if missing:
        raise InputError(
            source,
            f"months {key_label('mon', missing[0])}..{key_label('mon', missing[-1])} "
            "between the splits are not in the data",
        )


def reference_on_target(
    ref: ReferenceData, cfg: Config, keys: Sequence[int] | np.ndarray
) -> xr.DataArray:
    """The reference months ``keys`` interpolated to the target grid, lazily: ``(time, lat, lon)``.

    NaN-aware bilinear (see :mod:`smcore.regrid`): 0.25° input on the target nodes is
    copied exactly; 0.1° input is interpolated.
    """
    da = ref.data.sel(time=key_to_month_start(keys))
    try:
        da = to_target_convention(da, cfg)
    except GridError as exc:
        raise InputError(ref.files[0], str(exc)) from exc
    return bilinear_to_grid(da, cfg.target, names=("lat", "lon"), min_weight=REFERENCE_MIN_WEIGHT)


def reference_block(job: tuple[list[Path], Config, np.ndarray]) -> np.ndarray:
    """The target-grid reference of the months ``keys`` read from ``files`` only.

    ``job`` is ``(files, cfg, keys)``: the ERA5-Land files holding those months (already
    checked by :func:`~smcore.io.era5.open_era5` on the whole set), the configuration
    and the monthly keys. Returns ``array(time, lat, lon)`` float32 m3 m-3, the same
    numbers as the corresponding months of :func:`reference_on_target` on all files.
    Used as one task per block of years on a dask worker.
    """
    files, cfg, keys = job
    ref = open_era5(
        files, cfg.reference_variable, transform=lambda da: to_target_convention(da, cfg)
    )
    da = reference_on_target(ref, cfg, keys)
    return _read_block(da, files, cfg.reference_variable)


def _read_block(da: xr.DataArray, files: Sequence[Path], variable: str) -> np.ndarray:
    """``da`` computed; a file whose data cannot be read (e.g. a corrupted chunk) is named."""
    try:
        return np.asarray(da.compute().values, dtype="float32")
    except Exception as exc:  # noqa: BLE001 - find the culprit and name it
        for path in dict.fromkeys(files):
            try:
                with xr.open_dataset(path, cache=False) as ds:
                    ds[variable].load()
            except Exception as bad:  # noqa: BLE001
                text = str(bad).strip().splitlines()[0][:200] if str(bad).strip() else type(
                    bad
                ).__name__
                raise InputError(path, f"unreadable data: {text}") from exc
        raise


def compute_reference(
    da: xr.DataArray,
    ref: ReferenceData,
    keys: Sequence[int] | np.ndarray,
    progress: bool = False,
    block: int = 60,
    client: Any = None,
    cfg: Config | None = None,
) -> np.ndarray:
    """Compute the lazy target-grid reference ``block`` months at a time (memory stays bounded).

    Without ``client`` the blocks are computed here one after another. With a
    ``distributed.Client`` (and ``cfg``) each block is one task that opens only the
    files of its years (:func:`reference_block`); the numbers are identical. Returns
    ``array(time, lat, lon)`` float32. Raises :class:`InputError` naming the file when its
    data cannot be read (e.g. a corrupted chunk behind an intact header), a month has no
    valid value over the domain, or the values are not those of a volume fraction
    (:func:`smcore.io.units.check_plausible`).
    """
    keys = np.asarray(keys)
    out = np.empty(da.shape, dtype="float32")
    starts = list(range(0, da.sizes["time"], block))
    if client is None:
        blocks: Any = (
            _read_block(
                da.isel(time=slice(i, i + block)),
                [ref.file_of(int(k)) for k in keys[i : i + block]],
                str(ref.data.name or "swvl1"),
            )
            for i in starts
        )
    else:
        if cfg is None:
            raise ValueError("compute_reference: a client needs cfg")
        jobs = []
        for i in starts:
            kb = keys[i : i + block]
            files = list(dict.fromkeys(ref.file_of(int(k)) for k in kb))
            jobs.append((files, cfg, kb))
        blocks = map_tasks(reference_block, jobs, client)
    bar = StepBar(
        total=da.sizes["time"], desc="regridding reference", unit="month", disable=not progress
    )
    for i, chunk in zip(starts, blocks, strict=True):
        empty = ~np.isfinite(chunk).reshape(chunk.shape[0], -1).any(axis=1)
        if empty.any():
            k = int(keys[i + int(np.flatnonzero(empty)[0])])
            raise InputError(ref.file_of(k), f"all NaN over the domain in {key_label('mon', k)}")
        out[i : i + block] = chunk
        bar.update(chunk.shape[0])
    bar.close()
    check_plausible(
        out,
        source=ref.files[0],
        units=ref.data.attrs.get("source_units"),
        what=f"reference {ref.data.name or ''}".strip(),
        locate=lambda t: ref.file_of(int(keys[t])),
    )
    return out


def land_mask(
    reference: np.ndarray, china: np.ndarray, source: str | Path | None = None
) -> np.ndarray:
    """Study land: reference finite in every month and inside China; ``bool(lat, lon)``."""
    mask = np.isfinite(reference).all(axis=0) & np.asarray(china, dtype=bool)
    if not mask.any():
        raise InputError(source, "no target cell inside China has reference data in every month")
    return mask


def training_statistics(
    reference: np.ndarray,
    mask: np.ndarray,
    keys: Sequence[int] | np.ndarray,
    train: tuple[int, int],
) -> tuple[np.ndarray, float, float]:
    """Monthly climatology ``(12, lat, lon)`` and mean/std of the reference over training land.

    ``reference`` is ``(time, lat, lon)`` m3 m-3 with months ``keys``; only training years
    enter. Cells outside ``mask`` are NaN in the climatology.
    """
    keys = np.asarray(keys)
    years, months = keys // 12, keys % 12 + 1
    tr = (years >= train[0]) & (years <= train[1])
    if not tr.any():
        raise InputError(None, f"no training month in the reference ({train[0]}-{train[1]})")
    clim = np.full((12,) + reference.shape[1:], np.nan, dtype="float32")
    for m in range(1, 13):
        sel = np.flatnonzero(tr & (months == m))
        if sel.size:
            clim[m - 1] = np.mean(reference[sel], axis=0, dtype="float64")
    clim[:, ~mask] = np.nan
    values = reference[np.flatnonzero(tr)][:, mask]
    return clim, float(values.mean(dtype="float64")), float(values.std(dtype="float64"))
