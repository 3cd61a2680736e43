"""Orchestrate ``smcore demo-data``: truth, ERA5-Land-like reference, 25 synthetic ESMs.

Layout of the output folder ``OUT`` (see docs/workdir.md):

- ``cmip6/CMIP6/<activity>/<institution>/<source>/<experiment>/<member>/Lmon/mrsos/gn/<version>/``
  ``mrsos_Lmon_<source>_<experiment>_<member>_gn_<YYYYMM>-<YYYYMM>.nc`` (with
  ``layout="zarr-catalog"``: that folder is one Zarr store, listed in ``cmip6/catalog.json``
  and ``cmip6/catalog.csv``, an intake-esm catalog in the Pangeo CMIP6 layout)
- ``era5land/swvl1_era5land_monthly_<YYYY>.nc`` (historical years)
- ``truth/truth_<experiment>.nc`` and ``truth/planted_trends.nc``
- ``ismn/<network>/<station>/*.stm``: a few synthetic in-situ stations in ISMN's formats,
  sampled from the truth over the test years (:mod:`smcore.demo.ismn`)
- ``smcore.toml`` (the configuration matching what was written) and ``demo.json``.

Everything is written into a temporary folder beside ``OUT`` that replaces ``OUT`` only
when complete. The same seed and options give the same data.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from smcore import __version__, assets
from smcore.config import Config, GridSpec, ModelSpec, Periods
from smcore.demo import regrid
from smcore.demo.layout import layout_for, native_grid
from smcore.demo.models import build_model_statics, model_series
from smcore.demo.noise import NodeLattice, ar1_inplace, rng_for
from smcore.demo.truth import (
    SCENARIOS,
    SMALL_SCALE,
    VALID_RANGE,
    W_LARGE,
    W_SMALL,
    LARGE_WEATHER,
    TruthStatics,
    build_statics,
    forced_signal,
    large_scale_nodes,
    month_decimal_years,
    sample_to,
    scenario_shape,
)
from smcore.demo.writers import (
    era5_filename,
    write_cmip6,
    write_era5_year,
    write_planted_trends,
    write_truth,
)
from smcore.errors import ConfigError, InputError
from smcore.io.atomic import atomic_dir, write_json

__all__ = [
    "GENERATOR_VERSION",
    "SMALL_MODELS",
    "DemoOptions",
    "DemoResult",
    "demo_config",
    "era5_grid",
    "generate_demo",
    "config_to_toml",
]

GENERATOR_VERSION = 3
"""Bumped whenever the generated data change for the same seed and options.

