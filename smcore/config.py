"""The study configuration: one frozen object passed down to every step.

Defaults are the values of Feng et al. (2022): a 0.25° target grid over China
(144 × 264), a 2° coarse grid (18 × 33) nested so that each coarse cell holds
exactly ``scale × scale`` target cells, the paper's train/validation/test split,
the four SSPs and the 25 models of Table 1.

Every value can be overridden from a TOML file (:func:`load_config`) or from the
command line (:func:`Config.override`).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from smcore.errors import ConfigError

__all__ = [
    "GridSpec",
    "ModelSpec",
    "Periods",
    "TrainConfig",
    "AnalysisConfig",
    "MK_TESTS",
    "Config",
    "SCALING_MODES",
    "AUX_FIELD_NAMES",
    "FORCED_METHODS",
    "DEVICES",
    "AMP_MODES",
    "forced_split_problem",
    "TABLE1_MODELS",
    "EXPERIMENTS",
    "SEASONS",
    "activity_for",
    "load_config",
    "parse_year_range",
]

EXPERIMENTS: tuple[str, ...] = ("historical", "ssp126", "ssp245", "ssp370", "ssp585")
"""CMIP6 experiment_ids of the study, historical first."""

SEASONS: tuple[str, ...] = ("annual", "MAM", "JJA", "SON", "DJF")
"""Aggregation periods of the trend analysis (December counts in the next year's DJF)."""

SCENARIO_LABELS: dict[str, str] = {
    "historical": "Historical",
    "ssp126": "SSP1-2.6",
    "ssp245": "SSP2-4.5",
    "ssp370": "SSP3-7.0",
    "ssp585": "SSP5-8.5",
}


def activity_for(experiment_id: str) -> str:
    """CMIP6 activity_id of an experiment (``CMIP`` for historical, ``ScenarioMIP`` for SSPs)."""
    if experiment_id.startswith("ssp"):
        return "ScenarioMIP"
    return "CMIP"


@dataclass(frozen=True)
class GridSpec:
    """A regular lat/lon grid given by its first cell centre, spacing and size.

    Latitudes and longitudes are cell centres in degrees north / east, ascending.
    """

    lat0: float
    lon0: float
    res: float
    nlat: int
    nlon: int

    def __post_init__(self) -> None:
        if self.res <= 0 or self.nlat < 1 or self.nlon < 1:
            raise ValueError(f"invalid grid: {self}")

    @property
    def lat(self) -> np.ndarray:
        """Cell-centre latitudes (degrees_north), shape (nlat,)."""
        return np.round(self.lat0 + self.res * np.arange(self.nlat), 6)

    @property
    def lon(self) -> np.ndarray:
        """Cell-centre longitudes (degrees_east), shape (nlon,)."""
        return np.round(self.lon0 + self.res * np.arange(self.nlon), 6)

    @property
    def lat_bounds(self) -> np.ndarray:
        """Cell edges in latitude, shape (nlat, 2)."""
        return np.stack([self.lat - self.res / 2, self.lat + self.res / 2], axis=-1)

    @property
    def lon_bounds(self) -> np.ndarray:
        """Cell edges in longitude, shape (nlon, 2)."""
        return np.stack([self.lon - self.res / 2, self.lon + self.res / 2], axis=-1)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.nlat, self.nlon)

    def extent(self) -> tuple[float, float, float, float]:
        """Outer edges (lon_min, lon_max, lat_min, lat_max) in degrees."""
        h = self.res / 2
        return (
            float(self.lon[0] - h),
            float(self.lon[-1] + h),
            float(self.lat[0] - h),
            float(self.lat[-1] + h),
        )

    def coarsen(self, scale: int) -> "GridSpec":
        """The grid whose cells each hold exactly ``scale × scale`` cells of this one."""
        if self.nlat % scale or self.nlon % scale:
            raise ValueError(f"grid {self.shape} is not divisible by scale {scale}")
        off = self.res * (scale - 1) / 2
        return GridSpec(
            lat0=round(self.lat0 + off, 6),
            lon0=round(self.lon0 + off, 6),
            res=self.res * scale,
            nlat=self.nlat // scale,
            nlon=self.nlon // scale,
        )


