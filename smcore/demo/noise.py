"""Reproducible random fields: keyed random streams, smooth Gaussian fields, AR(1) in time.

A smooth field is white noise on a lattice of nodes convolved with a Gaussian kernel of
standard deviation ``scale`` (degrees). The node lattice is fixed in absolute
coordinates, so one set of node weights can be evaluated on any grid (the truth's 0.25°
grid, a model's native grid): every grid sees the same continuous field. The spatial
correlation of such a field is Gaussian with length ``scale × √2``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from smcore.demo.regrid import separable

__all__ = ["rng_for", "NodeLattice", "ar1_inplace"]

_NODES_PER_SCALE = 1.5
"""Node spacing is ``scale / 1.5``: dense enough for a stationary variance."""


def rng_for(seed: int, *keys: str | int) -> np.random.Generator:
    """An independent random stream for ``(seed, *keys)``.

    The stream depends only on the seed and the keys (e.g. ``"model", "CESM2",
    "bias"``), never on what was drawn before, so adding a model or an experiment
    does not change the numbers of the others.
    """
    words = [int(seed) & 0xFFFFFFFF] + [zlib.crc32(str(k).encode("utf-8")) for k in keys]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(words)))


def _basis(points: np.ndarray, nodes: np.ndarray, scale: float, period: float | None) -> np.ndarray:
    d = points[:, None] - nodes[None, :]
    if period is not None:
        d = (d + period / 2) % period - period / 2
    k = np.exp(-0.5 * (d / scale) ** 2)
    k[np.abs(d) > 4 * scale] = 0.0
    return k


@dataclass(frozen=True)
class NodeLattice:
    """Nodes of a smooth random field: ``scale`` (degrees) and the lat/lon box they cover.

    Longitudes are periodic when the box spans 360°. Points farther than about
    ``4 × scale`` from every node get the value 0.
    """

    scale: float
    lat_min: float = -90.0
    lat_max: float = 90.0
    lon_min: float = 0.0
    lon_max: float = 360.0

    @property
    def periodic(self) -> bool:
        return self.lon_max - self.lon_min >= 360.0 - 1e-9

    @property
    def lat_nodes(self) -> np.ndarray:
        step = self.scale / _NODES_PER_SCALE
        lo = np.floor(self.lat_min / step) * step
        return np.arange(lo, self.lat_max + step / 2, step)

    @property
    def lon_nodes(self) -> np.ndarray:
        step = self.scale / _NODES_PER_SCALE
        if self.periodic:
            n = int(np.ceil(360.0 / step))
            return np.arange(n) * (360.0 / n)
        lo = np.floor(self.lon_min / step) * step
        return np.arange(lo, self.lon_max + step / 2, step)

    @property
    def shape(self) -> tuple[int, int]:
        """Number of (lat, lon) nodes."""
        return (len(self.lat_nodes), len(self.lon_nodes))

    def draw(self, rng: np.random.Generator, n: int | None = None) -> np.ndarray:
        """White node weights, shape ``(n, *shape)`` (or ``shape`` when ``n`` is None), float32."""
        size = self.shape if n is None else (n, *self.shape)
        return rng.standard_normal(size, dtype=np.float32)

    def bases(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Kernel matrices (nlat, nlat_nodes) and (nlon, nlon_nodes), float32.

        Rows are scaled so that the field has unit variance at every point, except rows
        without any node in reach, which are zero.
        """
        lon = np.asarray(lon, float)
        if self.periodic:
            by_lon = _basis(lon % 360.0, self.lon_nodes, self.scale, 360.0)
        else:
            by_lon = _basis(lon, self.lon_nodes, self.scale, None)
        by_lat = _basis(np.asarray(lat, float), self.lat_nodes, self.scale, None)
        out = []
        for b in (by_lat, by_lon):
            norm = np.sqrt((b**2).sum(axis=1, keepdims=True))
            scaled = np.divide(b, norm, out=np.zeros_like(b), where=norm > 1e-6)
            out.append(scaled.astype(np.float32))
        return out[0], out[1]

    def field(self, weights: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Evaluate node weights ``(..., *shape)`` on the grid ``lat × lon``.

        Returns an array of shape ``(..., nlat, nlon)``.
        """
        blat, blon = self.bases(lat, lon)
        return separable(blat, weights, blon)


def ar1_inplace(x: np.ndarray, phi: np.ndarray | float,
                state: np.ndarray | None = None) -> np.ndarray:
    """Turn unit-variance white innovations ``x`` (time first) into a unit-variance AR(1) series.

    ``x[t] = phi * x[t-1] + sqrt(1 - phi²) * e[t]``, in place. ``phi`` broadcasts
    against ``x[0]``. ``state`` is the value before ``x[0]`` (continuing a series);
    without it the series starts from its stationary distribution. Returns ``x``.
    """
    phi = np.asarray(phi, dtype=x.dtype)
    c = np.sqrt(1.0 - phi**2).astype(x.dtype)
    prev = None if state is None else np.asarray(state, dtype=x.dtype)
    for t in range(x.shape[0]):
        if prev is not None:
            x[t] = phi * prev + c * x[t]
        prev = x[t]
    return x
