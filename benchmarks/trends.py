"""Speed of the trend kernel against a per-pixel loop of scipy + pymannkendall.

Usage::

    .venv/bin/python benchmarks/trends.py [--nlat 144] [--nlon 264] [--years 86]
                                          [--sample 200] [--threads N] [--chunk 64]
                                          [--mk-test hamed_rao]

Data: random yearly series (trend + red noise, rounded so that ties occur, 2 % NaN) for
every pixel of an ``nlat × nlon`` grid (default: the study's 144 × 264 target grid, all
pixels treated as land) over ``years`` years (default 86 = 2015–2100).

* project: ``smcore.analysis.trends.trend_test`` on the dask-chunked DataArray (chunks of
  ``chunk × chunk`` pixels, threaded scheduler with ``threads`` workers; JIT compilation
  is done on a warm-up call and not timed), with the Mann–Kendall variant ``mk_test``
  (default: ``hamed_rao``, as ``smcore analyse``). Also timed with one thread.
* loop: ``scipy.stats.theilslopes`` + the same variant of pymannkendall
  (``hamed_rao_modification_test`` by default, ``original_test``,
  ``trend_free_pre_whitening_modification_test``) pixel by pixel on a random sample of
  ``sample`` pixels, then scaled to all pixels (said in the output). The results on the
  sample are compared with the project's (max abs difference; p-values only on the
  NaN-free pixels for the corrected variants, which pymannkendall detrends by position
  after dropping NaN, see ``smcore.analysis.trends``).

The last line reads ``trends ratio=<x> project=<s> loop=<s> pixels=<n>``; target ≥ 100×.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import dask
import numpy as np
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smcore.analysis.trends import DEFAULT_MK_TEST, MK_TESTS, trend_test  # noqa: E402

PYMANNKENDALL = {
    "original": "original_test",
    "hamed_rao": "hamed_rao_modification_test",
    "tfpw": "trend_free_pre_whitening_modification_test",
}
"""The pymannkendall function of each variant (the reference loop)."""


def make_data(nlat: int, nlon: int, nyears: int, seed: int = 0) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    years = np.arange(2015, 2015 + nyears)
    slope = rng.normal(scale=0.02, size=(nlat, nlon, 1))
    noise = rng.normal(size=(nlat, nlon, nyears))
    noise[..., 1:] += 0.5 * noise[..., :-1]
    x = np.round(slope * (years - years[0]) + noise, 2)  # 0.01 steps: many ties
    x[rng.random(x.shape) < 0.02] = np.nan
    return xr.DataArray(x, dims=("lat", "lon", "year"), coords={"year": years})


def time_project(
    da: xr.DataArray, chunk: int, threads: int, mk_test: str
) -> tuple[float, xr.Dataset]:
    lazy = da.chunk({"lat": chunk, "lon": chunk, "year": -1})
    t0 = time.perf_counter()
    with dask.config.set(scheduler="threads", num_workers=threads):
        out = trend_test(lazy, "year", mk_test=mk_test).compute()
    return time.perf_counter() - t0, out


def time_loop(
    da: xr.DataArray, sample: int, mk_test: str, seed: int = 1
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    import pymannkendall as mk
    import scipy.stats

    test = getattr(mk, PYMANNKENDALL[mk_test])
    rng = np.random.default_rng(seed)
    flat = da.values.reshape(-1, da.sizes["year"])
    idx = rng.choice(flat.shape[0], size=min(sample, flat.shape[0]), replace=False)
    t = da["year"].values.astype(float)
    slopes = np.empty(len(idx))
    pvals = np.empty(len(idx))
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k, i in enumerate(idx):
            x = flat[i]
            ok = ~np.isnan(x)
            slopes[k] = scipy.stats.theilslopes(x[ok], t[ok]).slope
            pvals[k] = test(x).p
    return time.perf_counter() - t0, idx, slopes, pvals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nlat", type=int, default=144)
    ap.add_argument("--nlon", type=int, default=264)
    ap.add_argument("--years", type=int, default=86)
    ap.add_argument("--sample", type=int, default=200)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--chunk", type=int, default=64)
    ap.add_argument("--mk-test", choices=MK_TESTS, default=DEFAULT_MK_TEST)
    args = ap.parse_args()

    da = make_data(args.nlat, args.nlon, args.years)
    pixels = args.nlat * args.nlon
    print(f"data: {args.nlat} x {args.nlon} = {pixels} pixels x {args.years} years "
          f"({int(np.isnan(da.values).sum())} NaN), cpu_count={os.cpu_count()}")

    t0 = time.perf_counter()
    trend_test(da.isel(lat=slice(0, 2), lon=slice(0, 2)), "year", mk_test=args.mk_test)
    print(f"warm-up (numba JIT or cache load): {time.perf_counter() - t0:.2f} s")

    t_one, _ = time_project(da, args.chunk, 1, args.mk_test)
    t_proj, out = time_project(da, args.chunk, args.threads, args.mk_test)
    print(f"project ({args.mk_test}): {t_proj:.3f} s with {args.threads} thread(s); {t_one:.3f} s "
          f"with 1 thread ({1e6 * t_one / pixels:.1f} us/pixel)")

    t_sample, idx, slopes, pvals = time_loop(da, args.sample, args.mk_test)
    n = len(idx)
    t_loop = t_sample * pixels / n
    print(f"loop (scipy + pymannkendall.{PYMANNKENDALL[args.mk_test]}): {t_sample:.3f} s for a "
          f"sample of {n} pixels ({1e3 * t_sample / n:.2f} ms/pixel), scaled x{pixels / n:.2f} "
          f"to {pixels} pixels = {t_loop:.1f} s (estimated, not run in full)")
    proj_slope = (out["trend"].values / 10.0).reshape(-1)[idx]
    proj_p = out["p_value"].values.reshape(-1)[idx]
    same = np.ones(n, dtype=bool)
    if args.mk_test != "original":
        same = ~np.isnan(da.values.reshape(-1, args.years)[idx]).any(axis=1)
    print(f"agreement on the sample: max |slope diff| = {np.nanmax(np.abs(proj_slope - slopes)):.2e}, "
          f"max |p diff| = {np.nanmax(np.abs(proj_p - pvals)[same], initial=0.0):.2e} "
          f"({int(same.sum())} pixels{'' if args.mk_test == 'original' else ' without NaN'})")
    print(f"single-thread ratio: {t_loop / t_one:.1f}x")
    print(f"trends ratio={t_loop / t_proj:.1f} project={t_proj:.3f} loop={t_loop:.1f} pixels={pixels}")


if __name__ == "__main__":
    main()