@dataclass(frozen=True)
class ModelSpec:
    """One CMIP6 model of the study: identity, member and native grid as in the archive."""

    source_id: str
    institution_id: str
    member_id: str = "r1i1p1f1"
    dlon: float = 2.0
    dlat: float = 2.0
    calendar: str = "standard"


# Table 1 of Feng et al. (2022); calendars as published on ESGF.
TABLE1_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("ACCESS-CM2", "CSIRO-ARCCSS", "r1i1p1f1", 1.875, 1.25, "proleptic_gregorian"),
    ModelSpec("ACCESS-ESM1-5", "CSIRO", "r1i1p1f1", 1.875, 1.25, "proleptic_gregorian"),
    ModelSpec("BCC-CSM2-MR", "BCC", "r1i1p1f1", 1.125, 1.125, "365_day"),
    ModelSpec("CAS-ESM2-0", "CAS", "r1i1p1f1", 1.40625, 1.40625, "365_day"),
    ModelSpec("CESM2", "NCAR", "r1i1p1f1", 1.25, 0.9424, "noleap"),
    ModelSpec("CESM2-WACCM", "NCAR", "r1i1p1f1", 1.25, 0.9424, "noleap"),
    ModelSpec("CMCC-CM2-SR5", "CMCC", "r1i1p1f1", 1.25, 0.9424, "365_day"),
    ModelSpec("CMCC-ESM2", "CMCC", "r1i1p1f1", 1.25, 0.9424, "365_day"),
    ModelSpec("CanESM5-CanOE", "CCCma", "r1i1p2f1", 2.8125, 2.8125, "365_day"),
    ModelSpec("CanESM5", "CCCma", "r1i1p1f1", 2.8125, 2.8125, "365_day"),
    ModelSpec("EC-Earth3-Veg-LR", "EC-Earth-Consortium", "r1i1p1f1", 1.125, 1.125, "proleptic_gregorian"),
    ModelSpec("EC-Earth3-Veg", "EC-Earth-Consortium", "r1i1p1f1", 0.703125, 0.703125, "proleptic_gregorian"),
    ModelSpec("FGOALS-f3-L", "CAS", "r1i1p1f1", 1.25, 1.0, "365_day"),
    ModelSpec("FGOALS-g3", "CAS", "r1i1p1f1", 2.0, 2.25, "365_day"),
    ModelSpec("GFDL-ESM4", "NOAA-GFDL", "r1i1p1f1", 1.25, 1.0, "noleap"),
    ModelSpec("GISS-E2-1-G", "NASA-GISS", "r1i1p1f2", 2.5, 2.0, "365_day"),
    ModelSpec("IPSL-CM6A-LR", "IPSL", "r1i1p1f1", 2.5, 1.2676, "gregorian"),
    ModelSpec("KACE-1-0-G", "NIMS-KMA", "r1i1p1f1", 1.875, 1.25, "360_day"),
    ModelSpec("MIROC-ES2L", "MIROC", "r1i1p1f2", 2.8125, 2.8125, "standard"),
    ModelSpec("MIROC6", "MIROC", "r1i1p1f1", 1.40625, 1.40625, "standard"),
    ModelSpec("MPI-ESM1-2-HR", "MPI-M", "r1i1p1f1", 0.9375, 0.9375, "proleptic_gregorian"),
    ModelSpec("MPI-ESM1-2-LR", "MPI-M", "r1i1p1f1", 1.875, 1.875, "proleptic_gregorian"),
    ModelSpec("MRI-ESM2-0", "MRI", "r1i1p1f1", 1.125, 1.125, "proleptic_gregorian"),
    ModelSpec("NorESM2-LM", "NCC", "r1i1p1f1", 2.5, 1.894737, "noleap"),
    ModelSpec("UKESM1-0-LL", "MOHC", "r1i1p1f2", 1.875, 1.25, "360_day"),
)


