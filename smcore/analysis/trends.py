"""Theil–Sen slope and Mann–Kendall test, vectorised over pixels.

The kernel (:func:`theil_sen_mk_numpy`) works on a 2-D array ``(pixel, time)`` and is
compiled with numba (``nogil``), so that dask threads run chunks of pixels in parallel;
:func:`trend_test` applies it to a DataArray through ``xr.apply_ufunc`` chunk by chunk.

Definitions, per series after dropping NaN values (``n`` valid values at times ``t``):

* **Theil–Sen slope** (Sen 1968): the *median* of the pairwise slopes
  ``(x_j − x_i) / (t_j − t_i)`` over all valid pairs ``i < j``. Feng et al. (2022), Eq. 7,
  write "mean"; Sen's estimator, ``scipy.stats.theilslopes`` and ``pymannkendall`` all use
  the median, and so does smcore. Equal to ``scipy.stats.theilslopes(x[valid], t[valid])``.
* **Mann–Kendall** (Mann 1945; Kendall 1975): ``S = Σ_{i<j} sign(x_j − x_i)``;
  ``Var(S) = [n(n−1)(2n+5) − Σ_g t_g(t_g−1)(2t_g+5)] / 18`` with ``t_g`` the size of each
  group of tied values; ``Z = (S − sign(S)) / sqrt(Var S)`` (continuity correction, 0 when
  ``S = 0``); two-sided p-value ``2 (1 − Φ(|Z|))``. Equal to
  ``pymannkendall.original_test(x).p`` (which also drops NaN).
* Non-finite values (NaN, ±inf) are dropped; a series with fewer than ``min_valid`` finite
  values gets NaN slope and p-value.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import xarray as xr

__all__ = ["theil_sen_mk_numpy", "trend_test", "DEFAULT_MIN_VALID"]

DEFAULT_MIN_VALID = 10
"""Fewest finite values a series needs for a trend (fewer → NaN)."""


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
def _series(x: np.ndarray, t: np.ndarray, min_valid: int, xv: np.ndarray, tv: np.ndarray,
            buf: np.ndarray, work: np.ndarray, samp: np.ndarray) -> tuple[float, float]:
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

    # Tie groups (only when some pair is tied): sort the values and count runs.
    ties = 0.0
    if tied_pairs > 0:
        srt = np.sort(xv[:n])
        run = 1
        for k in range(1, n + 1):
            if k < n and srt[k] == srt[k - 1]:
                run += 1
            else:
                if run > 1:
                    ties += run * (run - 1) * (2 * run + 5)
                run = 1
    slope = _median(buf, m, work, samp)
    var_s = (n * (n - 1) * (2 * n + 5) - ties) / 18.0

    if s > 0:
        z = (s - 1) / math.sqrt(var_s)
    elif s < 0:
        z = (s + 1) / math.sqrt(var_s)
    else:
        z = 0.0
    # 2 (1 - Phi(|z|)) written with erfc: equal to pymannkendall's form and exact in the tail.
    p = math.erfc(abs(z) / math.sqrt(2.0))
    return slope, p


@numba.njit(nogil=True, cache=True)
def _kernel(x: np.ndarray, t: np.ndarray, min_valid: int) -> tuple[np.ndarray, np.ndarray]:
    npix, nt = x.shape
    slope = np.empty(npix)
    p = np.empty(npix)
    xv = np.empty(nt)
    tv = np.empty(nt)
    npairs = max(nt * (nt - 1) // 2, 1)
    buf = np.empty(npairs)
    work = np.empty(npairs)
    samp = np.empty(32)
    for k in range(npix):
        slope[k], p[k] = _series(x[k], t, min_valid, xv, tv, buf, work, samp)
    return slope, p


def theil_sen_mk_numpy(
    x: np.ndarray, t: np.ndarray | None = None, min_valid: int = DEFAULT_MIN_VALID
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
    lead = x.shape[:-1]
    flat = np.ascontiguousarray(x.reshape(-1, n))
    slope, p = _kernel(flat, t, int(min_valid))
    return slope.reshape(lead), p.reshape(lead)


def trend_test(
    series: xr.DataArray,
    dim: str = "year",
    *,
    per: float = 10.0,
    min_valid: int = DEFAULT_MIN_VALID,
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

    Returns
    -------
    Dataset with ``trend`` (units of ``series`` per ``per`` units of ``dim``) and
    ``p_value`` (two-sided), both with the dims of ``series`` less ``dim``.
    """
    if dim not in series.dims:
        raise ValueError(f"series has no dimension {dim!r} (dims: {series.dims})")
    t = np.asarray(series[dim].values, dtype=np.float64) if dim in series.coords else None
    if series.chunks is not None:
        series = series.chunk({dim: -1})

    slope, p = xr.apply_ufunc(
        theil_sen_mk_numpy,
        series,
        input_core_dims=[[dim]],
        output_core_dims=[[], []],
        kwargs={"t": t, "min_valid": min_valid},
        dask="parallelized",
        output_dtypes=[np.float64, np.float64],
    )
    return xr.Dataset({"trend": slope * per, "p_value": p})
