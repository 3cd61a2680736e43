"""Skill scores of a soil-moisture product against a reference (Feng et al. 2022, Eqs. 2–5, 7).

Every function takes plain arrays of volumetric soil moisture (m3 m-3) laid out as
``(time, pixel)`` (any trailing spatial shape is flattened) and ignores pairs where either
value is not finite, so that NaN outside land never enters a score. Sums are accumulated in
float64 whatever the input dtype.

Pooled scores treat every (month, pixel) pair of the period as one sample, as in the
paper's Eqs. 2–5; ``spatial_r`` is the mean over months of the correlation across pixels;
``anomaly_r`` correlates anomalies from each series' own per-pixel monthly climatology over
the scored period. Standard deviations are population ones (1/n, the paper's Eq. 7), which
makes the Taylor law ``E'^2 = σf^2 + σr^2 - 2 σf σr R`` hold exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "SCORE_COLUMNS",
    "PooledStats",
    "pooled_stats",
    "mae",
    "rmsd",
    "ubrmsd",
    "bias",
    "pearson_r",
    "std_ratio",
    "spatial_r",
    "monthly_anomalies",
    "anomaly_r",
    "temporal_maps",
    "Scores",
    "score_product",
]

SCORE_COLUMNS: tuple[str, ...] = (
    "MAE",
    "RMSD",
    "ubRMSD",
    "r",
    "spatial_r",
    "anomaly_r",
    "std_ratio",
)
"""Score columns of ``evaluation/metrics.csv`` (after ``product``), in order."""

# A series whose standard deviation is below this fraction of its RMS value is treated as
# constant: float32 inputs cannot resolve smaller variations, and a correlation with a
# constant is undefined (NaN) rather than the correlation of rounding noise.
_DEGENERATE_REL_STD = 1e-7


def _as_2d(x: np.ndarray) -> np.ndarray:
    """``(time, ...)`` → ``(time, pixel)`` float64."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0:
        return a.reshape(1, 1)
    if a.ndim == 1:
        return a.reshape(-1, 1)
    return a.reshape(a.shape[0], -1)


