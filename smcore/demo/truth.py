"""The synthetic truth: surface soil moisture (m3 m-3) built on real geography.

The truth is the sum of

- an annual-mean climatology shaped by aridity and elevation: the East-Asian monsoon
  boundary (roughly the 400 mm isohyet), a humid south, the Taklamakan/Gobi/Qaidam
  deserts, wetter mountains in the arid north-west, boreal moisture in the north, plus
  a static 0.25°-scale texture (valleys wetter than ridges, random soil patterns) that
  no coarse model resolves;
- a seasonal cycle: East-Asian summer monsoon (peak from June in the south to August in
  the north-east; a dry winter/spring in the south-west), snowmelt and thaw in spring
  where it is cold (north-east, Tibetan Plateau, Tianshan);
- forced changes: a small historical trend (1950–2014; drying in North China) and, from
  2015, the planted scenario changes (north wetting, south drying, north-west and
  Tibetan Plateau from wetting under SSP1-2.6 to drying under SSP5-8.5), growing with
  forcing, with seasonal structure (northern spring drying / summer wetting, southern
  winter and summer drying);
- weather: monthly anomalies, spatially correlated (a large scale, ~5°, that models
  share weakly, plus a small scale, ~1°, they never see), AR(1) in time (soil-moisture
  memory), amplitude largest in the semi-arid transition zone and in the wet season.

Static fields live on the geography grid :data:`GEO` (0.25°, 10°S–80°N, 30–170°E) so
that every model's native grid can see them through area averages. All functions are
pure numpy; randomness comes from :func:`smcore.demo.noise.rng_for`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from smcore import assets
from smcore.config import GridSpec
from smcore.demo import regrid
from smcore.demo.noise import NodeLattice, ar1_inplace, rng_for

__all__ = [
    "GEO",
    "SCENARIOS",
    "VALID_RANGE",
    "LARGE_WEATHER",
    "Scenario",
    "TruthStatics",
    "build_statics",
    "scenario_shape",
    "planted_trend_per_decade",
    "large_scale_nodes",
    "month_decimal_years",
    "forced_signal",
    "sample_to",
]

GEO = GridSpec(lat0=-10.0, lon0=30.0, res=0.25, nlat=361, nlon=561)
"""Grid on which the truth's static fields are built (10°S–80°N, 30–170°E)."""

VALID_RANGE = (0.01, 0.55)
"""Physical bounds (m3 m-3) the truth and the models are clipped to."""

HIST_REFERENCE_YEAR = 1995.0
"""The climatology is the mean state around this year; the historical trend pivots on it."""

SSP_START = 2015.0
SSP_END = 2100.0

LARGE_WEATHER = NodeLattice(scale=3.5, lat_min=-20.0, lat_max=88.0, lon_min=20.0, lon_max=180.0)
"""Lattice of the large-scale weather (correlation length ~5°) shared weakly with the models."""
PHI_LARGE = 0.55
"""Month-to-month autocorrelation of the large-scale weather."""
SMALL_SCALE = 0.6
"""Kernel scale (degrees) of the small-scale weather that only the truth has."""
W_LARGE, W_SMALL = 0.8, 0.6
"""Weights of the large and small weather components (0.8² + 0.6² = 1)."""

# The humid side of the East-Asian monsoon boundary (≈ 400 mm isohyet), west to east.
_ISOHYET = [
    (30.0, 31.0), (60.0, 30.0), (70.0, 31.0), (75.0, 30.0), (80.0, 29.5), (86.0, 28.3),
    (90.0, 29.3), (92.0, 31.0), (96.0, 32.5), (100.0, 34.0), (104.0, 36.0), (108.0, 38.5),
    (112.0, 40.5), (116.0, 42.0), (119.0, 45.0), (121.0, 48.5), (124.0, 52.0), (130.0, 56.0),
    (140.0, 60.0), (175.0, 62.0),
]