@dataclass(frozen=True)
class Periods:
    """Year ranges (inclusive) of the study."""

    train: tuple[int, int] = (1950, 1999)
    val: tuple[int, int] = (2000, 2007)
    test: tuple[int, int] = (2008, 2014)
    future: tuple[int, int] = (2015, 2100)
    baseline: tuple[int, int] = (1995, 2014)
    change: tuple[tuple[int, int], ...] = ((2021, 2040), (2041, 2070), (2071, 2100))

    def __post_init__(self) -> None:
        for name in ("train", "val", "test", "future", "baseline"):
            y0, y1 = getattr(self, name)
            if y0 > y1:
                raise ValueError(f"period {name}={y0}-{y1}: start after end")
        spans = sorted([self.train, self.val, self.test])
        for a, b in zip(spans, spans[1:]):
            if a[1] >= b[0]:
                raise ValueError(f"train/val/test periods overlap: {a} and {b}")

    @property
    def historical(self) -> tuple[int, int]:
        """First and last year of the historical record used (train start to test end)."""
        return (min(self.train[0], self.val[0], self.test[0]), max(self.train[1], self.val[1], self.test[1]))


SCALING_MODES: tuple[str, ...] = ("standard", "anomaly", "local")
"""Scalings of YNet's inputs and target (:mod:`smcore.train.scaling`)."""

AUX_FIELD_NAMES: tuple[str, ...] = (
    "elevation", "target_climatology", "land_mask", "latitude", "longitude",
)
"""Auxiliary fine-grid fields YNet can be given (:mod:`smcore.train.normalization`)."""

FORCED_METHODS: tuple[str, ...] = ("ensemble_mean", "climwip")
LOSS_NAMES: tuple[str, ...] = ("mse", "gaussian_nll")  # smcore.train.losses
"""How the models' slow anomalies are combined into the forced change (:mod:`smcore.train.weights`)."""

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")
AMP_MODES: tuple[str, ...] = ("auto", "bf16", "off")