def _pairs(forecast: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The finite pairs of two same-shaped arrays, flattened, float64."""
    f = np.asarray(forecast, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if f.shape != r.shape:
        raise ValueError(f"shapes differ: product {f.shape} vs reference {r.shape}")
    ok = np.isfinite(f) & np.isfinite(r)
    if ok.all():  # the usual case: the same values in the same order, without a masked copy
        return f.ravel(), r.ravel()
    return f[ok], r[ok]


def _masked_pearson(f: np.ndarray, r: np.ndarray, axis: int | None) -> np.ndarray:
    """Pearson r of the finite pairs along ``axis`` (None: all elements); NaN if degenerate."""
    ok = np.isfinite(f) & np.isfinite(r)
    n = ok.sum(axis=axis)
    every = bool(ok.all())  # then every np.where below would return its first choice
    fz = f if every else np.where(ok, f, 0.0)
    rz = r if every else np.where(ok, r, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        fm = (
            fz.sum(axis=axis, keepdims=True) / np.expand_dims(n, axis)
            if axis is not None
            else fz.sum() / n
        )
        rm = (
            rz.sum(axis=axis, keepdims=True) / np.expand_dims(n, axis)
            if axis is not None
            else rz.sum() / n
        )
        fa = f - fm if every else np.where(ok, f - fm, 0.0)
        ra = r - rm if every else np.where(ok, r - rm, 0.0)
        sff = (fa * fa).sum(axis=axis)
        srr = (ra * ra).sum(axis=axis)
        sfr = (fa * ra).sum(axis=axis)
        rms_f2 = (fz * fz).sum(axis=axis)
        rms_r2 = (rz * rz).sum(axis=axis)
        out = sfr / np.sqrt(sff * srr)
    tol = _DEGENERATE_REL_STD**2
    degenerate = (n < 2) | (sff <= tol * rms_f2) | (srr <= tol * rms_r2)
    out = np.where(degenerate, np.nan, out)
    return np.clip(out, -1.0, 1.0)


@dataclass(frozen=True)
class PooledStats:
    """Pooled first and second moments of a product ``f`` against a reference ``r``.

    All values in m3 m-3 except ``n`` (number of finite pairs) and ``r`` (dimensionless).
    ``std_f`` and ``std_r`` are population standard deviations (1/n); ``crmsd`` is the
    centred RMS difference E' (= ubRMSD).
    """

    n: int
    mae: float
    rmsd: float
    bias: float
    crmsd: float
    std_f: float
    std_r: float
    r: float

    @property
    def ubrmsd(self) -> float:
        """Unbiased RMSD (Eq. 4), identical to the centred RMS difference."""
        return self.crmsd

    @property
    def std_ratio(self) -> float:
        """σf / σr (dimensionless); NaN if the reference is constant."""
        return self.std_f / self.std_r if self.std_r > 0 else float("nan")


def pooled_stats(forecast: np.ndarray, reference: np.ndarray) -> PooledStats:
    """Pooled scores over all finite (time, pixel) pairs.

    Parameters
    ----------
    forecast, reference : numpy.ndarray
        Same shape, any dims, m3 m-3. Pairs where either is NaN are dropped.

    Returns
    -------
    PooledStats
        MAE (Eq. 2), RMSD (Eq. 3), bias = mean(f − r), centred RMSD (Eq. 4), population
        standard deviations (Eq. 7) and Pearson r (Eq. 5). NaN scores if there are no pairs.
    """
    f, r = _pairs(forecast, reference)
    n = int(f.size)
    if n == 0:
        nan = float("nan")
        return PooledStats(0, nan, nan, nan, nan, nan, nan, nan)
    d = f - r
    mae_ = float(np.mean(np.abs(d)))
    rmsd_ = float(np.sqrt(np.mean(d * d)))
    bias_ = float(d.mean())
    del d
    fa = f - f.mean()
    ra = r - r.mean()
    sff, srr, sfr = float(fa @ fa), float(ra @ ra), float(fa @ ra)
    tol = _DEGENERATE_REL_STD**2
    degenerate = n < 2 or sff <= tol * float(f @ f) or srr <= tol * float(r @ r)
    corr = float("nan") if degenerate else float(np.clip(sfr / np.sqrt(sff * srr), -1.0, 1.0))
    dc = fa - ra
    return PooledStats(
        n=n,
        mae=mae_,
        rmsd=rmsd_,
        bias=bias_,
        crmsd=float(np.sqrt((dc @ dc) / n)),
        std_f=float(np.sqrt(sff / n)),
        std_r=float(np.sqrt(srr / n)),
        r=corr,
    )


def mae(forecast: np.ndarray, reference: np.ndarray) -> float:
    """Mean absolute error (Eq. 2), m3 m-3, pooled over all finite pairs."""
    return pooled_stats(forecast, reference).mae


def rmsd(forecast: np.ndarray, reference: np.ndarray) -> float:
    """Root-mean-square difference (Eq. 3), m3 m-3, pooled over all finite pairs."""
    return pooled_stats(forecast, reference).rmsd


def ubrmsd(forecast: np.ndarray, reference: np.ndarray) -> float:
    """Unbiased RMSD (Eq. 4), m3 m-3: RMS of the differences of the centred series."""
    return pooled_stats(forecast, reference).crmsd


def bias(forecast: np.ndarray, reference: np.ndarray) -> float:
    """Mean difference ``mean(f − r)``, m3 m-3."""
    return pooled_stats(forecast, reference).bias


def pearson_r(forecast: np.ndarray, reference: np.ndarray) -> float:
    """Pearson correlation (Eq. 5) of all finite pairs, dimensionless; NaN if either is constant."""
    return pooled_stats(forecast, reference).r


def std_ratio(forecast: np.ndarray, reference: np.ndarray) -> float:
    """Ratio of pooled population standard deviations σf / σr (Eq. 7), dimensionless."""
    return pooled_stats(forecast, reference).std_ratio


def spatial_r(forecast: np.ndarray, reference: np.ndarray) -> float:
    """Mean over time steps of the Pearson correlation across pixels.

    Parameters
    ----------
    forecast, reference : numpy.ndarray
        Shape ``(time, ...)``, m3 m-3; the trailing dims are the pixels.

    Returns
    -------
    float
        Arithmetic mean of the per-month spatial correlations (months where it is
        undefined are skipped), dimensionless.
    """
    f, r = _as_2d(forecast), _as_2d(reference)
    if f.shape != r.shape:
        raise ValueError(f"shapes differ: product {f.shape} vs reference {r.shape}")
    per_month = _masked_pearson(f, r, axis=1)
    if not np.isfinite(per_month).any():
        return float("nan")
    return float(np.nanmean(per_month))


def monthly_anomalies(values: np.ndarray, months: np.ndarray) -> np.ndarray:
    """Subtract each pixel's own mean of each calendar month over the given period.

    Parameters
    ----------
    values : numpy.ndarray
        Shape ``(time, ...)``, m3 m-3; NaN ignored in the means and kept in the output.
    months : numpy.ndarray
        Calendar month (1…12) of each time step, shape ``(time,)``.

    Returns
    -------
    numpy.ndarray
        Anomalies, float64, shape ``(time, pixel)`` with the trailing dims flattened.
    """
    x = _as_2d(values)
    months = np.asarray(months)
    if months.shape != (x.shape[0],):
        raise ValueError(f"months has shape {months.shape}, expected ({x.shape[0]},)")
    out = np.full_like(x, np.nan)
    for m in np.unique(months):
        sel = months == m
        block = x[sel]
        ok = np.isfinite(block)
        count = ok.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(ok, block, 0.0).sum(axis=0) / count
        out[sel] = block - mean
    return out


def anomaly_r(forecast: np.ndarray, reference: np.ndarray, months: np.ndarray) -> float:
    """Pearson r of monthly anomalies, each from its own per-pixel monthly climatology.

    Pooled over all finite (time, pixel) pairs; dimensionless. A product without
    interannual variability (e.g. a climatology) has constant anomalies and scores NaN.
    """
    f = _as_2d(forecast)
    r = _as_2d(reference)
    if f.shape != r.shape:
        raise ValueError(f"shapes differ: product {f.shape} vs reference {r.shape}")
    ok = np.isfinite(f) & np.isfinite(r)
    if not ok.all():
        f = np.where(ok, f, np.nan)
        r = np.where(ok, r, np.nan)
    fa = monthly_anomalies(f, months)
    ra = monthly_anomalies(r, months)
    # Degeneracy is judged against the size of the raw values, not of the anomalies.
    good = np.isfinite(fa) & np.isfinite(ra)
    if good.sum() < 2:
        return float("nan")
    fa_v, ra_v = fa[good], ra[good]
    tol = _DEGENERATE_REL_STD**2
    sff = np.sum((fa_v - fa_v.mean()) ** 2)
    srr = np.sum((ra_v - ra_v.mean()) ** 2)
    if sff <= tol * np.sum(f[good] ** 2) or srr <= tol * np.sum(r[good] ** 2):
        return float("nan")
    return float(
        np.clip(np.sum((fa_v - fa_v.mean()) * (ra_v - ra_v.mean())) / np.sqrt(sff * srr), -1, 1)
    )


def temporal_maps(forecast: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel MAE (m3 m-3) and Pearson r over time (dimensionless).

    Parameters
    ----------
    forecast, reference : numpy.ndarray
        Shape ``(time, *space)``, m3 m-3.

    Returns
    -------
    (mae, r) : tuple of numpy.ndarray
        Each of shape ``space`` (float64), NaN where a pixel has no finite pair (MAE) or
        fewer than two pairs / a constant series (r).
    """
    f = np.asarray(forecast, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if f.shape != r.shape:
        raise ValueError(f"shapes differ: product {f.shape} vs reference {r.shape}")
    space = f.shape[1:]
    f2, r2 = _as_2d(f), _as_2d(r)
    ok = np.isfinite(f2) & np.isfinite(r2)
    n = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mae_map = np.where(ok, np.abs(f2 - r2), 0.0).sum(axis=0) / n
    mae_map = np.where(n > 0, mae_map, np.nan)
    r_map = _masked_pearson(f2, r2, axis=0)
    return mae_map.reshape(space), np.asarray(r_map).reshape(space)


@dataclass(frozen=True)
class Scores:
    """Every score of one product over one period: the pooled moments and the extra scores."""

    pooled: PooledStats
    spatial_r: float
    anomaly_r: float

    def row(self) -> dict[str, float]:
        """The :data:`SCORE_COLUMNS` of ``metrics.csv`` (m3 m-3 or dimensionless)."""
        s = self.pooled
        return {
            "MAE": s.mae,
            "RMSD": s.rmsd,
            "ubRMSD": s.ubrmsd,
            "r": s.r,
            "spatial_r": self.spatial_r,
            "anomaly_r": self.anomaly_r,
            "std_ratio": s.std_ratio,
        }


def score_product(forecast: np.ndarray, reference: np.ndarray, months: np.ndarray) -> Scores:
    """All scores of ``metrics.csv`` for one product.

    Parameters
    ----------
    forecast, reference : numpy.ndarray
        Shape ``(time, ...)``, m3 m-3, NaN where not scored.
    months : numpy.ndarray
        Calendar month (1…12) of each time step, shape ``(time,)``.

    Returns
    -------
    Scores
        Pooled MAE, RMSD, ubRMSD (m3 m-3), r, std ratio; mean spatial r; anomaly r.
    """
    f, r = _as_2d(forecast), _as_2d(reference)  # converted once for the three scores
    return Scores(
        pooled=pooled_stats(f, r),
        spatial_r=spatial_r(f, r),
        anomaly_r=anomaly_r(f, r, months),
    )
