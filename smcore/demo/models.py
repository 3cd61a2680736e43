"""Synthetic Earth System Models: each sees the truth through its own grid and errs in its own way.

A model's monthly surface soil moisture (m3 m-3, before conversion to kg m-2) is

``clip(base + a·shift(seasonal, δ) + forced_i + amp_i · (ρ_i·L + √(1-ρ_i²)·own), 0.01, 0.55)``

where, on the model's native grid,

- ``base = (R[mean] + common + add_i) · g_i · mult_i``: the truth's climatology averaged
  over the model's cells (R), a bias shared by all models (too wet in the dry interior
  and on the Tibetan Plateau, too dry in the humid south: the ensemble mean keeps it), a
  model-specific additive bias field that is small in the model's "home" regions, and a
  multiplicative bias (global factor times a smooth field);
- ``shift(seasonal, δ)``: the truth's seasonal cycle with a phase error δ (months,
  smooth field) and an amplitude error ``a``;
- ``forced_i``: the truth's historical trend and planted scenario change scaled by a
  factor field, plus a spatial perturbation and an error shared by all models (trend
  errors that the ensemble mean keeps). Models of one family (:func:`family_of`: the same
  land model or institution) share most of their factor and perturbation, as related
  CMIP6 models do, so the ensemble mean leans towards the families with more members;
- weather: the model's own AR(1) weather ``own`` and, with a weight ``ρ_i``, the truth's
  large-scale weather ``L``. ``ρ_i = shared_weather · (0.2 + 0.8·home)`` (larger in the
  model's home regions). Free-running models share no month-to-month weather with the
  real world, so the default ``shared_weather`` is 0: they share only the climatology, the
  geography and the forced change. ``shared_weather = 0.5`` gives ρ_i of 0.1…0.5, the demo
  of smcore ≤ 0.1 (``smcore demo-data --shared-weather 0.5``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smcore.config import ModelSpec
from smcore.demo import regrid
from smcore.demo.layout import NativeGrid
from smcore.demo.noise import NodeLattice, ar1_inplace, rng_for
from smcore.demo.truth import (
    GEO,
    LARGE_WEATHER,
    SCENARIOS,
    VALID_RANGE,
    TruthStatics,
    forced_signal,
)

__all__ = [
    "ModelStatics",
    "build_model_statics",
    "common_bias",
    "common_trend_error",
    "model_series",
    "OUTSIDE_MEAN",
    "family_of",
]

OUTSIDE_MEAN = 0.22
"""Placeholder climatology (m3 m-3) of global model cells beyond the truth's geography grid."""

OWN_WEATHER_SCALE = 3.5
"""Kernel scale (degrees) of a model's own weather."""

FAMILY_ALIASES: dict[str, str] = {
    "CSIRO-ARCCSS": "CSIRO",  # ACCESS-CM2 and ACCESS-ESM1-5 share their land model (CABLE)
    "NCC": "NCAR",  # NorESM2 runs NCAR's land model (CLM5)
    "NIMS-KMA": "MOHC",  # KACE-1-0-G is built on the Met Office's HadGEM3
}
"""Institutions whose models belong to another institution's family (see :func:`family_of`)."""

FAMILY_SHARE = 0.8
"""Share of a model's trend-factor spread (in log terms) that its family has in common."""


def family_of(spec: ModelSpec) -> str:
    """The family of a model: its institution, or the institution whose land model it runs."""
    return FAMILY_ALIASES.get(spec.institution_id, spec.institution_id)


def common_bias(truth: TruthStatics) -> np.ndarray:
    """Bias (m3 m-3) shared by every model, on the truth's grid.

    Too wet in the dry interior (arid north-west, Mongolia) and on the Tibetan
    Plateau, too dry in the humid south, slightly too wet overall (a 10 cm model layer
    against the reference's 7 cm).
    """
    assert truth.humid is not None and truth.boreal is not None and truth.tibet is not None
    lat = truth.lat[:, None]
    dry_interior = (1 - truth.humid) * (1 - truth.boreal)
    humid_south = truth.humid / (1 + np.exp(-(30.0 - lat) / 2.0))
    bias = 0.015 + 0.10 * dry_interior + 0.06 * truth.tibet - 0.08 * humid_south
    return bias.astype(np.float32)


