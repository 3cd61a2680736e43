"""Calibration scores of a probabilistic product, accumulated over blocks of months.

A product's predictive distribution at each (month, pixel) comes as an ensemble
``(member, time, pixel)`` or as a Gaussian (mean and standard deviation, ``(time, pixel)``);
the observation (reference or truth) is ``(time, pixel)``; all in m3 m-3. Long records do not
fit in memory with every member at 0.25°, so :class:`Calibration` adds the scores of one block
at a time and gives pooled numbers at the end, identical to scoring all months at once:

- ``coverage``: share of observations inside the central ``level`` interval (ensemble:
  its empirical quantiles; Gaussian: μ ± z σ);
- ``width``: the interval's mean width (m3 m-3);
- ``CRPS``: mean continuous ranked probability score (m3 m-3; equals the MAE for a single
  value, so the two are on one scale);
- ``pit_1`` … ``pit_B``: the PIT histogram's relative frequencies (1/B each when calibrated).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba
import numpy as np
from scipy.stats import norm

from smcore.evaluation import probabilistic as pr

__all__ = ["Calibration", "CALIBRATION_LEVEL", "PIT_BINS", "gaussian_interval"]

CALIBRATION_LEVEL = 0.90
"""Central interval scored: 5–95 %."""
PIT_BINS = 10


def gaussian_interval(
    mu: np.ndarray, sigma: np.ndarray, level: float = CALIBRATION_LEVEL
) -> tuple[np.ndarray, np.ndarray]:
    """Central ``level`` interval ``mu ∓ z·sigma`` of a Gaussian forecast (same units as
    ``mu``; z = 1.645 for 90 %), the interval the calibration scores and the dashboard draws."""
    z = float(norm.ppf(0.5 + level / 2))
    return mu - z * sigma, mu + z * sigma


@numba.njit(nogil=True, cache=True)
def _ensemble_block(ens: np.ndarray, y: np.ndarray, q_lo: float, q_hi: float) -> tuple:
    """Scores of each pair of members ``ens`` (M, n) and observation ``y`` (n,), float64.

    Per pair: whether all are finite, the CRPS (the formula of
    :func:`~smcore.evaluation.probabilistic.crps_sorted`), the ``q_lo`` and ``q_hi`` quantiles
    (NumPy's default linear interpolation between order statistics), and the members below
    and equal to ``y``; all zero where a value is not finite.

    One pass per pixel over its sorted members, the arithmetic in the order of the NumPy
    functions it stands for (the same numbers): NumPy sorting and reducing along the members'
    strided axis made several passes over (M, n) temporaries.
    """
    m, n = ens.shape
    ok = np.zeros(n, dtype=np.bool_)
    crps = np.zeros(n)
    lo = np.zeros(n)
    hi = np.zeros(n)
    below = np.zeros(n, dtype=np.int64)
    equal = np.zeros(n, dtype=np.int64)
    weights = np.empty(m)
    for i in range(m):
        weights[i] = (2.0 * (i + 1) - m - 1) / (m * m)
    bounds = np.empty((2, 2), dtype=np.int64)
    fracs = np.empty(2)
    for k, q in enumerate((q_lo, q_hi)):
        h = (m - 1) * q
        i = int(np.floor(h))
        bounds[k, 0] = i
        bounds[k, 1] = min(i + 1, m - 1)
        fracs[k] = h - i
    xs = np.empty(m)
    for p in range(n):
        yp = y[p]
        if not np.isfinite(yp):
            continue
        finite = True
        for i in range(m):
            xs[i] = ens[i, p]
            if not np.isfinite(xs[i]):
                finite = False
        if not finite:
            continue
        ok[p] = True
        for i in range(1, m):  # insertion sort: the fastest for a few dozen members
            v = xs[i]
            j = i - 1
            while j >= 0 and xs[j] > v:
                xs[j + 1] = xs[j]
                j -= 1
            xs[j + 1] = v
        a = abs(xs[0] - yp)
        b = weights[0] * xs[0]
        nb = 1 if xs[0] < yp else 0
        ne = 1 if xs[0] == yp else 0
        for i in range(1, m):
            a += abs(xs[i] - yp)
            b += weights[i] * xs[i]
            if xs[i] < yp:
                nb += 1
            elif xs[i] == yp:
                ne += 1
        crps[p] = a / m - b
        below[p] = nb
        equal[p] = ne
        i, j = bounds[0, 0], bounds[0, 1]
        lo[p] = xs[i] + fracs[0] * (xs[j] - xs[i])
        i, j = bounds[1, 0], bounds[1, 1]
        hi[p] = xs[i] + fracs[1] * (xs[j] - xs[i])
    return ok, crps, lo, hi, below, equal


@dataclass
class Calibration:
    """Pooled calibration scores of one product, block by block (see the module docstring)."""

    level: float = CALIBRATION_LEVEL
    bins: int = PIT_BINS
    n: int = 0
    crps_sum: float = 0.0
    inside: int = 0
    width_sum: float = 0.0
    pit_counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        if not 0 < self.level < 1:
            raise ValueError(f"level must lie in (0, 1), got {self.level}")
        if self.pit_counts.size == 0:
            self.pit_counts = np.zeros(self.bins, dtype=np.int64)

    @property
    def quantiles(self) -> tuple[float, float]:
        """Lower and upper probabilities of the central interval."""
        tail = (1 - self.level) / 2
        return tail, 1 - tail

    def _add(self, crps: np.ndarray, lo: np.ndarray, hi: np.ndarray, y: np.ndarray,
             pit: np.ndarray) -> None:
        self.n += int(y.size)
        self.crps_sum += float(np.sum(crps, dtype=np.float64))
        self.inside += int(((y >= lo) & (y <= hi)).sum())
        self.width_sum += float(np.sum(hi - lo, dtype=np.float64))
        idx = np.minimum((pit * self.bins).astype(int), self.bins - 1)
        self.pit_counts += np.bincount(idx, minlength=self.bins)

    def add_ensemble(self, members: np.ndarray, obs: np.ndarray, *, seed: int = 0) -> None:
        """Add a block: ``members`` (M, time, pixel), ``obs`` (time, pixel).

        Pairs with a non-finite observation or member are left out.
        """
        ens = np.asarray(members, dtype=np.float64)
        y = np.asarray(obs, dtype=np.float64)
        if ens.shape[1:] != y.shape:
            raise ValueError(f"members {ens.shape} do not match observations {y.shape}")
        m = ens.shape[0]
        ok, crps, lo, hi, below, equal = _ensemble_block(
            np.ascontiguousarray(ens.reshape(m, -1)), np.ascontiguousarray(y.reshape(-1)),
            *self.quantiles,
        )
        pit = pr.randomised_rank(below[ok], equal[ok], m, seed=seed + self.n)
        self._add(crps[ok], lo[ok], hi[ok], y.reshape(-1)[ok], pit)

    def add_gaussian(self, mu: np.ndarray, sigma: np.ndarray, obs: np.ndarray) -> None:
        """Add a block of a Gaussian forecast: ``mu``, ``sigma`` and ``obs`` (time, pixel).

        Pairs with a non-finite value or σ ≤ 0 are left out.
        """
        mu, sigma, y = (np.asarray(a, dtype=np.float64) for a in (mu, sigma, obs))
        ok = np.isfinite(mu) & np.isfinite(sigma) & np.isfinite(y) & (sigma > 0)
        mu, sigma, y = mu[ok], sigma[ok], y[ok]
        crps = pr.crps_gaussian(mu, sigma, y, mean=False)
        lo, hi = gaussian_interval(mu, sigma, self.level)
        self._add(crps, lo, hi, y, pr.pit_gaussian(mu, sigma, y))

    def row(self) -> dict[str, float | int]:
        """``n``, ``coverage``, ``width``, ``CRPS`` and ``pit_1`` … ``pit_B`` (NaN when empty)."""
        n = self.n
        out: dict[str, float | int] = {
            "n": n,
            "coverage": self.inside / n if n else float("nan"),
            "width": self.width_sum / n if n else float("nan"),
            "CRPS": self.crps_sum / n if n else float("nan"),
        }
        freq = self.pit_counts / n if n else np.full(self.bins, np.nan)
        out.update({f"pit_{i + 1}": float(f) for i, f in enumerate(freq)})
        return out
