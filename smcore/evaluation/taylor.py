"""Normalised Taylor-diagram statistics (Taylor 2001; Feng et al. 2022, Fig. 5).

A product ``f`` and the reference ``r`` are summarised by the ratio of their population
standard deviations ``σf/σr``, their correlation ``R`` and their centred RMS difference
``E'/σr``, linked by the law of cosines ``E'^2 = σf^2 + σr^2 - 2 σf σr R``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from smcore.evaluation.metrics import PooledStats

__all__ = ["TAYLOR_COLUMNS", "REFERENCE_ROW", "taylor_row", "taylor_table", "crmsd_from_law"]

TAYLOR_COLUMNS: tuple[str, ...] = ("product", "std_norm", "corr", "crmsd_norm")
REFERENCE_ROW: dict[str, object] = {
    "product": "reference",
    "std_norm": 1.0,
    "corr": 1.0,
    "crmsd_norm": 0.0,
}


def crmsd_from_law(std_f: float, std_r: float, corr: float) -> float:
    """Centred RMS difference implied by the Taylor law, in the units of the stds.

    ``sqrt(max(σf² + σr² − 2 σf σr R, 0))``.
    """
    return float(np.sqrt(max(std_f**2 + std_r**2 - 2.0 * std_f * std_r * corr, 0.0)))


def taylor_row(product: str, stats: PooledStats) -> dict[str, object]:
    """One row of ``taylor.csv``: ``std_norm = σf/σr``, ``corr = R``, ``crmsd_norm = E'/σr``.

    All three are dimensionless; NaN if the reference is constant.
    """
    if not stats.std_r > 0:
        nan = float("nan")
        return {"product": product, "std_norm": nan, "corr": nan, "crmsd_norm": nan}
    return {
        "product": product,
        "std_norm": stats.std_f / stats.std_r,
        "corr": stats.r,
        "crmsd_norm": stats.crmsd / stats.std_r,
    }


def taylor_table(stats: Mapping[str, PooledStats]) -> pd.DataFrame:
    """The table of ``taylor.csv``: the reference row (1, 1, 0) first, then one row per product."""
    rows = [dict(REFERENCE_ROW)] + [taylor_row(name, s) for name, s in stats.items()]
    return pd.DataFrame(rows, columns=list(TAYLOR_COLUMNS))
