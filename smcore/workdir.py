"""The work directory: one table of every artifact smcore writes, and where each one lives.

:data:`ARTIFACTS` is the contract between the pipeline steps and the dashboard: for each file,
its path relative to the work directory, the step (``smcore <step>``) that writes it and a
short description. The pipeline's freshness checks (:meth:`WorkDir.outputs`), the dashboard's
loaders and every "run ``smcore X``" hint (:func:`hint_for`) read this table;
``docs/workdir.md`` documents the content of each file (a test keeps the two in step).

:meth:`WorkDir.experiments` is the one rule for which experiments the steps after ``prepare``
work on: the ones that were prepared. :func:`workdir_config` is the configuration a step (or
the dashboard) uses on an existing work directory.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from smcore.config import EXPERIMENTS, Config, load_config
from smcore.errors import ConfigError, InputError

__all__ = [
    "Artifact",
    "ARTIFACTS",
    "TrainingFolder",
    "STEPS",
    "WorkDir",
    "artifact",
    "hint_for",
    "markdown_table",
    "step_of",
    "workdir_config",
]

STEPS: tuple[str, ...] = ("prepare", "train", "predict", "evaluate", "analyse")
"""The pipeline's steps in order; each is an ``smcore`` command."""


@dataclass(frozen=True)
class Artifact:
    """One file (or Zarr folder) of the work directory.

    ``path`` is relative to the work directory; per-experiment artifacts hold the placeholder
    ``{experiment}``. ``when`` names the option a file depends on (``with --truth``); the
    others are written on every run of the step.
    """

    key: str
    path: str
    step: str
    description: str
    when: str = ""

    @property
    def always(self) -> bool:
        """Whether every run of the step writes this file."""
        return not self.when

    @property
    def per_experiment(self) -> bool:
        """Whether there is one such file per experiment."""
        return "{experiment}" in self.path

    @property
    def pattern(self) -> str:
        """``path`` as a glob pattern (``*`` for the experiment)."""
        return self.path.replace("{experiment}", "*")

    def relative(self, experiment: str | None = None) -> str:
        """The path relative to the work directory (of ``experiment`` when per experiment)."""
        if self.per_experiment:
            if experiment is None:
                raise ValueError(f"artifact {self.key!r} needs an experiment")
            return self.path.format(experiment=experiment)
        return self.path

    @property
    def name(self) -> str:
        """The file name (last path component; per-experiment names keep the placeholder)."""
        return self.path.rsplit("/", 1)[-1]


_TABLE = """
key                    | path                                 | step     | when                 | description
manifest               | prepared/manifest.json               | prepare  |                      | what was prepared: configuration, channels, members, experiments, input fingerprint
prepared_store         | prepared/data.zarr                   | prepare  |                      | models on the coarse grid, reference, land mask, climatology, statistics
checkpoint_last        | training/last.pt                     | train    |                      | the latest training state (resumable)
checkpoint_best        | training/best.pt                     | train    |                      | the best-validation network and its scaling
history                | training/history.csv                 | train    |                      | training and validation loss per epoch
summary                | training/summary.json                | train    |                      | device, precision, epochs, time and scaling of the training run
members                | training/members                     | train    | with --members K > 1 | the other networks of a deep ensemble: one folder m<k> per member k = 1 … K-1 (seed + k) with its best.pt, last.pt, history.csv and summary.json
product                | product/CMIP6_DL_{experiment}.nc     | predict  |                      | the merged 0.25° soil-moisture product of one experiment
metrics                | evaluation/metrics.csv               | evaluate |                      | test-period scores of CMIP6_DL, the baselines and every model
taylor                 | evaluation/taylor.csv                | evaluate |                      | normalised Taylor statistics
maps                   | evaluation/maps.nc                   | evaluate |                      | per-pixel MAE and r maps
regions                | evaluation/regions.nc                | evaluate |                      | climate regions of the evaluation
regional_series        | evaluation/regional_series.nc        | evaluate |                      | regional mean series of the test period
audit                  | evaluation/audit.json                | evaluate |                      | leakage audit of the prepared statistics, ridge penalties, notes
truth_metrics          | evaluation/truth_metrics.csv         | evaluate | with --truth         | scores against the demo truth
calibration            | evaluation/calibration.csv           | evaluate |                      | calibration of the probabilistic products: 90 % interval coverage and width, CRPS, PIT histogram
stations               | evaluation/stations.csv              | evaluate | with --stations      | scores of every product at the ISMN stations, per station and pooled
stations_qc            | evaluation/stations_qc.csv           | evaluate | with --stations      | every ISMN station: used or skipped and why, values kept and dropped per quality flag
stations_series        | evaluation/stations.nc               | evaluate | with --stations      | monthly in-situ series and every product at the stations (CF timeSeries)
trends                 | analysis/ssmi_trends.nc              | analyse  |                      | SSMI Theil-Sen trends, Mann-Kendall p-values and the FDR significance mask per scenario and season
change_rates           | analysis/change_rates.csv            | analyse  |                      | change rates by period, region and timescale (percent)
area_fractions         | analysis/area_fractions.csv          | analyse  |                      | land shares with a significant drying or wetting trend
uncertainty_partition  | analysis/uncertainty_partition.csv   | analyse  |                      | model, scenario and internal-variability shares of the projection variance per region and year
change_rates_figure    | analysis/change_rates.png            | analyse  | unless --no-figures  | figure of the change rates
trend_maps_figure      | analysis/trend_maps_{experiment}.png | analyse  | unless --no-figures  | figure of the trend maps of one scenario
truth_trend_comparison | analysis/truth_trend_comparison.csv  | analyse  | with --truth         | trend maps compared with the demo truth
"""  # noqa: E501 - a table reads best one row per line