# Arid cores: (lon, lat, sigma_lon, sigma_lat, depth in m3 m-3).
_ARID_CORES = [
    (83.0, 39.0, 6.0, 2.3, 0.075),  # Taklamakan
    (101.0, 41.5, 6.5, 2.5, 0.055),  # Alxa / Badain Jaran / Gobi
    (109.0, 43.0, 5.0, 2.0, 0.030),  # eastern Gobi
    (94.5, 37.3, 2.5, 1.2, 0.050),  # Qaidam basin
    (90.0, 42.5, 4.0, 1.5, 0.035),  # Turpan-Hami
    (86.5, 45.5, 3.0, 1.2, 0.025),  # Gurbantünggüt (Junggar)
    (62.0, 41.0, 8.0, 4.0, 0.060),  # Kyzylkum / Karakum
    (70.0, 27.0, 4.0, 3.0, 0.080),  # Thar / Indus
    (50.0, 24.0, 10.0, 6.0, 0.090),  # Arabia
    (75.0, 36.0, 3.0, 2.0, 0.030),  # Karakoram rain shadow
]

# Monthly multipliers of the scenario change (mean 1 after normalisation), Jan..Dec.
_NORTH_MONTHS = np.array([0.6, 0.4, -0.2, -0.6, -0.8, 0.8, 1.8, 2.4, 1.6, 1.0, 0.8, 0.7])
_SOUTH_MONTHS = np.array([2.0, 1.2, 0.3, 0.0, 0.3, 1.5, 1.8, 1.6, 0.6, 0.2, 0.8, 2.0])
_WEST_MONTHS = np.array([0.9, 0.9, 1.2, 1.2, 1.1, 1.0, 1.0, 1.0, 1.0, 0.9, 0.9, 0.9])


@dataclass(frozen=True)
class Scenario:
    """Planted change of one SSP.

    ``forcing`` scales the eastern north-wetting/south-drying pattern, ``west`` is the
    relative change of the north-west and the Tibetan Plateau by 2100, ``south_lat`` the
    latitude of the strongest southern drying and ``power`` the time shape of the change
    (< 1: early and levelling off, > 1: accelerating).
    """

    forcing: float
    west: float
    south_lat: float
    power: float


SCENARIOS: dict[str, Scenario] = {
    "ssp126": Scenario(forcing=0.60, west=+0.25, south_lat=33.0, power=0.6),
    "ssp245": Scenario(forcing=0.75, west=+0.10, south_lat=32.0, power=1.1),
    "ssp370": Scenario(forcing=0.90, west=-0.15, south_lat=31.0, power=1.35),
    "ssp585": Scenario(forcing=1.00, west=-0.28, south_lat=30.0, power=1.6),
}


@dataclass
class TruthStatics:
    """Static fields of the truth on a grid (dims lat, lon; month first where monthly).

    ``mean`` (m3 m-3), ``seasonal`` (12, …) anomalies (m3 m-3, zero mean over months),
    ``amp`` (12, …) weather standard deviation (m3 m-3), ``phi`` AR(1) coefficient of
    the small-scale weather, ``hist_trend`` (m3 m-3 per decade), ``change`` per SSP
    (12, …) total change from 2015 to 2100 (m3 m-3). Drivers used to build model
    biases: ``humid``, ``arid``, ``boreal``, ``tibet`` (0…1). Sea cells hold the value
    of the nearest land so that area averages near coasts stay sensible; ``land`` says
    which cells are land.
    """

    lat: np.ndarray
    lon: np.ndarray
    land: np.ndarray
    mean: np.ndarray
    seasonal: np.ndarray
    amp: np.ndarray
    phi: np.ndarray
    hist_trend: np.ndarray
    change: dict[str, np.ndarray] = field(default_factory=dict)
    humid: np.ndarray | None = None
    arid: np.ndarray | None = None
    boreal: np.ndarray | None = None
    tibet: np.ndarray | None = None

    def climatology(self) -> np.ndarray:
        """Monthly climatology ``mean + seasonal`` (12, lat, lon), m3 m-3."""
        return self.mean[None] + self.seasonal


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _bump(lon2: np.ndarray, lat2: np.ndarray, lon0: float, lat0: float, slon: float,
          slat: float) -> np.ndarray:
    return np.exp(-0.5 * (((lon2 - lon0) / slon) ** 2 + ((lat2 - lat0) / slat) ** 2))


