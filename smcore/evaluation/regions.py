"""The four climate regions of Feng et al. (2022), Fig. 4, defined reproducibly.

The paper names the regions (arid, semi-arid/sub-humid, humid, Tibetan Plateau) without
giving their boundaries. smcore derives them from data every run has:

1. ``tibetan_plateau``: inside the Tibetan Plateau boundary shipped offline
   (``smcore.assets.tibetan_plateau_mask``); takes precedence over the others.
2. Elsewhere on study land, the soil-moisture regime of the reference's **training-period**
   mean surface soil moisture θ̄ (Seneviratne et al. 2010, dry / transitional / wet regimes),
   with the H-TESSEL medium-texture soil constants of ERA5-Land: wilting point
   θ_pwp = 0.151 and field capacity θ_cap = 0.347 m3 m-3, critical point
   θ_crit = θ_pwp + 0.75 (θ_cap − θ_pwp) ≈ 0.298 m3 m-3:

   - ``arid``: θ̄ < θ_pwp (evaporation soil-moisture limited all year);
   - ``semi_arid_sub_humid``: θ_pwp ≤ θ̄ < θ_crit (transitional regime);
   - ``humid``: θ̄ ≥ θ_crit (energy-limited regime).

Codes: 0 outside the study land, 1 arid, 2 semi-arid/sub-humid, 3 humid, 4 Tibetan Plateau.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = [
    "REGIONS",
    "REGION_CODES",
    "THETA_WILTING",
    "THETA_FIELD_CAPACITY",
    "THETA_CRITICAL",
    "classify_regions",
    "regional_mean",
]

REGIONS: tuple[str, ...] = ("arid", "semi_arid_sub_humid", "humid", "tibetan_plateau")
REGION_CODES: dict[str, int] = {name: i + 1 for i, name in enumerate(REGIONS)}

THETA_WILTING = 0.151
"""Permanent wilting point of H-TESSEL's medium soil texture (m3 m-3)."""
THETA_FIELD_CAPACITY = 0.347
"""Field capacity of H-TESSEL's medium soil texture (m3 m-3)."""
THETA_CRITICAL = round(THETA_WILTING + 0.75 * (THETA_FIELD_CAPACITY - THETA_WILTING), 4)
"""Critical point at 75 % of the available water capacity (m3 m-3), ≈ 0.298."""


def classify_regions(
    train_mean: xr.DataArray,
    land_mask: xr.DataArray,
    plateau: xr.DataArray,
    *,
    arid_below: float = THETA_WILTING,
    humid_from: float = THETA_CRITICAL,
) -> xr.DataArray:
    """Region code of every target cell.

    Parameters
    ----------
    train_mean : xarray.DataArray
        ``(lat, lon)`` mean of the reference over the training months, m3 m-3.
    land_mask : xarray.DataArray
        ``(lat, lon)``, non-zero on the study land.
    plateau : xarray.DataArray
        ``(lat, lon)``, true (non-zero) inside the Tibetan Plateau.
    arid_below, humid_from : float
        Thresholds on ``train_mean`` (m3 m-3).

    Returns
    -------
    xarray.DataArray
        ``region(lat, lon)`` int8 with CF ``flag_values``/``flag_meanings``; 0 outside land.
    """
    if not arid_below < humid_from:
        raise ValueError(f"arid threshold {arid_below} must be below humid threshold {humid_from}")
    for name, da in (("land_mask", land_mask), ("plateau", plateau)):
        if da.shape != train_mean.shape:
            raise ValueError(f"{name} has shape {da.shape}, expected {train_mean.shape}")
    theta = np.asarray(train_mean.values, dtype=np.float64)
    land = (np.asarray(land_mask.values) != 0) & np.isfinite(theta)
    tp = np.asarray(plateau.values).astype(bool)
    code = np.zeros(theta.shape, dtype=np.int8)
    with np.errstate(invalid="ignore"):
        code[land & (theta < arid_below)] = REGION_CODES["arid"]
        code[land & (theta >= arid_below) & (theta < humid_from)] = REGION_CODES[
            "semi_arid_sub_humid"
        ]
        code[land & (theta >= humid_from)] = REGION_CODES["humid"]
    code[land & tp] = REGION_CODES["tibetan_plateau"]
    return xr.DataArray(
        code,
        dims=("lat", "lon"),
        coords={"lat": train_mean["lat"].values, "lon": train_mean["lon"].values},
        name="region",
        attrs={
            "long_name": "climate region",
            "flag_values": np.arange(len(REGIONS) + 1, dtype=np.int8),
            "flag_meanings": "outside_study_land " + " ".join(REGIONS),
            "comment": (
                "tibetan_plateau from the offline plateau boundary; elsewhere the regime of the "
                f"reference training-period mean surface soil moisture: arid < {arid_below}, "
                f"semi_arid_sub_humid < {humid_from}, humid >= {humid_from} m3 m-3"
            ),
        },
    )


def regional_mean(values: np.ndarray, lat: np.ndarray, selected: np.ndarray) -> np.ndarray:
    """Area-weighted (cos latitude) mean over the selected pixels, for each time step.

    Parameters
    ----------
    values : numpy.ndarray
        ``(time, pixel)``, m3 m-3.
    lat : numpy.ndarray
        ``(pixel,)`` latitude of each pixel, degrees_north.
    selected : numpy.ndarray
        ``(pixel,)`` boolean, the pixels of the region.

    Returns
    -------
    numpy.ndarray
        ``(time,)`` float64, m3 m-3; NaN where the region has no finite value.
    """
    x = np.asarray(values, dtype=np.float64)[:, selected]
    w = np.cos(np.deg2rad(np.asarray(lat, dtype=np.float64)[selected]))
    ok = np.isfinite(x)
    wsum = (ok * w).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(ok, x, 0.0) @ w / wsum
    return np.where(wsum > 0, out, np.nan)