def _parse(table: str) -> tuple[Artifact, ...]:
    rows = [[cell.strip() for cell in line.split("|")] for line in table.strip().splitlines()]
    header, body = rows[0], rows[1:]
    return tuple(Artifact(**dict(zip(header, row, strict=True))) for row in body)


ARTIFACTS: tuple[Artifact, ...] = _parse(_TABLE)
"""Every artifact of a work directory, in pipeline order."""

_BY_KEY = {a.key: a for a in ARTIFACTS}


def artifact(key: str) -> Artifact:
    """The artifact called ``key`` (see :data:`ARTIFACTS`)."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise KeyError(f"no artifact {key!r}; known: {', '.join(_BY_KEY)}") from None


def step_of(relative: str | Path) -> str | None:
    """The step that writes the file at ``relative`` (a path inside the work directory)."""
    rel = Path(relative).as_posix()
    for a in ARTIFACTS:
        if rel == a.path or fnmatch(rel, a.pattern) or rel.startswith(a.path + "/"):
            return a.step
    return None


def hint_for(relative: str | Path, root: str | Path | None = None) -> str:
    """The command that writes ``relative``: ``smcore <step> --workdir ROOT`` or smcore run."""
    step = step_of(relative) or "run"
    return f"smcore {step}" + (f" --workdir {root}" if root is not None else "")


def markdown_table() -> str:
    """:data:`ARTIFACTS` as the Markdown table of ``docs/workdir.md`` (kept equal by a test)."""
    rows = ["| path | written by | what |", "|---|---|---|"]
    for a in ARTIFACTS:
        path = a.path.replace("{experiment}", "<experiment>")
        note = f" ({a.when})" if a.when else ""
        rows.append(f"| `{path}` | `smcore {a.step}` | {a.description}{note} |")
    return "\n".join(rows)


@dataclass(frozen=True)
class TrainingFolder:
    """Where the training files of one ensemble member live.

    Member 0 (the only one unless ``smcore train --members K``) writes ``WD/training``; member
    ``k`` ≥ 1 writes ``WD/training/members/m<k>``, with the same four files.
    """

    root: Path
    member: int

    @property
    def checkpoint_best(self) -> Path:
        """``best.pt``: the best-validation network and its scaling."""
        return self.root / "best.pt"

    @property
    def checkpoint_last(self) -> Path:
        """``last.pt``: the latest training state (resumable)."""
        return self.root / "last.pt"

    @property
    def history(self) -> Path:
        """``history.csv``: training and validation loss per epoch."""
        return self.root / "history.csv"

    @property
    def summary(self) -> Path:
        """``summary.json``: device, precision, epochs, time and scaling of the run."""
        return self.root / "summary.json"


@functools.lru_cache(maxsize=8)
def _prepared_experiments(manifest: str, inode: int, size: int, mtime_ns: int) -> tuple[str, ...]:
    """The experiments a manifest lists, in the study's order, read once per version of the file.

    The manifest of the default demo is about half a megabyte; the dashboard asks for its
    experiments every few seconds in every session. The file's inode, size and modification
    time name its version (the pipeline replaces it by renaming a new file over it).
    """
    prepared = [str(e) for e in json.loads(Path(manifest).read_text()).get("experiments", [])]
    rank = {e: i for i, e in enumerate(EXPERIMENTS)}
    prepared.sort(key=lambda e: (rank.get(e, len(rank)), e))
    return tuple(prepared)


@dataclass(frozen=True)
class WorkDir:
    """A work directory ``root`` and the fixed locations of its artifacts (:data:`ARTIFACTS`)."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root).expanduser().resolve())

    def path(self, key: str, experiment: str | None = None) -> Path:
        """Absolute path of the artifact ``key`` (of ``experiment`` when per experiment)."""
        return self.root / artifact(key).relative(experiment)

    def outputs(self, step: str, experiments: Sequence[str] = ()) -> list[Path]:
        """The files ``step`` always writes (per-experiment ones for each of ``experiments``).

        For ``predict`` the experiments are all prepared ones; for ``analyse``, the scenarios.
        """
        if step not in STEPS:
            raise ValueError(f"unknown step {step!r}; steps: {', '.join(STEPS)}")
        out: list[Path] = []
        for a in ARTIFACTS:
            if a.step != step or not a.always:
                continue
            if a.per_experiment:
                out.extend(self.root / a.relative(e) for e in experiments)
            else:
                out.append(self.root / a.path)
        return out

    # -- the experiments of the steps after prepare ------------------------
    def experiments(self, wanted: Sequence[str] | None = None) -> list[str]:
        """The experiments the steps after ``prepare`` work on: the prepared ones.

        ``wanted`` (e.g. ``smcore predict --experiments``) selects some of them; asking for
        one that was not prepared is an :class:`InputError`. Order: historical, then the SSPs
        in the study's order.
        """
        try:
            st = self.manifest.stat()
            prepared = list(
                _prepared_experiments(str(self.manifest), st.st_ino, st.st_size, st.st_mtime_ns)
            )
        except FileNotFoundError:
            raise InputError(
                self.prepared, "no prepared data here: run `smcore prepare` first"
            ) from None
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(self.manifest, f"unreadable manifest: {exc}") from exc
        if wanted is None:
            return prepared
        missing = [e for e in wanted if e not in prepared]
        if missing:
            raise InputError(
                self.manifest,
                f"experiment(s) {', '.join(missing)} were not prepared "
                f"(prepared: {', '.join(prepared) or 'none'})",
            )
        return [e for e in prepared if e in wanted]

    def scenarios(self) -> list[str]:
        """The prepared future experiments (SSPs), in order."""
        return [e for e in self.experiments() if e != "historical"]

    def sweep(self) -> list[Path]:
        """Remove the temporaries a killed smcore left in the folders of this work directory.

        Looks in the work directory, ``.stamps`` and every folder an artifact lives in
        (:data:`ARTIFACTS`); temporaries of running processes are kept (see
        :func:`smcore.io.atomic.sweep_temporaries`). Returns what was removed.
        """
        from smcore.io.atomic import sweep_temporaries

        folders = {self.root, self.stamps}
        for a in ARTIFACTS:
            folder = (self.root / a.path).parent
            while folder != self.root and self.root in folder.parents:
                folders.add(folder)
                folder = folder.parent
        members = self.root / artifact("members").path
        if members.is_dir():
            folders.update(p for p in members.iterdir() if p.is_dir())
        return sweep_temporaries(sorted(folders))

    # -- named locations -------------------------------------------------
    @property
    def prepared(self) -> Path:
        """Folder of ``smcore prepare``'s outputs."""
        return self.root / "prepared"

    @property
    def prepared_store(self) -> Path:
        """Zarr store of the prepared arrays (static fields, reference, coarse inputs)."""
        return self.path("prepared_store")

    @property
    def manifest(self) -> Path:
        """``prepared/manifest.json``."""
        return self.path("manifest")

    @property
    def training(self) -> Path:
        """Folder of ``smcore train``'s outputs."""
        return self.root / "training"

    @property
    def checkpoint_best(self) -> Path:
        """``training/best.pt``."""
        return self.path("checkpoint_best")

    @property
    def checkpoint_last(self) -> Path:
        """``training/last.pt``."""
        return self.path("checkpoint_last")

    @property
    def history(self) -> Path:
        """``training/history.csv``."""
        return self.path("history")

    @property
    def summary(self) -> Path:
        """``training/summary.json``."""
        return self.path("summary")

    def member(self, k: int) -> TrainingFolder:
        """The training folder of ensemble member ``k`` (0: ``training/``)."""
        if k < 0:
            raise ValueError(f"member must be >= 0 (got {k})")
        root = self.training if k == 0 else self.root / artifact("members").path / f"m{k}"
        return TrainingFolder(root, k)

    def stale_members(self, keep: int) -> list[Path]:
        """Folders of members ``k`` ≥ ``keep`` (left by an earlier, larger ensemble)."""
        root = self.root / artifact("members").path
        if not root.is_dir():
            return []
        found = []
        for p in root.iterdir():
            if p.is_dir() and p.name.startswith("m") and p.name[1:].isdigit() and int(p.name[1:]) >= keep:
                found.append(p)
        return sorted(found)

    @property
    def product_dir(self) -> Path:
        """Folder of the merged products."""
        return self.root / "product"

    def product(self, experiment: str) -> Path:
        """The merged 0.25° product of one experiment: ``CMIP6_DL_<experiment>.nc``."""
        return self.path("product", experiment)

    @property
    def evaluation(self) -> Path:
        """Folder of ``smcore evaluate``'s outputs (replaced as a whole)."""
        return self.root / "evaluation"

    @property
    def analysis(self) -> Path:
        """Folder of ``smcore analyse``'s outputs."""
        return self.root / "analysis"

    @property
    def stamps(self) -> Path:
        """Hidden folder of the pipeline's step stamps (``smcore run``)."""
        return self.root / ".stamps"


