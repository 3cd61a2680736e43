"""Field significance of trend maps: the Benjamini–Hochberg false discovery rate.

Testing every pixel of a map at p < 0.05 declares about 5 % of the pixels significant even
where nothing changes, and neighbouring pixels share their noise, so such dots over large
areas are not evidence of a trend. Wilks (2016, BAMS 97, 2263–2273, "The stippling shows
statistically significant grid points") recommends the false discovery rate of Benjamini and
Hochberg (1995) at ``α_FDR = 0.1`` and shows it to be robust to the spatial correlation
of such fields.

Rule, per map: sort the ``N`` finite p-values ``p_(1) ≤ … ≤ p_(N)``; ``k`` is the largest
index with ``p_(k) ≤ (k/N)·α_FDR``; every p-value ``≤ p_(k)`` is significant (none when no
such ``k`` exists). Equivalent to ``scipy.stats.false_discovery_control(p) ≤ α_FDR``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from smcore.config import AnalysisConfig

__all__ = [
    "DEFAULT_FDR_ALPHA",
    "MK_TEST_NAMES",
    "MK_TEST_LABELS",
    "benjamini_hochberg",
    "fdr_mask",
    "fdr_rule",
    "significance_label",
]

DEFAULT_FDR_ALPHA: float = AnalysisConfig.fdr_alpha  # 0.1
"""False discovery rate of the field-significance masks (Wilks 2016)."""

MK_TEST_NAMES: dict[str, str] = {
    "original": "original Mann-Kendall test (Mann 1945, Kendall 1975), no autocorrelation "
    "correction",
    "hamed_rao": "Hamed and Rao (1998) variance correction",
    "tfpw": "trend-free pre-whitening (Yue et al. 2002)",
}
"""What each Mann–Kendall variant (:data:`smcore.config.MK_TESTS`) is, for file attributes."""

MK_TEST_LABELS: dict[str, str] = {
    "original": "Mann–Kendall",
    "hamed_rao": "Mann–Kendall with Hamed–Rao correction",
    "tfpw": "Mann–Kendall with trend-free pre-whitening",
}
"""Short names of the Mann–Kendall variants, for legends and captions."""


def benjamini_hochberg(p_values: np.ndarray, alpha: float = DEFAULT_FDR_ALPHA) -> np.ndarray:
    """Benjamini–Hochberg mask of one map (all values of ``p_values`` pooled).

    Parameters
    ----------
    p_values : array (any shape)
        p-values in [0, 1]; NaN (no test, e.g. outside land) is left out of ``N``.
    alpha : float
        False discovery rate ``α_FDR`` in (0, 1).

    Returns
    -------
    bool array of the shape of ``p_values``: True where significant, False elsewhere
    (always False at NaN).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    p = np.asarray(p_values, dtype=np.float64)
    finite = np.isfinite(p)
    ranked = np.sort(p[finite])
    n = ranked.size
    passed = np.nonzero(ranked <= alpha * np.arange(1, n + 1) / n)[0]
    if passed.size == 0:
        return np.zeros(p.shape, dtype=bool)
    return finite & (p <= ranked[passed[-1]])


def _masks(p: np.ndarray, alpha: float, ndim: int) -> np.ndarray:
    """:func:`benjamini_hochberg` of every map spanned by the last ``ndim`` axes of ``p``."""
    maps = p.reshape((-1,) + p.shape[p.ndim - ndim:])
    out = np.zeros(maps.shape, dtype=bool)
    for k, one in enumerate(maps):
        out[k] = benjamini_hochberg(one, alpha)
    return out.reshape(p.shape)


def fdr_mask(
    p_value: xr.DataArray, alpha: float = DEFAULT_FDR_ALPHA, dims: Sequence[str] = ("lat", "lon")
) -> xr.DataArray:
    """Benjamini–Hochberg field-significance mask, one map at a time.

    Parameters
    ----------
    p_value : DataArray (..., lat, lon)
        Two-sided p-values (1), NaN where there is no test; e.g. ``(experiment, season,
        lat, lon)`` gives one mask per experiment and season.
    alpha : float
        False discovery rate ``α_FDR`` of each map.
    dims : sequence of str
        The dims that span one map.

    Returns
    -------
    DataArray bool with the dims of ``p_value`` (``dims`` last): True where significant.
    """
    missing = [d for d in dims if d not in p_value.dims]
    if missing:
        raise ValueError(f"p_value has no dimension {missing} (dims: {p_value.dims})")
    return xr.apply_ufunc(
        _masks,
        p_value,
        input_core_dims=[list(dims)],
        output_core_dims=[list(dims)],
        kwargs={"alpha": float(alpha), "ndim": len(dims)},
    ).rename("significant")


def fdr_rule(alpha: float) -> str:
    """How the mask was made, for file attributes (e.g. ``alpha_FDR = 0.1``)."""
    return f"Benjamini-Hochberg false discovery rate, alpha_FDR = {alpha:g} (Wilks 2016)"


def significance_label(mk_test: str, alpha: float) -> str:
    """The whole rule in a few words, e.g. "Mann–Kendall with Hamed–Rao correction, FDR 10 %"."""
    return f"{MK_TEST_LABELS.get(mk_test, mk_test)}, FDR {100 * alpha:g} %"
