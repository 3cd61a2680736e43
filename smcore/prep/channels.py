"""Choose the experiments, the member of each model and the channel set from a catalog.

A model becomes a channel when it is in the configured model list, was not excluded
on request, and has a dataset of the chosen member for ``historical`` and for every
requested experiment. Channels keep the order of ``cfg.models`` (Table 1), so train and
predict always see the same channels in the same order. Every model that is not used
gets a one-line reason; nothing is filled in silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from smcore.config import EXPERIMENTS, Config
from smcore.errors import ConfigError, InputError
from smcore.io.catalog import CMIP6Dataset

__all__ = ["ChannelPlan", "available_experiments", "resolve_experiments", "select_channels"]


@dataclass
class ChannelPlan:
    """The outcome of :func:`select_channels`.

    ``datasets[(source_id, experiment_id)]`` is the dataset used for each channel and
    experiment; ``excluded`` maps every unused model to the reason; ``notes`` are
    remarks worth printing (e.g. a member chosen because the configured one is absent).
    """

    channels: list[str]
    members: dict[str, str]
    excluded: dict[str, str]
    experiments: list[str]
    datasets: dict[tuple[str, str], CMIP6Dataset] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _is_scenario(experiment_id: str) -> bool:
    return experiment_id.startswith(("ssp", "rcp"))


def available_experiments(datasets: Sequence[CMIP6Dataset]) -> list[str]:
    """Experiment_ids present: ``historical`` first, then the study's SSP order, then the rest."""
    present = {d.experiment_id for d in datasets if d.experiment_id}
    order = {e: i for i, e in enumerate(EXPERIMENTS)}
    return sorted(present, key=lambda e: (order.get(e, len(order)), e))


def resolve_experiments(
    datasets: Sequence[CMIP6Dataset], requested: Sequence[str] | None, root: str | Path
) -> tuple[list[str], list[str]]:
    """The experiments to prepare, and notes about experiments that were left out.

    ``requested=None`` means ``historical`` plus every scenario experiment (``ssp*``)
    present. ``historical`` is always required; a requested experiment without any
    file is an error.
    """
    present = available_experiments(datasets)
    notes: list[str] = []
    if requested is None:
        chosen = [e for e in present if e == "historical" or _is_scenario(e)]
        others = [e for e in present if e not in chosen]
        if others:
            notes.append(
                f"ignoring experiments {', '.join(others)} "
                "(not scenarios; name them with --experiments to use them)"
            )
        if "historical" not in chosen:
            chosen.insert(0, "historical")
    else:
        chosen = list(dict.fromkeys(requested))
        if "historical" not in chosen:
            raise ConfigError(
                "--experiments must include historical (the training period comes from it)"
            )
        chosen.remove("historical")
        chosen.insert(0, "historical")
    for e in chosen:
        if e not in present:
            raise InputError(
                root, f"no files of experiment {e} here (found: {', '.join(present) or 'none'})"
            )
    return chosen, notes


def select_channels(
    datasets: Sequence[CMIP6Dataset],
    cfg: Config,
    experiments: Sequence[str],
    root: str | Path,
    members: Mapping[str, str] | None = None,
    exclude: Sequence[str] = (),
) -> ChannelPlan:
    """Pick one member per model and keep the models that have every experiment.

    ``datasets`` should already be restricted to ``cfg.variable``/``cfg.table_id``.
    ``members`` overrides the configured member of some models. Raises
    :class:`InputError` when a model has several members and none is configured
    (conflicting members), or several datasets (grids) for one member and experiment.
    """
    members = dict(members or {})
    unknown = sorted(set(members) - {m.source_id for m in cfg.models})
    if unknown:
        raise ConfigError(f"--member names models that are not configured: {', '.join(unknown)}")
    by_source: dict[str, list[CMIP6Dataset]] = {}
    for d in datasets:
        if d.source_id is not None and d.experiment_id in experiments:
            by_source.setdefault(d.source_id, []).append(d)
    plan = ChannelPlan(channels=[], members={}, excluded={}, experiments=list(experiments))
    configured = {m.source_id for m in cfg.models}
    for source in sorted(set(by_source) - configured):
        plan.excluded[source] = (
            "not in the configured model list (add it to `models` in the config file)"
        )
    for spec in cfg.models:
        src = spec.source_id
        if src in exclude:
            plan.excluded[src] = "excluded on request"
            continue
        found = by_source.get(src, [])
        if not found:
            plan.excluded[src] = f"no {cfg.variable} files of the requested experiments"
            continue
        present = sorted({d.member_id for d in found if d.member_id})
        member = members.get(src, spec.member_id)
        if member not in present:
            if src in members:
                raise InputError(
                    root,
                    f"{src}: member {member} given with --member has no files "
                    f"(found: {', '.join(present)})",
                )
            if len(present) > 1:
                raise InputError(
                    root,
                    f"conflicting members of {src}: {', '.join(present)} "
                    "and none is the configured "
                    f"{spec.member_id}; choose one with --member {src}=MEMBER",
                )
            plan.notes.append(
                f"{src}: using member {present[0]} (configured {spec.member_id} has no files)"
            )
            member = present[0]
        chosen: dict[str, CMIP6Dataset] = {}
        missing: list[str] = []
        for exp in experiments:
            cands = [d for d in found if d.member_id == member and d.experiment_id == exp]
            if not cands:
                missing.append(exp)
                continue
            if len(cands) > 1:
                grids = ", ".join(sorted(str(d.grid_label) for d in cands))
                raise InputError(
                    cands[0].files[0].path.parent if cands[0].files else root,
                    f"conflicting datasets of {src} {exp} {member}: grids {grids}; keep only one",
                )
            chosen[exp] = cands[0]
        if missing:
            plan.excluded[src] = f"no {', '.join(missing)} data for member {member}"
            continue
        plan.channels.append(src)
        plan.members[src] = member
        for exp, d in chosen.items():
            plan.datasets[(src, exp)] = d
    return plan