def forced_split_problem(forced_window: float, input_norm: str, target_norm: str) -> str | None:
    """Why the forced/weather split cannot run with these scalings, or None when it can."""
    if forced_window > 0 and "standard" in (input_norm, target_norm):
        return (
            "train.forced_window_years > 0 needs input_norm and target_norm 'anomaly' or 'local' "
            "(set forced_window_years = 0 for the standard scaling)"
        )
    return None


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of YNet training (see ``smcore.train``).

    Checked on construction: a bad value is a :class:`~smcore.errors.ConfigError` naming
    every problem, before any data are read.
    """

    epochs: int = 100
    batch_size: int = 8
    lr: float = 1e-4
    device: str = "auto"
    seed: int = 123
    features: int = 64
    depth: int = 15
    dropout: float = 0.1
    plateau_patience: int = 5
    early_stopping: int = 15
    amp: str = "auto"
    micro_batch: int = 0  # months per forward/backward pass; 0 = auto (smcore.train.runtime)
    input_norm: str = "anomaly"  # "standard" | "anomaly" | "local" (see smcore.train.scaling)
    target_norm: str = "anomaly"  # "standard" | "anomaly" | "local" (see smcore.train.scaling)
    forced_window_years: int = 21  # slow (forced) anomalies bypass the network; 0 = off (smcore.train.forced)
    forced_method: str = "ensemble_mean"  # "ensemble_mean" | "climwip" (smcore.train.weights)
    scenario_continuation: bool = True  # historical slow anomalies continued by the scenarios
    aux_fields: tuple[str, ...] = AUX_FIELD_NAMES  # fine-grid fields given to YNet
    loss: str = "gaussian_nll"  # or "mse" (a value only); see smcore.train.losses
    members: int = 1  # networks of a deep ensemble, member k trained with seed + k (smcore.train.loop)

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ConfigError("; ".join(problems))

    def problems(self) -> list[str]:
        """What is wrong with these hyper-parameters (empty when they can train)."""
        out = []
        if self.epochs < 1:
            out.append(f"epochs must be >= 1 (got {self.epochs})")
        if self.batch_size < 1:
            out.append(f"batch size must be >= 1 (got {self.batch_size})")
        if not self.lr > 0:
            out.append(f"learning rate must be > 0 (got {self.lr})")
        if self.features < 1 or self.depth < 1:
            out.append(f"features and depth must be >= 1 (got {self.features}, {self.depth})")
        if not 0 <= self.dropout < 1:
            out.append(f"dropout must be in [0, 1) (got {self.dropout})")
        if self.device.split(":")[0] not in DEVICES:
            out.append(f"unknown device {self.device!r}: choose one of {', '.join(DEVICES)}")
        if self.amp not in AMP_MODES:
            out.append(f"unknown amp mode {self.amp!r}: choose one of {', '.join(AMP_MODES)}")
        if self.members < 1:
            out.append(f"train.members must be >= 1 (got {self.members})")
        if self.micro_batch < 0:
            out.append(f"micro-batch must be >= 0 (0 = auto), got {self.micro_batch}")
        for name in ("input_norm", "target_norm"):
            if getattr(self, name) not in SCALING_MODES:
                out.append(
                    f"train.{name} must be one of {', '.join(SCALING_MODES)} "
                    f"(got {getattr(self, name)!r})"
                )
        if self.loss not in LOSS_NAMES:
            out.append(f"train.loss must be one of {', '.join(LOSS_NAMES)} (got {self.loss!r})")
        if self.forced_method not in FORCED_METHODS:
            out.append(
                f"train.forced_method must be one of {', '.join(FORCED_METHODS)} "
                f"(got {self.forced_method!r})"
            )
        unknown = [a for a in self.aux_fields if a not in AUX_FIELD_NAMES]
        if unknown or len(set(self.aux_fields)) != len(self.aux_fields):
            out.append(
                f"train.aux_fields must be distinct names among {', '.join(AUX_FIELD_NAMES)} "
                f"(got {list(self.aux_fields)})"
            )
        if self.forced_window_years < 0:
            out.append(f"train.forced_window_years must be >= 0 (got {self.forced_window_years})")
        elif problem := forced_split_problem(
            self.forced_window_years, self.input_norm, self.target_norm
        ):
            out.append(problem)
        return out


MK_TESTS: tuple[str, ...] = ("original", "hamed_rao", "tfpw")
"""Mann–Kendall variants of :mod:`smcore.analysis.trends`: plain, Hamed–Rao variance
correction, trend-free pre-whitening."""


@dataclass(frozen=True)
class AnalysisConfig:
    """Significance of the future trends (``smcore analyse``; see docs/analysis.md).

    ``mk_test``: the Mann–Kendall variant per pixel, one of :data:`MK_TESTS` (default: the
    Hamed and Rao 1998 autocorrelation correction). ``fdr_alpha``: the false discovery rate
    of the Benjamini–Hochberg field-significance mask of each trend map (Wilks 2016: 0.1).
    """

    mk_test: str = "hamed_rao"
    fdr_alpha: float = 0.1

    def __post_init__(self) -> None:
        problems = []
        if self.mk_test not in MK_TESTS:
            problems.append(
                f"analysis.mk_test must be one of {', '.join(MK_TESTS)} (got {self.mk_test!r})"
            )
        if not 0 < self.fdr_alpha < 1:
            problems.append(f"analysis.fdr_alpha must be in (0, 1) (got {self.fdr_alpha})")
        if problems:
            raise ConfigError("; ".join(problems))


@dataclass(frozen=True)
class Config:
    """Everything a run of smcore depends on.

    ``target`` is the fine (reference) grid; the coarse model grid is derived
    from it by :attr:`scale`, so that each coarse cell holds exactly
    ``scale × scale`` fine cells.
    """

    target: GridSpec = GridSpec(lat0=18.0, lon0=71.0, res=0.25, nlat=144, nlon=264)
    scale: int = 8
    periods: Periods = field(default_factory=Periods)
    experiments: tuple[str, ...] = EXPERIMENTS
    models: tuple[ModelSpec, ...] = TABLE1_MODELS
    variable: str = "mrsos"
    table_id: str = "Lmon"
    reference_variable: str = "swvl1"
    layer_depth_mm: float = 100.0
    domain_margin_deg: float = 3.0
    north_south_split_lat: float = 35.0
    east_of_lon: float = 100.0
    train: TrainConfig = field(default_factory=TrainConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)

    @property
    def coarse(self) -> GridSpec:
        """The coarse model grid (2° over China by default, 18 × 33)."""
        return self.target.coarsen(self.scale)

    @property
    def future_experiments(self) -> tuple[str, ...]:
        return tuple(e for e in self.experiments if e != "historical")

    def model(self, source_id: str) -> ModelSpec:
        for m in self.models:
            if m.source_id == source_id:
                return m
        raise KeyError(f"model {source_id!r} is not in the configuration")

    # -- serialisation -------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict that :meth:`from_dict` turns back into this object."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Config":
        return _from_dict(cls, data)

    def override(self, **changes: Any) -> "Config":
        """Return a copy with top-level or dotted (``train.epochs``) fields changed.

        ``None`` values are ignored, so CLI options left unset keep the configured value.
        All changes are applied together and the result is validated once, so options that
        are only consistent together (``periods.train`` reaching into the default validation
        years while ``periods.val`` moves on) can be given in any order.
        """
        tree: dict[str, Any] = {}
        for key, value in changes.items():
            if value is None:
                continue
            node = tree
            *parents, leaf = key.split(".")
            for name in parents:
                node = node.setdefault(name, {})
                if not isinstance(node, dict):
                    raise KeyError(f"configuration key {key!r} conflicts with another option")
            node[leaf] = copy.deepcopy(value) if isinstance(value, dict) else value
        return _apply_changes(self, tree) if tree else self


def _apply_changes(obj: Any, tree: dict[str, Any]) -> Any:
    """``obj`` (a frozen dataclass) with the nested ``tree`` of changes, built once per level."""
    names = {f.name for f in fields(obj)}
    kwargs: dict[str, Any] = {}
    for head, value in tree.items():
        if head not in names:
            raise KeyError(f"unknown configuration key {head!r}")
        current = getattr(obj, head)
        if isinstance(value, dict) and dataclasses.is_dataclass(current):
            kwargs[head] = _apply_changes(current, value)
        else:
            kwargs[head] = _coerce_like(current, value, head)
    return replace(obj, **kwargs)


def _coerce_like(current: Any, value: Any, name: str) -> Any:
    if dataclasses.is_dataclass(current) and isinstance(value, dict):
        return _from_dict(type(current), value)
    if isinstance(current, bool):
        return bool(value)
    if isinstance(current, int) and not isinstance(value, bool):
        return int(value)
    if isinstance(current, float):
        return float(value)
    if isinstance(current, tuple) and isinstance(value, (list, tuple)):
        return tuple(tuple(v) if isinstance(v, list) else v for v in value)
    return value


def _from_dict(cls: type, data: dict[str, Any]) -> Any:
    kwargs: dict[str, Any] = {}
    known = {f.name: f for f in fields(cls)}
    for key, value in data.items():
        if key not in known:
            raise KeyError(f"unknown configuration key {key!r} for {cls.__name__}")
        default = cls() if _has_defaults(cls) else None
        current = getattr(default, key) if default is not None else None
        if key == "models":
            kwargs[key] = tuple(m if isinstance(m, ModelSpec) else ModelSpec(**m) for m in value)
        elif key == "target" and isinstance(value, dict):
            kwargs[key] = GridSpec(**value)
        elif current is not None:
            kwargs[key] = _coerce_like(current, value, key)
        else:
            kwargs[key] = value
    return cls(**kwargs)


def _has_defaults(cls: type) -> bool:
    return all(
        f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING  # type: ignore[misc]
        for f in fields(cls)
    )


def load_config(path: str | Path | None = None, **overrides: Any) -> Config:
    """Load a :class:`Config` from a TOML file (optional) and apply overrides.

    The TOML keys mirror the dataclass fields, e.g.::

        scale = 8
        experiments = ["historical", "ssp245"]
        [periods]
        train = [1950, 1999]
        [train]
        epochs = 50
    """
    cfg = Config()
    if path is not None:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"{p}: cannot read configuration: {exc}") from exc
        try:
            cfg = Config.from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{p}: invalid configuration: {exc}") from exc
    return cfg.override(**overrides)


def parse_year_range(text: str) -> tuple[int, int]:
    """Parse ``"1950-1999"`` into ``(1950, 1999)``."""
    try:
        a, b = text.split("-")
        y0, y1 = int(a), int(b)
    except ValueError as exc:
        raise ValueError(f"invalid year range {text!r}: expected Y0-Y1") from exc
    if y0 > y1:
        raise ValueError(f"invalid year range {text!r}: start after end")
    return (y0, y1)