def common_trend_error(truth: TruthStatics) -> np.ndarray:
    """Relative error (fraction of the mean state) of the 2015→2100 change shared by all models.

    Scaled by each scenario's forcing. The models under-estimate the north-eastern
    wetting and the southern drying and dry the Tibetan Plateau too much, so that the
    ensemble mean does not reproduce the planted trends either.
    """
    assert truth.humid is not None and truth.tibet is not None
    lat2, lon2 = np.meshgrid(truth.lat, truth.lon, indexing="ij")
    north_east = np.exp(-0.5 * (((lon2 - 123.0) / 8.0) ** 2 + ((lat2 - 44.0) / 5.0) ** 2))
    humid_south = truth.humid / (1 + np.exp(-(30.0 - lat2) / 2.0))
    error = -0.12 * truth.tibet - 0.10 * north_east + 0.07 * humid_south
    return (error * truth.mean).astype(np.float32)


@dataclass
class ModelStatics:
    """Static fields of one model on its native grid (dims lat ascending, lon).

    Monthly fields have a leading month dim (12). Units m3 m-3 (trends per decade,
    changes 2015→2100). ``rho`` is the weight of the truth's large-scale weather,
    ``phi`` the AR(1) coefficient of the model's own weather, ``lattice`` the node
    lattice of its own weather.
    """

    source_id: str
    grid: NativeGrid
    clim: np.ndarray
    amp: np.ndarray
    hist_trend: np.ndarray
    change: dict[str, np.ndarray]
    rho: np.ndarray
    phi: np.ndarray
    lattice: NodeLattice