2: models of one family share their trend errors; the models' share of the truth's weather
is an option (``shared_weather``, default 0; version 1 had 0.5).
3: a synthetic ISMN download (``ismn/``) sampled from the truth."""

SMALL_MODELS: tuple[str, ...] = (
    "CESM2",  # noleap, 50-year files
    "CanESM5",  # 365_day, global file
    "EC-Earth3-Veg-LR",  # proleptic_gregorian, yearly files
    "FGOALS-g3",  # descending latitude
    "GISS-E2-1-G",  # longitudes -180…180
    "MIROC6",  # standard calendar
    "UKESM1-0-LL",  # 360_day
)
"""Models of ``--small``: one of each calendar and file convention."""

SMALL_PERIODS = Periods(
    train=(1991, 2006), val=(2007, 2010), test=(2011, 2014), future=(2015, 2040),
    baseline=(1995, 2014), change=((2021, 2030), (2031, 2040)),
)
SMALL_EXPERIMENTS = ("historical", "ssp126", "ssp585")
SEASON_MONTHS = {
    "annual": list(range(1, 13)), "MAM": [3, 4, 5], "JJA": [6, 7, 8], "SON": [9, 10, 11],
    "DJF": [12, 1, 2],
}
ERA5_RESOLUTIONS = (0.25, 0.1)
LAYOUTS = ("drs", "zarr-catalog")


@dataclass(frozen=True)
class DemoOptions:
    """Options of ``smcore demo-data``."""

    seed: int = 0
    small: bool = False
    era5_resolution: float = 0.25
    shared_weather: float = 0.0
    """Weight (0 … < 1) of the truth's large-scale weather in the models' weather, at most
    (see :mod:`smcore.demo.models`); 0: free-running models share no weather with the truth."""
    layout: str = "drs"
    """How the models are written: ``drs`` (NetCDF files in an ESGF DRS tree) or
    ``zarr-catalog`` (one Zarr store per dataset and an intake-esm catalog,
    ``cmip6/catalog.json``; see :mod:`smcore.demo.catalog`)."""


@dataclass
class DemoResult:
    """What a run did: ``status`` is ``"written"`` or ``"up-to-date"``."""

    out: Path
    status: str
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    record: dict[str, Any] = field(default_factory=dict)


def demo_config(cfg: Config, small: bool) -> Config:
    """The configuration the demo writes: ``cfg``, or its reduced ``--small`` version."""
    if not small:
        return cfg
    by_id = {m.source_id: m for m in cfg.models}
    models = tuple(by_id[s] for s in SMALL_MODELS if s in by_id) or cfg.models[:7]
    experiments = tuple(e for e in SMALL_EXPERIMENTS if e in cfg.experiments) or cfg.experiments
    return replace(cfg, models=models, periods=SMALL_PERIODS, experiments=experiments)


def era5_grid(cfg: Config, resolution: float) -> GridSpec:
    """The grid a CDS request with ``area`` around the target and ``grid=[res, res]`` returns.

    The area is the target's extent rounded outward to whole degrees (N54 W71 S18 E137
    for the paper's domain); the grid is returned here with ascending latitudes.
    """
    t = cfg.target
    south, north = np.floor(t.lat[0]), np.ceil(t.lat[-1])
    west, east = np.floor(t.lon[0]), np.ceil(t.lon[-1])
    nlat = int(round((north - south) / resolution)) + 1
    nlon = int(round((east - west) / resolution)) + 1
    return GridSpec(lat0=float(south), lon0=float(west), res=resolution, nlat=nlat, nlon=nlon)


def _fine_grid(cfg: Config, era5: GridSpec) -> GridSpec:
    """Grid of the truth's fine weather: the target's lattice covering the target and ERA5 area."""
    t = cfg.target
    lat_lo = min(t.lat[0], era5.lat[0])
    lat_hi = max(t.lat[-1], era5.lat[-1])
    lon_lo = min(t.lon[0], era5.lon[0])
    lon_hi = max(t.lon[-1], era5.lon[-1])
    k_lat = int(np.ceil((t.lat0 - lat_lo) / t.res - 1e-9))
    k_lon = int(np.ceil((t.lon0 - lon_lo) / t.res - 1e-9))
    lat0 = round(t.lat0 - k_lat * t.res, 6)
    lon0 = round(t.lon0 - k_lon * t.res, 6)
    nlat = int(np.ceil((lat_hi - lat0) / t.res - 1e-9)) + 1
    nlon = int(np.ceil((lon_hi - lon0) / t.res - 1e-9)) + 1
    return GridSpec(lat0=lat0, lon0=lon0, res=t.res, nlat=nlat, nlon=nlon)


def _validate(cfg: Config, options: DemoOptions) -> None:
    if not 0.0 <= options.shared_weather < 1.0:
        raise ConfigError(f"--shared-weather must be in [0, 1), got {options.shared_weather}")
    if options.layout not in LAYOUTS:
        raise ConfigError(f"--layout must be one of {', '.join(LAYOUTS)}, got {options.layout!r}")
    if options.era5_resolution not in ERA5_RESOLUTIONS:
        raise ConfigError(f"--era5-resolution must be one of {ERA5_RESOLUTIONS}, "
                          f"got {options.era5_resolution}")
    if not cfg.experiments or cfg.experiments[0] != "historical":
        raise ConfigError("the demo needs 'historical' as its first experiment")
    unknown = [e for e in cfg.experiments[1:] if e not in SCENARIOS]
    if unknown:
        raise ConfigError(f"the demo has no planted scenario for {', '.join(unknown)} "
                          f"(known: {', '.join(SCENARIOS)})")
    y0, y1 = cfg.periods.historical
    if y1 != 2014 or y0 < 1850:
        raise ConfigError(f"historical years {y0}-{y1}: the demo's historical must end in 2014")
    f0, f1 = cfg.periods.future
    if f0 != 2015 or f1 > 2300:
        raise ConfigError(f"future years {f0}-{f1}: the demo's scenarios start in 2015")
    if not cfg.models:
        raise ConfigError("no models configured")


def _record(cfg: Config, options: DemoOptions) -> dict[str, Any]:
    return {
        "generator_version": GENERATOR_VERSION,
        "seed": options.seed,
        "small": options.small,
        "era5_resolution": options.era5_resolution,
        "shared_weather": options.shared_weather,
        "config": json.loads(cfg.to_json()),
        # the default layout is not recorded, so that demo folders written before it existed
        # stay up to date
        **({"layout": options.layout} if options.layout != "drs" else {}),
    }


def _matches(out: Path, record: dict[str, Any]) -> bool:
    try:
        old = json.loads((out / "demo.json").read_text())
    except (OSError, ValueError):
        return False
    return (
        bool(old.get("complete"))
        and all(old.get(k) == v for k, v in record.items())
        and old.get("layout", "drs") == record.get("layout", "drs")
    )


def generate_demo(
    out: str | Path,
    cfg: Config | None = None,
    options: DemoOptions = DemoOptions(),
    *,
    force: bool = False,
    progress: bool = True,
) -> DemoResult:
    """Write the demo dataset into ``out`` (see the module docstring).

    A rerun with the same options on a complete folder does nothing (status
    ``"up-to-date"``) unless ``force``. A non-empty ``out`` that is not a demo folder
    is refused, never overwritten.
    """
    out = Path(out).expanduser().resolve()
    cfg = demo_config(cfg or Config(), options.small)
    _validate(cfg, options)
    record = _record(cfg, options)
    if out.exists() and not out.is_dir():
        raise InputError(out, "exists and is not a folder")
    if not force and _matches(out, record):
        return DemoResult(out=out, status="up-to-date", record=record)
    if out.is_dir() and any(out.iterdir()) and not (out / "demo.json").is_file():
        raise InputError(out, "exists, is not empty and is not a demo-data folder (no demo.json); "
                              "choose a new or empty folder")
    t0 = time.perf_counter()
    with atomic_dir(out) as tmp:
        tmp.chmod(0o755)  # a data folder, not a private temporary one
        _Generator(tmp, cfg, options, progress=progress, final=out).run()
        files = [p for p in tmp.rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)
        seconds = time.perf_counter() - t0
        write_json({**record, "complete": True, "smcore_version": __version__,
                    "files": len(files) + 1, "bytes": size, "seconds": round(seconds, 1)},
                   tmp / "demo.json")
    return DemoResult(out=out, status="written", files=len(files) + 1, bytes=size,
                      seconds=seconds, record=record)


class _Generator:
    """One run of the generator writing into ``root`` (a temporary folder)."""

    def __init__(self, root: Path, cfg: Config, options: DemoOptions, *, progress: bool,
                 final: Path | None = None) -> None:
        self.root = root
        self.final = final or root
        """Where ``root`` will be once complete (absolute asset URIs point there)."""
        self.cfg = cfg
        self.seed = options.seed
        self.options = options
        self.progress = progress
        self.hist_years = cfg.periods.historical
        self.ssp_years = (2015, cfg.periods.future[1])
        self.era5 = era5_grid(cfg, options.era5_resolution)
        self.fine = _fine_grid(cfg, self.era5)

    def years(self, experiment: str) -> tuple[int, int]:
        return self.hist_years if experiment == "historical" else self.ssp_years

    def run(self) -> None:
        from tqdm.auto import tqdm

        cfg = self.cfg
        n_steps = 1 + len(cfg.experiments) * (1 + len(cfg.models))
        with tqdm(total=n_steps, desc="demo-data", unit="step", disable=not self.progress) as bar:
            bar.set_postfix_str("truth statics")
            truth = build_statics(self.seed)
            bar.update()
            nodes: dict[str, np.ndarray] = {}
            self._truth(truth, nodes, bar)
            self._planted_trends(truth)
            for spec in cfg.models:
                bar.set_postfix_str(spec.source_id)
                self._model(spec, truth, nodes, bar)
            if self.options.layout == "zarr-catalog":
                bar.set_postfix_str("Zarr stores")
                self._zarr_catalog()
            (self.root / "smcore.toml").write_text(config_to_toml(cfg, self.options))

    # -- truth and reference ---------------------------------------------
    def _truth(self, truth: TruthStatics, nodes: dict[str, np.ndarray], bar: Any) -> None:
        cfg, fine = self.cfg, self.fine
        on_fine = {
            "clim": sample_to(truth.climatology(), fine.lat, fine.lon),
            "amp": sample_to(truth.amp, fine.lat, fine.lon),
            "phi": sample_to(truth.phi, fine.lat, fine.lon),
            "hist": sample_to(truth.hist_trend, fine.lat, fine.lon),
        }
        change = {k: sample_to(v, fine.lat, fine.lon) for k, v in truth.change.items()}
        land = assets.land_mask(fine).values
        small = NodeLattice(scale=SMALL_SCALE, lat_min=fine.lat[0] - 3, lat_max=fine.lat[-1] + 3,
                            lon_min=fine.lon[0] - 3, lon_max=fine.lon[-1] + 3)
        blat, blon = small.bases(fine.lat, fine.lon)
        tgt_lat, tgt_lon = cfg.target.lat, cfg.target.lon
        target_land = assets.land_mask(cfg.target).values
        era5 = _Era5Writer(self.root / "era5land", self.era5, fine)

        large_state = small_state = None
        for exp in cfg.experiments:
            bar.set_postfix_str(f"truth {exp}")
            y0, y1 = self.years(exp)
            t = month_decimal_years(y0, y1)
            months = np.tile(np.arange(1, 13), y1 - y0 + 1)
            state = large_state if exp != "historical" else None
            nodes[exp] = large_scale_nodes(self.seed, exp, t.size, state)
            rng = rng_for(self.seed, "truth", "weather-small", exp)
            s_state = small_state if exp != "historical" else None
            out = np.empty((t.size, tgt_lat.size, tgt_lon.size), np.float32)
            for k, year in enumerate(range(y0, y1 + 1)):
                sl = slice(12 * k, 12 * k + 12)
                s = regrid.separable(blat, small.draw(rng, 12), blon)
                s = ar1_inplace(s, on_fine["phi"], s_state)
                s_state = s[-1].copy()
                large = LARGE_WEATHER.field(nodes[exp][sl], fine.lat, fine.lon)
                weather = W_LARGE * large + W_SMALL * s
                forced = forced_signal(exp, t[sl], months[sl], on_fine["hist"], change)
                values = on_fine["clim"] + forced + on_fine["amp"] * weather
                np.clip(values, *VALID_RANGE, out=values)
                values[:, ~land] = np.nan
                out[sl] = sample_to(values, tgt_lat, tgt_lon, fine)
                if exp == "historical":
                    era5.write(year, values)
            out[:, ~target_land] = np.nan
            if exp == "historical":
                large_state, small_state = nodes[exp][-1].copy(), s_state
            write_truth(self.root / "truth" / f"truth_{exp}.nc", out, (y0, y1), tgt_lat, tgt_lon,
                        exp, cfg, self.seed)
            if exp == "historical":
                self._ismn(out, (y0, y1))
            bar.update()

    def _ismn(self, truth: np.ndarray, years: tuple[int, int]) -> None:
        """A few synthetic ISMN stations sampled from the truth over the test years."""
        from smcore.demo.ismn import write_ismn

        period = (self.cfg.periods.test[0], years[1])
        write_ismn(self.root / "ismn", truth, years, self.cfg.target, self.seed, period)

    def _planted_trends(self, truth: TruthStatics) -> None:
        cfg = self.cfg
        ssps = [e for e in cfg.experiments if e != "historical"]
        if not ssps:
            return
        y0, y1 = self.ssp_years
        t = month_decimal_years(y0, y1)
        land = assets.land_mask(cfg.target).values
        seasons = list(SEASON_MONTHS)
        shape = (len(ssps), len(seasons), cfg.target.nlat, cfg.target.nlon)
        trends = np.full(shape, np.nan, np.float32)
        for i, exp in enumerate(ssps):
            slope = float(np.polyfit(t / 10.0, scenario_shape(exp, t), 1)[0])
            change = sample_to(truth.change[exp], cfg.target.lat, cfg.target.lon)
            for j, season in enumerate(seasons):
                idx = np.asarray(SEASON_MONTHS[season]) - 1
                trends[i, j] = np.where(land, change[idx].mean(axis=0) * slope, np.nan)
        write_planted_trends(self.root / "truth" / "planted_trends.nc", trends, ssps, seasons,
                             cfg.target.lat, cfg.target.lon, cfg, self.seed)

    # -- models ------------------------------------------------------------
    def _model(self, spec: ModelSpec, truth: TruthStatics, nodes: dict[str, np.ndarray],
               bar: Any) -> None:
        layout = layout_for(spec.source_id)
        grid = native_grid(spec, layout)
        ms = build_model_statics(self.seed, spec, grid, truth, self.options.shared_weather)
        state = None
        hist_state = None
        for exp in self.cfg.experiments:
            y0, y1 = self.years(exp)
            t = month_decimal_years(y0, y1)
            months = np.tile(np.arange(1, 13), y1 - y0 + 1)
            start = hist_state if exp != "historical" else None
            values, state = model_series(self.seed, ms, exp, t, months, nodes[exp], start)
            if exp == "historical":
                hist_state = state
            write_cmip6(self.root / "cmip6", values, (y0, y1), spec, layout, grid, exp, self.cfg,
                        rng_for(self.seed, "model", spec.source_id, "tracking", exp))
            bar.update()


    def _zarr_catalog(self) -> None:
        """Rewrite the DRS tree ``cmip6/`` as Zarr stores and an intake-esm catalog.

        The catalog names the stores by absolute ``file://`` URI (where the demo folder will
        be), so that ``intake.open_esm_datastore`` opens them too; move the folder and
        smcore still finds them (a missing absolute asset is looked up beside the catalog).
        """
        import shutil

        from smcore.demo.catalog import zarr_catalog

        tree = self.root / "cmip6"
        staged = self.root / ".cmip6-zarr"
        zarr_catalog(tree, staged, variable=self.cfg.variable, location=self.final / "cmip6")
        shutil.rmtree(tree)
        staged.rename(tree)


class _Era5Writer:
    """Put the truth (on the fine grid) on the ERA5-Land grid, one file per year."""

    def __init__(self, folder: Path, grid: GridSpec, fine: GridSpec) -> None:
        self.folder = folder
        self.grid = grid
        self.fine = fine
        self.land = assets.land_mask(grid).values
        exact = np.isclose(grid.res, fine.res) and all(
            np.allclose(a, np.round(a), atol=1e-6)
            for a in ((grid.lat - fine.lat0) / fine.res, (grid.lon - fine.lon0) / fine.res))
        self.exact = bool(exact)
        if not self.exact:
            self.wy = regrid.linear_weights(grid.lat, fine.lat)
            self.wx = regrid.linear_weights(grid.lon, fine.lon)
        fine_sea = ~assets.land_mask(fine).values
        self.fill_index = ndimage.distance_transform_edt(
            fine_sea, return_distances=False, return_indices=True)

    def write(self, year: int, values_fine: np.ndarray) -> Path:
        if self.exact:
            v = sample_to(values_fine, self.grid.lat, self.grid.lon, self.fine)
        else:
            filled = values_fine[:, self.fill_index[0], self.fill_index[1]]
            v = regrid.apply(self.wy, filled, self.wx)
        v = np.where(self.land[None], v, np.nan).astype(np.float32)
        lat_desc = self.grid.lat[::-1]
        return write_era5_year(self.folder / era5_filename(year), v[:, ::-1], year, lat_desc,
                               self.grid.lon)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def config_to_toml(cfg: Config, options: DemoOptions | None = None) -> str:
    """The configuration as TOML that :func:`smcore.config.load_config` reads back identically."""
    data = cfg.to_dict()
    lines = ["# smcore configuration matching the files written by 'smcore demo-data'"]
    if options is not None:
        lines.append(f"# seed = {options.seed}, small = {options.small}, "
                     f"era5_resolution = {options.era5_resolution}, "
                     f"shared_weather = {options.shared_weather}")
    tables: dict[str, dict[str, Any]] = {}
    arrays: dict[str, list[dict[str, Any]]] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            tables[key] = value
        elif isinstance(value, (list, tuple)) and value and isinstance(value[0], dict):
            arrays[key] = list(value)
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for name, table in tables.items():
        lines.append(f"\n[{name}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in table.items())
    for name, items in arrays.items():
        for item in items:
            lines.append(f"\n[[{name}]]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in item.items())
    return "\n".join(lines) + "\n"
