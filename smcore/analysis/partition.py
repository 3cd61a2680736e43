"""Where the spread of a projection comes from: model, scenario and internal variability.

Hawkins and Sutton (2009, BAMS 90, 1095–1107), applied to regional annual means of the
bias-corrected models. For model ``m``, scenario ``s`` and year ``t`` the series
``X[m, s, t]`` (m3 m-3) is taken as a departure from the model's own mean over the baseline
years, and split into a smooth forced response ``x[m, s, t]`` (a polynomial of degree
:data:`POLY_DEGREE` in time, least squares over the projection years) and a residual:

- internal variability ``I``: the variance of the residuals, averaged over models and
  scenarios (one number, constant in time);
- model uncertainty ``M(t)``: the variance across models of ``x``, averaged over scenarios;
- scenario uncertainty ``S(t)``: the variance across scenarios of the multi-model mean of
  ``x``.

All variances are population ones (1/n). ``T = I + M + S``; the fractions are each part over
``T``. With one scenario ``S`` is 0; with one model ``M`` is 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

__all__ = [
    "POLY_DEGREE",
    "PARTITION_COLUMNS",
    "PARTITION_FRACTIONS",
    "Partition",
    "smooth_response",
    "partition_variance",
    "partition_table",
]

POLY_DEGREE = 4
"""Degree of the polynomial fitted as the forced response, as Hawkins and Sutton (2009)."""


def smooth_response(series: np.ndarray, years: np.ndarray, degree: int = POLY_DEGREE) -> np.ndarray:
    """Least-squares polynomial of ``degree`` in time, per series: (..., year) → (..., year).

    Series with a missing year are NaN throughout.
    """
    y = np.asarray(series, dtype=np.float64)
    t = np.asarray(years, dtype=np.float64)
    if y.shape[-1] != t.size:
        raise ValueError(f"series have {y.shape[-1]} years, expected {t.size}")
    if t.size <= degree:
        raise ValueError(f"{t.size} years cannot determine a polynomial of degree {degree}")
    x = (t - t.mean()) / max(float(np.ptp(t)), 1.0)  # well-conditioned Vandermonde
    basis = np.vander(x, degree + 1)
    flat = y.reshape(-1, t.size)
    ok = np.isfinite(flat).all(axis=1)
    out = np.full_like(flat, np.nan)
    if ok.any():
        coef, *_ = np.linalg.lstsq(basis, flat[ok].T, rcond=None)
        out[ok] = (basis @ coef).T
    return out.reshape(y.shape)


@dataclass(frozen=True)
class Partition:
    """Variance parts per year, (m3 m-3)²: ``internal`` (constant), ``model``, ``scenario``."""

    years: np.ndarray
    internal: np.ndarray
    model: np.ndarray
    scenario: np.ndarray

    @property
    def total(self) -> np.ndarray:
        return self.internal + self.model + self.scenario

    def fractions(self) -> dict[str, np.ndarray]:
        """Each part's share of the total per year (NaN where the total is 0)."""
        total = self.total
        with np.errstate(invalid="ignore", divide="ignore"):
            return {k: np.where(total > 0, getattr(self, k) / total, np.nan)
                    for k in ("internal", "model", "scenario")}


def partition_variance(
    series: np.ndarray, years: np.ndarray, baseline: np.ndarray | None = None,
    degree: int = POLY_DEGREE,
) -> Partition:
    """Hawkins–Sutton partition of ``series`` (model, scenario, year), m3 m-3.

    ``baseline`` (model,): each model's mean over the baseline years, subtracted first (None:
    the series are departures already). Models or (model, scenario) series with a missing year
    are left out of the averages.
    """
    x = np.asarray(series, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"series must be (model, scenario, year), got shape {x.shape}")
    if baseline is not None:
        x = x - np.asarray(baseline, dtype=np.float64)[:, None, None]
    smooth = smooth_response(x, years, degree)
    ok = np.isfinite(smooth).all(axis=-1)  # (model, scenario)
    if not ok.any():
        raise ValueError("no complete (model, scenario) series to partition")
    resid = x - smooth
    internal = float(np.mean(np.var(resid[ok], axis=-1)))
    keep = ok.all(axis=1)  # models with every scenario: the across-model spreads compare alike
    if not keep.any():
        raise ValueError("no model has a complete series for every scenario")
    fit = smooth[keep]  # (model, scenario, year)
    model = np.var(fit, axis=0).mean(axis=0)
    scenario = np.var(fit.mean(axis=0), axis=0)
    n = np.asarray(years).size
    return Partition(years=np.asarray(years), internal=np.full(n, internal), model=model,
                     scenario=scenario)


PARTITION_FRACTIONS = ("internal_fraction", "model_fraction", "scenario_fraction")
"""The share columns of :func:`partition_table`, in the order they stack."""

PARTITION_COLUMNS = (
    "region", "year", "internal", "model", "scenario", "total",
    "internal_fraction", "model_fraction", "scenario_fraction", "n_models", "n_scenarios",
)


def partition_table(annual: xr.DataArray, baseline: xr.DataArray) -> pd.DataFrame:
    """The Hawkins–Sutton partition of every region, one row per region and year.

    Parameters
    ----------
    annual : DataArray (model, scenario, region, year)
        Annual regional means of the bias-corrected models, m3 m-3.
    baseline : DataArray (model, region)
        Each model's mean over the baseline years (its historical run), m3 m-3: the
        departures from it cancel the model's bias correction, a constant per model.

    Returns
    -------
    DataFrame with :data:`PARTITION_COLUMNS`: variances in (m3 m-3)², fractions of the total.
    """
    annual = annual.transpose("model", "scenario", "region", "year")
    years = annual["year"].values
    rows = []
    for region in annual["region"].values:
        part = partition_variance(annual.sel(region=region).values, years,
                                  baseline.sel(region=region).values)
        fractions = part.fractions()
        for k, year in enumerate(years):
            rows.append({
                "region": str(region), "year": int(year),
                "internal": part.internal[k], "model": part.model[k],
                "scenario": part.scenario[k], "total": part.total[k],
                "internal_fraction": fractions["internal"][k],
                "model_fraction": fractions["model"][k],
                "scenario_fraction": fractions["scenario"][k],
                "n_models": annual.sizes["model"], "n_scenarios": annual.sizes["scenario"],
            })
    return pd.DataFrame(rows, columns=list(PARTITION_COLUMNS))