def _geo_operator(grid: NativeGrid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    wy = regrid.area_weights(grid.lat_bounds, regrid.edges_from_centres(GEO.lat))
    wx = regrid.area_weights(grid.lon_bounds, regrid.edges_from_centres(GEO.lon), period=360.0)
    inside = (wy.sum(axis=1) > 0)[:, None] & (wx.sum(axis=1) > 0)[None, :]
    return wy, wx, inside


def _smooth(seed: int, source_id: str, name: str, scale: float, grid: NativeGrid) -> np.ndarray:
    lattice = NodeLattice(scale=scale)
    rng = rng_for(seed, "model", source_id, name)
    return lattice.field(lattice.draw(rng), grid.lat, grid.lon)


def _shift_months(seasonal: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Delay a seasonal cycle (12, …) by ``shift`` months (…) using its harmonics."""
    spec = np.fft.rfft(seasonal, axis=0)
    k = np.arange(spec.shape[0]).reshape((-1,) + (1,) * shift.ndim)
    spec = spec * np.exp(-2j * np.pi * k * shift[None] / 12.0)
    return np.fft.irfft(spec, n=12, axis=0).astype(np.float32)


def build_model_statics(seed: int, spec: ModelSpec, grid: NativeGrid,
                        truth: TruthStatics, shared_weather: float = 0.0) -> ModelStatics:
    """Everything static about one model: the truth seen through its grid, plus its errors.

    ``shared_weather`` (0 … <1) scales the weight of the truth's large-scale weather in the
    model's weather (see the module docstring).
    """
    sid = spec.source_id
    fam = family_of(spec)
    rng = rng_for(seed, "model", sid, "scalars")
    g_factor = float(np.exp(rng.normal(0.0, 0.15)))
    offset = float(rng.normal(0.0, 0.02))
    season_amp = float(rng.uniform(0.6, 1.4))
    season_shift = float(rng.normal(0.0, 0.5))
    weather_amp = float(rng.uniform(0.7, 1.4))
    own_trend = float(rng.normal(0.0, 0.4))
    phi_offset = float(rng.normal(0.0, 0.08))
    family_trend = float(rng_for(seed, "family", fam, "trend-factor").normal(0.0, 0.4))
    trend_factor = float(np.exp(np.sqrt(FAMILY_SHARE) * family_trend
                                + np.sqrt(1.0 - FAMILY_SHARE) * own_trend))

    wy, wx, inside = _geo_operator(grid)

    def seen(a: np.ndarray, outside: float) -> np.ndarray:
        return np.where(inside, regrid.apply(wy, a, wx), np.float32(outside)).astype(np.float32)

    home = 1.0 / (1.0 + np.exp(-2.0 * _smooth(seed, sid, "home", 8.0, grid)))
    add = 0.04 * _smooth(seed, sid, "bias-add", 5.0, grid) * (1.0 - 0.75 * home) + offset
    mult = np.exp(0.15 * _smooth(seed, sid, "bias-mult", 8.0, grid))
    base = (seen(truth.mean, OUTSIDE_MEAN) + seen(common_bias(truth), 0.0) + add) * g_factor * mult
    base = np.clip(base, 0.03, 0.5)

    shift = season_shift + 0.6 * _smooth(seed, sid, "season-shift", 6.0, grid)
    amp_field = season_amp * np.exp(0.2 * _smooth(seed, sid, "season-amp", 6.0, grid))
    seasonal = _shift_months(seen(truth.seasonal, 0.0), shift) * amp_field[None]

    def shared(name: str, scale: float) -> np.ndarray:
        """A smooth field mostly common to the model's family, partly its own."""
        lattice = NodeLattice(scale=scale)
        own = lattice.field(lattice.draw(rng_for(seed, "model", sid, name)), grid.lat, grid.lon)
        common = lattice.field(lattice.draw(rng_for(seed, "family", fam, name)), grid.lat, grid.lon)
        return np.sqrt(FAMILY_SHARE) * common + np.sqrt(1.0 - FAMILY_SHARE) * own

    k = trend_factor * np.exp(0.3 * shared("trend-factor", 8.0))
    pert = 0.08 * shared("trend-pert", 6.0) * base
    pert = pert + seen(common_trend_error(truth), 0.0)
    hist = seen(truth.hist_trend, 0.0) * k + 0.001 * _smooth(seed, sid, "hist-pert", 6.0, grid)
    change = {
        name: (seen(truth.change[name], 0.0) * k[None] + (pert * sc.forcing)[None])
        .astype(np.float32)
        for name, sc in SCENARIOS.items() if name in truth.change
    }

    amp = seen(truth.amp, 0.02) * np.float32(weather_amp)
    rho = shared_weather * (0.2 + 0.8 * home)
    phi = np.clip(seen(truth.phi, 0.45) + phi_offset, 0.1, 0.85)

    lat_span = (grid.lat[0] - 4 * OWN_WEATHER_SCALE, grid.lat[-1] + 4 * OWN_WEATHER_SCALE)
    lon_span = float(np.ptp(grid.lon)) + np.abs(np.diff(grid.lon_bounds[0]))[0]
    if lon_span >= 359.0:
        lattice = NodeLattice(scale=OWN_WEATHER_SCALE, lat_min=lat_span[0], lat_max=lat_span[1])
    else:
        lattice = NodeLattice(scale=OWN_WEATHER_SCALE, lat_min=lat_span[0], lat_max=lat_span[1],
                              lon_min=float(grid.lon[0]) - 4 * OWN_WEATHER_SCALE,
                              lon_max=float(grid.lon[-1]) + 4 * OWN_WEATHER_SCALE)

    return ModelStatics(
        source_id=sid, grid=grid, clim=(base[None] + seasonal).astype(np.float32),
        amp=amp.astype(np.float32), hist_trend=hist.astype(np.float32), change=change,
        rho=rho.astype(np.float32), phi=phi.astype(np.float32), lattice=lattice,
    )


def model_series(
    seed: int,
    ms: ModelStatics,
    experiment: str,
    decimal_years: np.ndarray,
    months: np.ndarray,
    large_nodes: np.ndarray,
    state: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Monthly soil moisture (time, lat, lon) in m3 m-3 of one model and experiment.

    ``large_nodes`` are the truth's large-scale weather nodes for the same months;
    ``state`` is the model's own weather at the month before (to continue historical
    into an SSP). Ocean cells (the model's own mask) are NaN. Returns the series and
    the own-weather state after its last month.
    """
    g = ms.grid
    rng = rng_for(seed, "model", ms.source_id, "weather", experiment)
    own = ms.lattice.field(ms.lattice.draw(rng, len(months)), g.lat, g.lon)
    own = ar1_inplace(own.astype(np.float32), ms.phi, state)
    new_state = own[-1].copy()

    shared = LARGE_WEATHER.field(large_nodes, g.lat, g.lon).astype(np.float32)
    reach = (np.abs(shared).max(axis=0) > 0) if shared.shape[0] else np.zeros(g.shape, bool)
    rho = np.where(reach, ms.rho, 0.0).astype(np.float32)
    weather = rho[None] * shared + np.sqrt(1.0 - rho**2)[None] * own

    idx = np.asarray(months) - 1
    forced = forced_signal(experiment, decimal_years, months, ms.hist_trend, ms.change)
    values = ms.clim[idx] + forced + ms.amp[idx] * weather
    np.clip(values, *VALID_RANGE, out=values)
    values[:, ~g.land] = np.nan
    return values.astype(np.float32), new_state
