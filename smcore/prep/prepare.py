"""``smcore prepare`` as a function: from a CMIP6 folder and ERA5-Land files to ``WD/prepared``.

Steps (each one also usable on its own, see :mod:`smcore.prep`):

1. fingerprint the inputs (paths, sizes, mtimes) and the configuration; reuse an
   up-to-date store;
2. catalog the CMIP6 folder, choose experiments, members and channels
   (:func:`~smcore.prep.channels.select_channels`);
3. open the reference and every dataset lazily and check them all (coverage, units,
   grids) before reading any data;
4. compute, one dataset at a time (or one task per dataset and per 5-year reference block
   on a dask cluster, see :mod:`smcore.distributed`): the reference on the target grid, the
   land mask and the training statistics, the models on the coarse grid;
5. write the Zarr store and the manifest atomically.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from smcore import __version__
from smcore.config import Config
from smcore.errors import InputError
from smcore.io.catalog import scan
from smcore.io.cmip6 import key_label, month_range
from smcore.io.era5 import find_era5_files, open_era5
from smcore.prep import geography
from smcore.prep.assemble import fill_with_mean, input_statistics, inputs_dataarray, static_dataset
from smcore.prep.channels import ChannelPlan, resolve_experiments, select_channels
from smcore.prep.inputs import compute_inputs, plan_dataset, to_target_convention
from smcore.prep.manifest import candidate_cmip6_files, file_records, fingerprint, is_up_to_date
from smcore.prep.reference import (
    check_splits,
    compute_reference,
    land_mask,
    reference_on_target,
    training_statistics,
)
from smcore.prep.store import PreparedData, open_prepared, write_prepared
from smcore.workdir import WorkDir

__all__ = ["PrepareResult", "prepare", "plan_channels", "land_cells"]


@dataclass
class PrepareResult:
    """What :func:`prepare` did: the opened store, the resolved config and the choices made."""

    data: PreparedData
    config: Config
    reused: bool
    channels: list[str]
    excluded: dict[str, str]
    members: dict[str, str] = field(default_factory=dict)


def plan_channels(
    cfg: Config,
    cmip6: str | Path,
    experiments: Sequence[str] | None = None,
    members: Mapping[str, str] | None = None,
    exclude: Sequence[str] = (),
    progress: bool = False,
) -> tuple[ChannelPlan, list[str]]:
    """Catalog ``cmip6`` and choose experiments, members and channels (no data read).

    Returns the plan and notes worth printing. Raises :class:`InputError` for
    unidentifiable unreadable files, missing experiments, conflicting members, or when
    no model qualifies.
    """
    datasets = scan(cmip6, variable=cfg.variable, table_id=cfg.table_id, progress=progress)
    for d in datasets:
        if d.source_id is None or d.experiment_id is None:
            first = d.problems[0] if d.problems else None
            raise InputError(
                None if first else cmip6, str(first) if first else "a file could not be identified"
            )
    datasets = [d for d in datasets if d.variable_id == cfg.variable and d.table_id == cfg.table_id]
    if not datasets:
        raise InputError(cmip6, f"no {cfg.variable} {cfg.table_id} files here")
    exps, notes = resolve_experiments(datasets, experiments, cmip6)
    plan = select_channels(datasets, cfg, exps, cmip6, members=members, exclude=exclude)
    notes = notes + plan.notes
    for d in plan.datasets.values():
        notes += [
            f"{d.source_id} {d.experiment_id}: {p}"
            for p in d.problems
            if p.kind in ("identity", "version", "units", "metadata")
        ]
    if not plan.channels:
        raise InputError(
            cmip6,
            f"no model has {cfg.variable} for historical and every requested experiment "
            f"({', '.join(exps)}); " + "; ".join(f"{k}: {v}" for k, v in plan.excluded.items()),
        )
    return plan, notes


def land_cells(
    reference: np.ndarray, china: np.ndarray, land: np.ndarray, keys: np.ndarray
) -> dict[str, Any]:
    """How many target cells inside China became study land, how many were dropped and why.

    ``reference`` is ``(time, lat, lon)`` with months ``keys``. A cell is dropped when its
    reference is missing in some months (``partly_missing``; the first such month is given)
    or in every month (``no_reference``: water, or outside the reference's grid). ``note`` is
    the line printed and kept in the manifest's notes (empty when nothing was dropped).
    """
    inside = np.asarray(china, dtype=bool)
    finite = np.isfinite(reference)
    some = finite.any(axis=0)
    partly = inside & some & ~finite.all(axis=0)
    none = inside & ~some
    first = None
    if partly.any():
        missing_months = (~finite[:, partly]).any(axis=1)
        first = key_label("mon", int(keys[int(np.flatnonzero(missing_months)[0])]))
    out: dict[str, Any] = {
        "inside_china": int(inside.sum()),
        "kept": int(land.sum()),
        "partly_missing": int(partly.sum()),
        "no_reference": int(none.sum()),
        "first_missing_month": first,
    }
    parts = []
    if partly.any():
        parts.append(
            f"{out['partly_missing']} whose reference is missing in some months (first {first})"
        )
    if none.any():
        parts.append(
            f"{out['no_reference']} without reference in any month (water, or outside the "
            "reference grid)"
        )
    out["note"] = (
        f"reference: dropped {out['partly_missing'] + out['no_reference']} of "
        f"{out['inside_china']} cells inside China: " + " and ".join(parts)
        + f"; {out['kept']} land cells kept"
        if parts
        else ""
    )
    return out


def prepare(
    cfg: Config,
    workdir: str | Path | WorkDir,
    *,
    cmip6: str | Path,
    era5: str | Path,
    experiments: Sequence[str] | None = None,
    members: Mapping[str, str] | None = None,
    exclude: Sequence[str] = (),
    force: bool = False,
    progress: bool = True,
    report: Callable[[str], None] = print,
    client: Any = None,
) -> PrepareResult:
    """Prepare the study's arrays in ``workdir/prepared`` (see docs/workdir.md).

    ``cmip6`` is the folder of CMIP6 files, ``era5`` the ERA5-Land files (folder, file or
    glob). ``experiments=None`` prepares historical and every scenario found; ``members``
    overrides configured members (``{source_id: member_id}``); ``exclude`` drops models.
    A rerun with unchanged inputs, configuration and options reuses the store unless
    ``force``. ``client`` (a ``distributed.Client``, see :mod:`smcore.distributed`) runs
    the reading and regridding on its cluster: one task per (model, experiment) dataset
    and one per 5-year block of the reference; the store is identical. Raises
    :class:`InputError`/:class:`~smcore.errors.ConfigError` with a one-line message on
    bad input, before anything is written.
    """
    say = report
    wd = workdir if isinstance(workdir, WorkDir) else WorkDir(workdir)
    wd.sweep()  # temporaries of a killed earlier run
    cmip6 = Path(cmip6)
    era5_files = find_era5_files(era5)
    cmip6_files = candidate_cmip6_files(cmip6, cfg.variable, cfg.table_id)
    if not cmip6_files:
        raise InputError(cmip6, f"no {cfg.variable}_{cfg.table_id} NetCDF files here")
    options = {
        "experiments": None if experiments is None else list(experiments),
        "members": dict(sorted((members or {}).items())),
        "exclude": sorted(exclude),
    }
    fp = fingerprint(file_records(cmip6_files + era5_files), cfg, options)
    if not force and is_up_to_date(wd, fp):
        data = open_prepared(wd)
        say(f"up to date, reusing {wd.prepared}")
        m = data.manifest
        return PrepareResult(
            data=data,
            config=Config.from_dict(m["config"]),
            reused=True,
            channels=list(m["channels"]),
            excluded=dict(m.get("excluded", {})),
            members=dict(m.get("members", {})),
        )

    plan, notes = plan_channels(cfg, cmip6, experiments, members, exclude, progress=progress)
    cfg = cfg.override(experiments=tuple(plan.experiments))
    for note in notes:
        say(note)
    for src, why in plan.excluded.items():
        say(f"excluded {src}: {why}")
    say(f"channels ({len(plan.channels)}): {', '.join(plan.channels)}")

    # open and check everything lazily before reading data
    china, elevation = geography.china_and_elevation(cfg.target)
    ref = open_era5(
        era5_files, cfg.reference_variable, transform=lambda da: to_target_convention(da, cfg)
    )
    check_splits(ref, cfg, era5)
    hist_keys = month_range(*cfg.periods.historical)
    fut_keys = month_range(*cfg.periods.future)
    ref_lazy = reference_on_target(ref, cfg, hist_keys)
    windows = {e: hist_keys if e == "historical" else fut_keys for e in plan.experiments}
    order = [(src, exp) for exp in plan.experiments for src in plan.channels]
    used: set[str] = {str(f) for f in era5_files}
    datasets: list[dict[str, Any]] = []  # provenance: what each channel was read from
    for src, exp in order:
        d = plan.datasets[(src, exp)]
        files, coverage = plan_dataset(d, cfg, windows[exp])
        used.update(str(f.path) for f in files)
        datasets.append(
            {
                "source_id": src,
                "experiment_id": exp,
                "member_id": d.member_id,
                "grid_label": d.grid_label,
                "version": d.version,
                "format": files[0].format if files else None,
                "files": [str(Path(f.path).resolve()) for f in files],
            }
        )
        if coverage < 1.0:
            say(
                f"{src} {exp}: the grid spans {coverage:.0%} of the domain; "
                "the rest gets the model's training mean"
            )

    # compute
    reference = compute_reference(
        ref_lazy, ref, hist_keys, progress=progress, client=client, cfg=cfg
    )
    land = land_mask(reference, china, era5)
    cells = land_cells(reference, china, land, hist_keys)
    if cells["note"]:
        notes.append(cells["note"])
        say(cells["note"])
    reference[:, ~land] = np.nan
    clim, y_mean, y_std = training_statistics(reference, land, hist_keys, cfg.periods.train)
    stacked = compute_inputs(
        {k: plan.datasets[k] for k in order}, cfg, windows, progress=progress, client=client
    )
    x_mean, x_std = input_statistics(stacked["historical"], hist_keys, cfg.periods.train)
    static = static_dataset(
        cfg,
        hist_keys,
        reference,
        land,
        elevation,
        clim,
        (y_mean, y_std),
        (x_mean, x_std),
        plan.channels,
    )
    inputs = {
        exp: inputs_dataarray(
            fill_with_mean(stacked[exp], x_mean), windows[exp], plan.channels, cfg, exp
        )
        for exp in plan.experiments
    }
    manifest = {
        "smcore_version": __version__,
        "config": cfg.to_dict(),
        "channels": plan.channels,
        "members": plan.members,
        "excluded": plan.excluded,
        "inputs": file_records(Path(p) for p in sorted(used)),
        "datasets": datasets,
        "fingerprint": fp,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sources": {"cmip6": str(cmip6.resolve()), "era5": os.path.abspath(str(era5))},
        "land_cells": {k: v for k, v in cells.items() if k != "note"},
        "notes": notes,
    }
    data = write_prepared(wd, static, inputs, manifest)
    say(
        f"prepared {len(plan.channels)} models x {len(plan.experiments)} experiments, "
        f"{int(land.sum())} land cells, in {wd.prepared}"
    )
    return PrepareResult(
        data=data,
        config=cfg,
        reused=False,
        channels=plan.channels,
        excluded=plan.excluded,
        members=plan.members,
    )
