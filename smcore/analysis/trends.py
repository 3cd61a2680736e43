"""Theil–Sen slope and Mann–Kendall test, vectorised over pixels.

The kernel (:func:`theil_sen_mk_numpy`) works on a 2-D array ``(pixel, time)`` and is
compiled with numba (``nogil``), so that dask threads run chunks of pixels in parallel;
:func:`trend_test` applies it to a DataArray through ``xr.apply_ufunc`` chunk by chunk.

Definitions, per series after dropping NaN values (``n`` valid values at times ``t``):

* **Theil–Sen slope** (Sen 1968): the *median* of the pairwise slopes
  ``(x_j − x_i) / (t_j − t_i)`` over all valid pairs ``i < j``. Feng et al. (2022), Eq. 7,
  write "mean"; Sen's estimator, ``scipy.stats.theilslopes`` and ``pymannkendall`` all use
  the median, and so does smcore. Equal to ``scipy.stats.theilslopes(x[valid], t[valid])``.
  The same for every Mann–Kendall variant.
* **Mann–Kendall** (Mann 1945; Kendall 1975), ``mk_test="original"``:
  ``S = Σ_{i<j} sign(x_j − x_i)``;
  ``Var(S) = [n(n−1)(2n+5) − Σ_g t_g(t_g−1)(2t_g+5)] / 18`` with ``t_g`` the size of each
  group of tied values; ``Z = (S − sign(S)) / sqrt(Var S)`` (continuity correction, 0 when
  ``S = 0``); two-sided p-value ``2 (1 − Φ(|Z|))``. Equal to
  ``pymannkendall.original_test(x).p`` (which also drops NaN).
* **Hamed and Rao (1998)** variance correction, ``mk_test="hamed_rao"`` (the default): the
  series is detrended with the Theil–Sen slope (``x_k − β·(t_k − t_0 + 1)``), ranked
  (average ranks for ties), and the autocorrelation ``ρ_i`` of the ranks is estimated at every
  lag ``i = 1 … n−1`` (biased estimator, divisor ``n``); only the lags with
  ``|ρ_i| > z_{0.975}/√n`` (significant at the 5 % level) enter
  ``n/n* = 1 + 2 / (n(n−1)(n−2)) · Σ_i (n−i)(n−i−1)(n−i−2) ρ_i``, and ``Var(S)`` above is
  multiplied by ``n/n*``. Equal to ``pymannkendall.hamed_rao_modification_test(x).p``
  (``lag=None``: all lags) on NaN-free series sampled once per unit of ``t``, except
  where pymannkendall gives NaN or works on rounding noise: a detrended series without
  spread (range ≤ 1e-9 × the range of the series, i.e. a linear series up to rounding) has
  no autocorrelation estimate, and a strongly negatively autocorrelated one can give
  ``n/n* ≤ 0``; smcore then keeps ``n/n* = 1`` (the original test).
* **Trend-free pre-whitening** (Yue et al. 2002), ``mk_test="tfpw"``: the detrended series
  ``d`` loses its lag-1 autocorrelation ``r_1``, ``w_k = d_{k+1} − r_1 d_k``, the trend
  ``β·(t_{k+1} − t_0)`` is added back, and the original test runs on the ``n − 1`` values
  ``w``. As ``pymannkendall.trend_free_pre_whitening_modification_test`` (``r_1`` is taken
  as 0 when ``d`` has no spread, as above, where pymannkendall gives NaN).
* Non-finite values (NaN, ±inf) are dropped; a series with fewer than ``min_valid`` finite
  values gets NaN slope and p-value. The corrections use the true times ``t`` of the valid
  values for detrending and treat consecutive valid values as neighbours (lag 1);
  pymannkendall instead detrends the NaN-dropped series by position, so the two differ on
  series with gaps.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import xarray as xr

from smcore.config import MK_TESTS, AnalysisConfig

__all__ = [
    "theil_sen_mk_numpy",
    "trend_test",
    "DEFAULT_MIN_VALID",
    "DEFAULT_MK_TEST",
    "MK_TESTS",
]

DEFAULT_MIN_VALID = 10
"""Fewest finite values a series needs for a trend (fewer → NaN)."""

DEFAULT_MK_TEST: str = AnalysisConfig.mk_test  # "hamed_rao"
"""Mann–Kendall variant used unless told otherwise (one of :data:`MK_TESTS`)."""

_Z975 = 1.959963984540054  # scipy.stats.norm.ppf(0.975), as pymannkendall uses it
_ORIGINAL, _HAMED_RAO, _TFPW = 0, 1, 2  # kernel codes of MK_TESTS, in that order


@numba.njit(nogil=True, cache=True)
def _quickselect(a: np.ndarray, m: int, k: int) -> float:
    """The ``k``-th smallest (0-based) of ``a[:m]``, reordering ``a`` in place (Hoare)."""
    lo = 0
    hi = m - 1
    while hi > lo:
        mid = (lo + hi) >> 1
        if a[mid] < a[lo]:
            a[mid], a[lo] = a[lo], a[mid]
        if a[hi] < a[lo]:
            a[hi], a[lo] = a[lo], a[hi]
        if a[hi] < a[mid]:
            a[hi], a[mid] = a[mid], a[hi]
        piv = a[mid]
        i = lo
        j = hi
        while i <= j:
            while a[i] < piv:
                i += 1
            while a[j] > piv:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return a[k]
    return a[k]


@numba.njit(nogil=True, cache=True)
def _count_below(a: np.ndarray, m: int, p1: float, p2: float) -> tuple[int, int]:
    """How many of ``a[:m]`` are below ``p1`` and below ``p2`` (one vectorisable pass)."""
    c1 = 0
    c2 = 0
    for i in range(m):
        v = a[i]
        c1 += v < p1
        c2 += v < p2
    return c1, c2


@numba.njit(nogil=True, cache=True)
def _median(a: np.ndarray, m: int, work: np.ndarray, samp: np.ndarray) -> float:
    """Exact median of the finite values ``a[:m]`` (mean of the two middle ones if ``m`` is even).

    Keeps a value bracket ``[lo, hi)`` that holds both middle ranks (``nlo`` values lie below
    ``lo``, ``nhi`` below ``hi``). A sorted sample gives the first two pivots, then pivots are
    interpolated inside the bracket, two per counting pass (branch-free, vectorised), until at
    most 256 values remain; those are copied to ``work`` and finished by quickselect. Reorders
    ``a`` and overwrites ``work`` (length ≥ ``m``) and ``samp``.
    """
    khi = m // 2
    klo = khi if m % 2 else khi - 1
    if m > 256:
        s = samp.shape[0]
        step = m // s
        for i in range(s):
            samp[i] = a[i * step]
        samp.sort()
        q = (klo * s) // m
        p1 = samp[max(q - 4, 0)]
        p2 = samp[min(q + 5, s - 1)]
        span = samp[s - 1] - samp[0] + 1e-300
        lo = -np.inf
        hi = np.inf
        nlo = 0
        nhi = m
        for _ in range(24):
            c1, c2 = _count_below(a, m, p1, p2)
            if c1 <= klo and p1 > lo:
                lo, nlo = p1, c1
            if c2 <= klo and p2 > lo:
                lo, nlo = p2, c2
            if c1 > khi and p1 < hi:
                hi, nhi = p1, c1
            if c2 > khi and p2 < hi:
                hi, nhi = p2, c2
            c = nhi - nlo
            if c <= 256:
                break
            if math.isinf(lo) and math.isinf(hi):
                break
            if math.isinf(lo):  # search downwards for a lower bound
                span *= 2
                p1, p2 = hi - span, hi - span / 2
                continue
            if math.isinf(hi):  # search upwards for an upper bound
                span *= 2
                p1, p2 = lo + span / 2, lo + span
                continue
            f = (klo + 0.5 - nlo) / c
            d = 48.0 / c
            p1 = lo + (hi - lo) * max(f - d, 0.0)
            p2 = lo + (hi - lo) * min(f + d, 1.0)
        m2 = 0
        for i in range(m):
            v = a[i]
            work[m2] = v
            m2 += (v >= lo) & (v < hi)
        a = work
        m = m2
        klo -= nlo
        khi -= nlo
    upper = _quickselect(a, m, khi)
    if klo == khi:
        return upper
    # After quickselect every value left of khi is <= a[khi]: the lower middle is their max.
    lower = a[0]
    for i in range(1, khi):
        if a[i] > lower:
            lower = a[i]
    return (lower + upper) / 2


@numba.njit(nogil=True, cache=True)
def _rank_ties(v: np.ndarray, n: int, ranks2: np.ndarray) -> float:
    """Twice the ranks of ``v[:n]`` into ``ranks2[:n]``; the tie term of ``Var S``.

    Ranks 1 … n, tied values sharing their average rank (as ``scipy.stats.rankdata``), so
    twice the rank is an integer. Returns ``Σ_g t_g(t_g−1)(2t_g+5)`` over the tie groups.
    """
    order = np.argsort(v[:n])
    ties = 0.0
    start = 0
    for k in range(1, n + 1):
        if k == n or v[order[k]] != v[order[start]]:
            run = k - start
            for q in range(start, k):
                ranks2[order[q]] = start + 1 + k
            if run > 1:
                ties += run * (run - 1) * (2 * run + 5)
            start = k
    return ties


@numba.njit(nogil=True, cache=True)
def _lag1_autocorrelation(v: np.ndarray, n: int) -> float:
    """Lag-1 autocorrelation of ``v[:n]`` (biased autocovariances, as pymannkendall)."""
    mean = 0.0
    for k in range(n):
        mean += v[k]
    mean /= n
    c0 = (v[0] - mean) ** 2
    c1 = 0.0
    for k in range(1, n):
        d = v[k] - mean
        c0 += d * d
        c1 += d * (v[k - 1] - mean)
    return (c1 / n) / (c0 / n)


@numba.njit(nogil=True, cache=True)
def _detrend(xv: np.ndarray, tv: np.ndarray, n: int, slope: float, out: np.ndarray) -> bool:
    """Detrend: ``out[k] = xv[k] − slope·(tv[k] − tv[0] + 1)`` for ``k < n``.

    ``tv[k] − tv[0] + 1`` are the positions 1 … n on unit-spaced times: the arithmetic of
    pymannkendall, so that ranks of near-tied values agree bit for bit. Returns whether the
    residuals have a spread: a range above ``1e-9`` times that of ``xv[:n]``. A
    (numerically) linear series leaves only rounding noise, whose autocorrelation means
    nothing.
    """
    xlo = xhi = xv[0]
    lo = hi = out[0] = xv[0] - slope
    for k in range(1, n):
        v = out[k] = xv[k] - (tv[k] - tv[0] + 1.0) * slope
        xlo, xhi = min(xlo, xv[k]), max(xhi, xv[k])
        lo, hi = min(lo, v), max(hi, v)
    return hi - lo > 1e-9 * (xhi - xlo)


@numba.njit(nogil=True, cache=True)
def _hamed_rao_factor(ranks2: np.ndarray, n: int, acov: np.ndarray) -> float:
    """``n/n*`` of Hamed and Rao (1998) from twice the ranks of the detrended series.

    ``ranks2`` (from :func:`_rank_ties`) is centred in place. The autocovariances of the
    ranks (divisor ``n``; into ``acov``) are sums of multiples of 1/4, summed here exactly in
    integers (and vectorised): the autocorrelations equal pymannkendall's bit for bit. Only
    lags whose autocorrelation lies outside ``±z_{0.975}/√n`` count; lags ``n−2`` and
    ``n−1`` have zero weight. The ranks must not all be equal. Returns 1 when the factor is not
    positive (where pymannkendall gives NaN).
    """
    if n < 3:
        return 1.0
    for k in range(n):
        ranks2[k] -= n + 1  # 2 (rank − mean rank)
    for i in range(n - 2):
        c = 0
        for k in range(n - i):
            c += ranks2[k] * ranks2[k + i]
        acov[i] = c / 4.0 / n
    bound = _Z975 / math.sqrt(n)
    acc = 0.0
    for i in range(1, n - 2):
        rho = acov[i] / acov[0]
        if rho > bound or rho < -bound:
            acc += float((n - i) * (n - i - 1) * (n - i - 2)) * rho
    factor = 1.0 + (2.0 / (n * (n - 1) * (n - 2))) * acc
    return factor if factor > 0 else 1.0


@numba.njit(nogil=True, cache=True)
def _mk_score(v: np.ndarray, n: int) -> tuple[int, int]:
    """Mann–Kendall ``S`` of ``v[:n]`` and the number of tied pairs (branch-free)."""
    s = 0
    tied_pairs = 0
    for i in range(n - 1):
        vi = v[i]
        for j in range(i + 1, n):
            d = v[j] - vi
            s += (d > 0) - (d < 0)
            tied_pairs += d == 0
    return s, tied_pairs


@numba.njit(nogil=True, cache=True)
def _mk_p_value(s: int, n: int, ties: float, factor: float) -> float:
    """Two-sided p-value of ``S`` with ``Var S`` (tie-corrected) times ``factor``.

    NaN if that variance is not positive while ``S ≠ 0``, which the callers never produce.
    """
    if s == 0:
        return 1.0
    var_s = (n * (n - 1) * (2 * n + 5) - ties) / 18.0 * factor
    if not var_s > 0:
        return math.nan
    z = (s - 1) / math.sqrt(var_s) if s > 0 else (s + 1) / math.sqrt(var_s)
    # 2 (1 - Phi(|z|)) written with erfc: equal to pymannkendall's form and exact in the tail.
    return math.erfc(abs(z) / math.sqrt(2.0))


@numba.njit(nogil=True, cache=True)
def _series(x: np.ndarray, t: np.ndarray, min_valid: int, variant: int, xv: np.ndarray,
            tv: np.ndarray, buf: np.ndarray, work: np.ndarray, samp: np.ndarray,
            aux: np.ndarray, acov: np.ndarray, ranks2: np.ndarray) -> tuple[float, float]:
    """(slope per unit of ``t``, p-value) of one series ``x`` (nt,).

    ``variant`` is the index of the Mann–Kendall test in :data:`MK_TESTS`; the other arrays
    are work space.
    """
    n = 0
    for k in range(x.shape[0]):
        if math.isfinite(x[k]):
            xv[n] = x[k]
            tv[n] = t[k]
            n += 1
    if n < min_valid or n < 2:
        return math.nan, math.nan

    # Pairwise differences: S, tied pairs and slopes in one branch-free (vectorisable) loop.
    s = 0
    tied_pairs = 0
    m = 0
    for i in range(n - 1):
        xi = xv[i]
        ti = tv[i]
        for j in range(i + 1, n):
            d = xv[j] - xi
            s += (d > 0) - (d < 0)
            tied_pairs += d == 0
            buf[m + j - i - 1] = d / (tv[j] - ti)
        m += n - 1 - i
    slope = _median(buf, m, work, samp)

    vals = xv
    if variant == _TFPW:
        r1 = _lag1_autocorrelation(aux, n) if _detrend(xv, tv, n, slope, aux) else 0.0
        for k in range(n - 1):
            aux[k] = aux[k + 1] - aux[k] * r1 + (tv[k + 1] - tv[0]) * slope
        n -= 1
        s, tied_pairs = _mk_score(aux, n)
        vals = aux
    # Tie groups (only when some pair is tied).
    ties = _rank_ties(vals, n, ranks2) if tied_pairs > 0 else 0.0
    factor = 1.0
    if variant == _HAMED_RAO and _detrend(xv, tv, n, slope, aux):
        _rank_ties(aux, n, ranks2)
        factor = _hamed_rao_factor(ranks2, n, acov)
    return slope, _mk_p_value(s, n, ties, factor)


@numba.njit(nogil=True, cache=True)
def _kernel(
    x: np.ndarray, t: np.ndarray, min_valid: int, variant: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_series` of every row of ``x`` (pixel, time), with work space allocated once."""
    npix, nt = x.shape
    slope = np.empty(npix)
    p = np.empty(npix)
    xv = np.empty(nt)
    tv = np.empty(nt)
    npairs = max(nt * (nt - 1) // 2, 1)
    buf = np.empty(npairs)
    work = np.empty(npairs)
    samp = np.empty(32)
    aux = np.empty(nt)
    acov = np.empty(nt)
    ranks2 = np.empty(nt, dtype=np.int64)
    for k in range(npix):
        slope[k], p[k] = _series(x[k], t, min_valid, variant, xv, tv, buf, work, samp, aux,
                                 acov, ranks2)
    return slope, p


def _variant_code(mk_test: str) -> int:
    if mk_test not in MK_TESTS:
        choices = ", ".join(MK_TESTS)
        raise ValueError(f"unknown Mann-Kendall test {mk_test!r}: choose one of {choices}")
    return MK_TESTS.index(mk_test)


def theil_sen_mk_numpy(
    x: np.ndarray,
    t: np.ndarray | None = None,
    min_valid: int = DEFAULT_MIN_VALID,
    mk_test: str = DEFAULT_MK_TEST,
) -> tuple[np.ndarray, np.ndarray]:
    """Theil–Sen slope and Mann–Kendall p-value along the last axis of ``x``.

    Parameters
    ----------
    x : array (..., n)
        Series; NaN values are dropped (pairwise).
    t : array (n,), optional
        Strictly increasing times of the samples (default ``0, 1, …, n−1``).
    min_valid : int
        Series with fewer finite values give NaN.
    mk_test : str
        Mann–Kendall variant, one of :data:`MK_TESTS` (module docstring): ``"original"``,
        ``"hamed_rao"`` (autocorrelation-corrected variance, default) or ``"tfpw"``.

    Returns
    -------
    slope, p_value : arrays (...,) float64
        Slope in units of ``x`` per unit of ``t``; two-sided p-value.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[-1]
    t = np.arange(n, dtype=np.float64) if t is None else np.asarray(t, dtype=np.float64)
    if t.shape != (n,):
        raise ValueError(f"t has shape {t.shape}, expected ({n},)")
    if n > 1 and not np.all(np.diff(t) > 0):
        raise ValueError("t must be strictly increasing")
    variant = _variant_code(mk_test)
    lead = x.shape[:-1]
    flat = np.ascontiguousarray(x.reshape(-1, n))
    slope, p = _kernel(flat, t, int(min_valid), variant)
    return slope.reshape(lead), p.reshape(lead)


def trend_test(
    series: xr.DataArray,
    dim: str = "year",
    *,
    per: float = 10.0,
    min_valid: int = DEFAULT_MIN_VALID,
    mk_test: str = DEFAULT_MK_TEST,
) -> xr.Dataset:
    """Theil–Sen trend and Mann–Kendall p-value of ``series`` along ``dim``.

    Works lazily on dask-backed input: ``dim`` must be a single chunk; every chunk of the
    other dims is processed independently (bounded memory).

    Parameters
    ----------
    series : DataArray (..., dim, ...)
        Values (e.g. SSMI, dimensionless); NaN are dropped per series.
    dim : str
        The time-like dimension; its coordinate gives the sample times (e.g. years).
    per : float
        The slope per unit of ``dim`` is multiplied by ``per`` (10 → per decade for years).
    min_valid : int
        Fewest finite values for a trend; fewer → NaN.
    mk_test : str
        Mann–Kendall variant (:func:`theil_sen_mk_numpy`); the trend does not depend on it.

    Returns
    -------
    Dataset with ``trend`` (units of ``series`` per ``per`` units of ``dim``) and
    ``p_value`` (two-sided), both with the dims of ``series`` less ``dim``.
    """
    if dim not in series.dims:
        raise ValueError(f"series has no dimension {dim!r} (dims: {series.dims})")
    _variant_code(mk_test)  # fail before building a lazy graph
    t = np.asarray(series[dim].values, dtype=np.float64) if dim in series.coords else None
    if series.chunks is not None:
        series = series.chunk({dim: -1})

    slope, p = xr.apply_ufunc(
        theil_sen_mk_numpy,
        series,
        input_core_dims=[[dim]],
        output_core_dims=[[], []],
        kwargs={"t": t, "min_valid": min_valid, "mk_test": mk_test},
        dask="parallelized",
        output_dtypes=[np.float64, np.float64],
    )
    return xr.Dataset({"trend": slope * per, "p_value": p})