def _humid_side(lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    """Signed distance (degrees) to the monsoon boundary, positive on the humid side."""
    import shapely

    line = shapely.LineString(_ISOHYET)
    humid = shapely.Polygon(_ISOHYET + [(175.0, -30.0), (30.0, -30.0)])
    pts = shapely.points(lon2.ravel(), lat2.ravel())
    dist = shapely.distance(pts, line).reshape(lon2.shape)
    inside = shapely.contains_xy(humid, lon2, lat2)
    return np.where(inside, dist, -dist)


def _smooth(a: np.ndarray, sigma_deg: float, res: float) -> np.ndarray:
    return ndimage.gaussian_filter(a, sigma_deg / res, mode="nearest")


def _periodic_month_distance(m: np.ndarray, peak: np.ndarray) -> np.ndarray:
    return (m - peak + 6.0) % 12.0 - 6.0


def _seasonal_cycle(mean: np.ndarray, lon2: np.ndarray, lat2: np.ndarray, elev: np.ndarray,
                    humid: np.ndarray, tibet: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Seasonal anomalies (12, …) and a snow/frozen-soil index (0…1)."""
    months = np.arange(1, 13, dtype=float)[:, None, None]
    peak = 6.0 + np.clip((lat2 - 22.0) / 8.0, 0.0, 2.5)
    phase = 2 * np.pi * (months - peak[None]) / 12.0
    monsoon = np.cos(phase) + 0.3 * np.cos(2 * phase)
    south_west = _bump(lon2, lat2, 101.0, 24.5, 4.0, 3.0)
    india = _logistic((27.0 - lat2) / 1.5) * _logistic((95.0 - lon2) / 2.0)
    rel_monsoon = (0.10 + 0.22 * humid * _logistic((lat2 - 30.0) / 3.0)
                   + 0.20 * south_west + 0.18 * india + 0.05 * tibet)
    snow = _logistic((lat2 - 41.0) / 3.0) + _logistic((elev - 2800.0) / 500.0) + 0.3 * tibet
    snow = np.clip(snow, 0.0, 1.0)
    melt_peak = np.clip(3.3 + 0.07 * (lat2 - 35.0) + elev / 3000.0, 3.0, 5.5)
    d = _periodic_month_distance(months, melt_peak[None])
    melt = np.exp(-0.5 * (d / 1.0) ** 2)
    melt -= melt.mean(axis=0, keepdims=True)
    seasonal = mean[None] * (rel_monsoon[None] * monsoon + 0.55 * snow[None] * melt)
    # Keep the driest month at >= 40 % of the annual mean.
    low = -seasonal.min(axis=0)
    scale = np.clip(np.divide(0.6 * mean, low, out=np.ones_like(low), where=low > 0), 0.0, 1.0)
    return (seasonal * scale[None]).astype(np.float32), snow


def _scenario_change(mean: np.ndarray, lon2: np.ndarray, lat2: np.ndarray,
                     sc: Scenario) -> np.ndarray:
    """Total change 2015→2100 (12, …) in m3 m-3 for one scenario."""
    north = _logistic((lat2 - 35.0) / 1.5)
    west = _logistic((100.0 - lon2) / 4.0)
    mn = (_NORTH_MONTHS / _NORTH_MONTHS.mean())[:, None, None]
    ms = (_SOUTH_MONTHS / _SOUTH_MONTHS.mean())[:, None, None]
    mw = (_WEST_MONTHS / _WEST_MONTHS.mean())[:, None, None]
    south_profile = 0.5 + 0.5 * np.exp(-(((lat2 - sc.south_lat) / 3.0) ** 2))
    wetting = north[None] * (0.22 * sc.forcing) * mn
    drying = (1 - north[None]) * (-0.14 * sc.forcing) * south_profile[None] * ms
    east = wetting + drying
    rel = west[None] * sc.west * mw + (1 - west[None]) * east
    return (rel * mean[None]).astype(np.float32)


def build_statics(seed: int) -> TruthStatics:
    """Build the truth's static fields on :data:`GEO` from the assets and the seed."""
    g = GEO
    lat2, lon2 = np.meshgrid(g.lat, g.lon, indexing="ij")
    land = assets.land_mask(g).values
    elev = assets.elevation(g).values.astype(float)
    tibet = _smooth(assets.tibetan_plateau_mask(g).values.astype(float), 0.5, g.res)

    humid = _logistic(_humid_side(lon2, lat2) / 2.5)
    south = 0.5 + 0.5 * _logistic((33.0 - lat2) / 3.0)
    boreal = _logistic((lat2 - 50.0) / 2.5)
    arid_depth = sum(_bump(lon2, lat2, x, y, sx, sy) * d for x, y, sx, sy, d in _ARID_CORES)
    relief = elev - _smooth(elev, 2.0, g.res)
    orography = 0.05 * np.tanh(relief / 1200.0) * (1.0 - 0.6 * humid)
    high = _logistic((elev - 3500.0) / 400.0)

    m0 = (0.12 + 0.26 * humid * south + 0.14 * boreal * (1 - humid)
          - arid_depth * (1 - 0.7 * humid) + orography - 0.02 * high)

    # Static 0.25°-scale texture: random soil patterns and valley/ridge contrasts.
    rng = rng_for(seed, "truth", "texture")
    lattice = NodeLattice(scale=0.35, lat_min=g.lat[0] - 2, lat_max=g.lat[-1] + 2,
                          lon_min=g.lon[0] - 2, lon_max=g.lon[-1] + 2)
    texture_noise = lattice.field(lattice.draw(rng), g.lat, g.lon)
    fine_relief = elev - _smooth(elev, 0.5, g.res)
    texture = 0.035 * texture_noise * (0.25 + m0) - 0.02 * np.tanh(fine_relief / 300.0)
    mean = np.clip(m0 + texture, 0.03, 0.47)

    seasonal, snow = _seasonal_cycle(mean, lon2, lat2, elev, humid, tibet)

    amp0 = 0.09 * mean * (1 - mean / 0.7) + 0.02 * np.exp(-(((mean - 0.22) / 0.08) ** 2))
    wet_season = seasonal / np.maximum(np.abs(seasonal).max(axis=0, keepdims=True), 1e-6)
    amp = (amp0[None] * np.clip(1.0 + 0.5 * wet_season, 0.3, None)).astype(np.float32)
    phi = (0.35 + 0.25 * snow + 0.10 * (1 - humid)).astype(np.float32)

    rng = rng_for(seed, "truth", "hist-trend")
    wiggle = NodeLattice(scale=5.0, lat_min=g.lat[0] - 5, lat_max=g.lat[-1] + 5,
                         lon_min=g.lon[0] - 5, lon_max=g.lon[-1] + 5)
    hist = (-0.004 * _bump(lon2, lat2, 112.0, 37.0, 6.0, 4.0)
            + 0.002 * _bump(lon2, lat2, 85.0, 43.0, 8.0, 4.0)
            + 0.0015 * wiggle.field(wiggle.draw(rng), g.lat, g.lon)) * (mean / 0.25)

    change = {name: _scenario_change(mean, lon2, lat2, sc) for name, sc in SCENARIOS.items()}

    statics = TruthStatics(
        lat=g.lat, lon=g.lon, land=land, mean=mean.astype(np.float32), seasonal=seasonal,
        amp=amp, phi=phi, hist_trend=hist.astype(np.float32), change=change,
        humid=humid.astype(np.float32), arid=np.clip(arid_depth / 0.075, 0, 1).astype(np.float32),
        boreal=boreal.astype(np.float32), tibet=tibet.astype(np.float32),
    )
    return _fill_sea(statics)


def _fill_sea(s: TruthStatics) -> TruthStatics:
    """Give sea cells the values of the nearest land cell (keeps coastal averages sensible)."""
    sea = ~s.land
    if not sea.any():
        return s
    idx = ndimage.distance_transform_edt(sea, return_distances=False, return_indices=True)
    take = (idx[0], idx[1])

    def fill(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a[..., take[0], take[1]])

    s.mean, s.seasonal, s.amp, s.phi, s.hist_trend = (
        fill(s.mean), fill(s.seasonal), fill(s.amp), fill(s.phi), fill(s.hist_trend))
    s.change = {k: fill(v) for k, v in s.change.items()}
    return s


def scenario_shape(name: str, decimal_year: np.ndarray) -> np.ndarray:
    """Fraction (0 in 2015, 1 in 2100) of the scenario's total change reached at each time."""
    sc = SCENARIOS[name]
    x = np.clip((np.asarray(decimal_year, float) - SSP_START) / (SSP_END - SSP_START), 0.0, None)
    if sc.power < 1:
        # Early rise that levels off (low forcing): 1 - (1 - x)^(1/p) on [0, 1].
        return 1.0 - np.clip(1.0 - x, 0.0, None) ** (1.0 / sc.power)
    return x**sc.power


def planted_trend_per_decade(name: str) -> float:
    """Least-squares slope (per decade) of :func:`scenario_shape` over monthly 2015–2100.

    The planted linear trend of a scenario's forced signal is ``change × this``.
    """
    t = month_decimal_years(int(SSP_START), int(SSP_END))
    y = scenario_shape(name, t)
    return float(np.polyfit(t / 10.0, y, 1)[0])


def month_decimal_years(y0: int, y1: int) -> np.ndarray:
    """Mid-month decimal years of every month from January y0 to December y1."""
    years = np.repeat(np.arange(y0, y1 + 1), 12)
    months = np.tile(np.arange(12), y1 - y0 + 1)
    return years + (months + 0.5) / 12.0


def forced_signal(experiment: str, decimal_year: np.ndarray, months: np.ndarray,
                  hist_trend: np.ndarray, change: dict[str, np.ndarray] | None) -> np.ndarray:
    """Forced anomaly (time, lat, lon) in m3 m-3 for the given months.

    Historical: ``hist_trend × (year - 1995) / 10``. SSPs: the historical anomaly of
    2015 held constant plus ``change[month] × scenario_shape(year)``.
    """
    t = np.asarray(decimal_year, float)
    if experiment == "historical":
        decades = ((t - HIST_REFERENCE_YEAR) / 10.0)[:, None, None]
        return (hist_trend[None] * decades).astype(np.float32)
    if change is None or experiment not in change:
        raise KeyError(f"no planted change for experiment {experiment!r}")
    held = hist_trend * ((SSP_START - HIST_REFERENCE_YEAR) / 10.0)
    shape = scenario_shape(experiment, t)[:, None, None]
    return (held[None] + change[experiment][np.asarray(months) - 1] * shape).astype(np.float32)


def large_scale_nodes(seed: int, experiment: str, n_months: int,
                      state: np.ndarray | None = None) -> np.ndarray:
    """Node weights (time, *LARGE_WEATHER.shape) of the large-scale weather, AR(1) in time.

    Evaluate on any grid with ``LARGE_WEATHER.field(nodes, lat, lon)`` (unit variance).
    ``state`` continues a series (an SSP branching from the end of historical).
    """
    rng = rng_for(seed, "truth", "weather-large", experiment)
    w = LARGE_WEATHER.draw(rng, n_months)
    return ar1_inplace(w, PHI_LARGE, state)


def sample_to(field_geo: np.ndarray, lat: np.ndarray, lon: np.ndarray,
              grid: GridSpec = GEO) -> np.ndarray:
    """Sample fields on ``grid`` (…, nlat, nlon) at the ascending ``lat`` × ``lon`` points.

    Points that are cell centres of ``grid`` are picked exactly; others are interpolated
    bilinearly.
    """
    ilat = (np.asarray(lat, float) - grid.lat0) / grid.res
    ilon = (np.asarray(lon, float) - grid.lon0) / grid.res
    on_lattice = (np.allclose(ilat, np.round(ilat), atol=1e-6)
                  and np.allclose(ilon, np.round(ilon), atol=1e-6))
    inside = (ilat.min() >= 0 and ilon.min() >= 0
              and ilat.max() < grid.nlat and ilon.max() < grid.nlon)
    if on_lattice and inside:
        rows = np.round(ilat).astype(int)[:, None]
        cols = np.round(ilon).astype(int)[None, :]
        return np.ascontiguousarray(field_geo[..., rows, cols])
    wy = regrid.linear_weights(lat, grid.lat)
    wx = regrid.linear_weights(lon, grid.lon)
    return regrid.apply(wy, field_geo, wx)