def recorded_config(workdir: str | Path | WorkDir) -> tuple[dict[str, Any] | None, Path | None]:
    """The configuration recorded in a work directory and the file it came from.

    ``prepared/manifest.json``'s ``config``, else the ``smcore_config`` attribute of the
    historical product, else ``(None, None)``. An unreadable record is a :class:`ConfigError`.
    """
    wd = workdir if isinstance(workdir, WorkDir) else WorkDir(workdir)
    if wd.manifest.is_file():
        try:
            recorded = json.loads(wd.manifest.read_text()).get("config")
        except (OSError, json.JSONDecodeError, AttributeError) as exc:
            raise ConfigError(f"{wd.manifest}: unreadable manifest: {exc}") from exc
        if recorded is not None:
            return recorded, wd.manifest
    product = wd.product("historical")
    if product.is_file():
        from smcore.io.nclock import netcdf4_dataset

        try:
            with netcdf4_dataset(product) as nc:
                text = getattr(nc, "smcore_config", None)
            recorded = json.loads(text) if text else None
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{product}: unreadable smcore_config attribute: {exc}") from exc
        if recorded is not None:
            return recorded, product
    return None, None


def workdir_config(
    workdir: str | Path | WorkDir, config_path: str | Path | None = None, **overrides: Any
) -> Config:
    """The configuration of a step (or the dashboard) on an existing work directory.

    The ``config_path`` TOML file if given; else the configuration recorded by
    ``smcore prepare`` (:func:`recorded_config`); else the defaults. Non-``None``
    ``overrides`` (dotted keys, typed values) apply on top. Any problem is a
    :class:`ConfigError` naming the file.
    """
    clean = {k: v for k, v in overrides.items() if v is not None}
    if config_path is not None:
        try:
            return load_config(config_path, **clean)
        except (KeyError, ValueError) as exc:
            raise ConfigError(str(exc).strip("'\"")) from exc
    recorded, source = recorded_config(workdir)
    try:
        base = Config() if recorded is None else Config.from_dict(recorded)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: invalid recorded configuration: {exc}") from exc
    try:
        return base.override(**clean)
    except (KeyError, ValueError) as exc:
        raise ConfigError(str(exc).strip("'\"")) from exc
