"""Separable regridding between regular lat/lon grids with 1-D weight matrices.

A 2-D field ``f (ny_src, nx_src)`` goes to the destination as ``wy @ f @ wx.T``; fields
with leading dims (time, month) broadcast. Used by the demo generator to show the
synthetic truth to each model through its own grid and to put the truth on the
ERA5-Land grid.
"""

from __future__ import annotations

import numpy as np

from smcore.regrid import linear_weights as _linear_weights

__all__ = ["area_weights", "linear_weights", "apply", "separable", "edges_from_centres"]


def edges_from_centres(centres: np.ndarray) -> np.ndarray:
    """Cell edges (n+1,) of cells with the given ascending centres (n,)."""
    c = np.asarray(centres, float)
    mid = (c[1:] + c[:-1]) / 2
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


def area_weights(dst_bounds: np.ndarray, src_edges: np.ndarray, *,
                 period: float | None = None) -> np.ndarray:
    """Row-normalised overlap of destination cells with source cells along one axis.

    ``dst_bounds`` (n, 2) are destination cell edges, ``src_edges`` (m+1,) ascending
    source edges. With ``period`` (360 for longitude) destination cells are matched
    to the source modulo the period. Rows of cells that overlap no source cell are
    zero. Returns (n, m). Latitude weights use the overlap in degrees (the cos(lat)
    factor is constant within a row of a separable average and cancels).
    """
    dst = np.sort(np.asarray(dst_bounds, float), axis=1)
    src = np.asarray(src_edges, float)
    w = np.zeros((dst.shape[0], src.size - 1))
    shifts = [0.0] if period is None else [-period, 0.0, period]
    for s in shifts:
        lo = np.maximum(dst[:, :1] + s, src[None, :-1])
        hi = np.minimum(dst[:, 1:] + s, src[None, 1:])
        w += np.clip(hi - lo, 0.0, None)
    total = w.sum(axis=1, keepdims=True)
    return np.divide(w, total, out=np.zeros_like(w), where=total > 0)


def linear_weights(dst: np.ndarray, src: np.ndarray) -> np.ndarray:
    """Linear interpolation weights (n, m) from ascending source points to destination points.

    Destination points outside the source range take the nearest end value
    (:func:`smcore.regrid.linear_weights`, arguments in the demo's order).
    """
    return _linear_weights(src, dst)


def apply(wy: np.ndarray, field: np.ndarray, wx: np.ndarray) -> np.ndarray:
    """``wy @ field @ wx.T`` over the last two dims of ``field``, in float32."""
    return separable(wy, np.asarray(field, np.float32), wx)


def separable(wy: np.ndarray, field: np.ndarray, wx: np.ndarray) -> np.ndarray:
    """``wy @ field @ wx.T`` over the last two dims of ``field`` (…, ny, nx) → (…, nyd, nxd).

    Each product is one large matrix product over all leading dims at once; weight
    matrices that are mostly zero (area overlaps, truncated kernels) are used as sparse
    matrices. numpy's stacked ``matmul`` is an order of magnitude slower here.
    """
    dtype = np.result_type(field.dtype, np.float32)
    *lead, ny, nx = field.shape
    n = int(np.prod(lead)) if lead else 1
    nyd, nxd = wy.shape[0], wx.shape[0]
    f2 = np.ascontiguousarray(field, dtype=dtype).reshape(n * ny, nx)
    g = _times_transpose(f2, wx.astype(dtype, copy=False))  # (n·ny, nxd)
    g = np.ascontiguousarray(g.reshape(n, ny, nxd).transpose(1, 0, 2)).reshape(ny, n * nxd)
    out = _times_transpose(g.T, wy.astype(dtype, copy=False))  # (n·nxd, nyd)
    out = out.reshape(n, nxd, nyd).transpose(0, 2, 1)
    return np.ascontiguousarray(out, dtype=dtype).reshape(*lead, nyd, nxd)


def _times_transpose(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``a @ w.T`` for a dense ``a`` (n, m) and weights ``w`` (k, m), sparse when that pays."""
    if np.count_nonzero(w) < 0.2 * w.size:
        from scipy import sparse

        return np.asarray(sparse.csr_matrix(w) @ a.T).T
    return a @ w.T
