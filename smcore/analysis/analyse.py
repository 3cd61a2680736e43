"""`smcore analyse`: SSMI trends, change rates and area fractions of the merged product.

Reads ``WD/product/CMIP6_DL_<experiment>.nc`` and writes ``WD/analysis/`` (see
docs/workdir.md and docs/analysis.md). The pure computations live in
:mod:`~smcore.analysis.ssmi`, :mod:`~smcore.analysis.seasons`,
:mod:`~smcore.analysis.trends` and :mod:`~smcore.analysis.change`; this module opens and
checks the inputs, runs the dask graphs chunk by chunk with a progress bar and writes
the results atomically.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from smcore.analysis.change import area_fractions, change_rates, region_masks, regional_mean
from smcore.analysis.seasons import SEASONS, aggregate
from smcore.analysis.ssmi import ssmi
from smcore.analysis.trends import DEFAULT_MIN_VALID, trend_test
from smcore.config import SCENARIO_LABELS, Config
from smcore.distributed import compute
from smcore.errors import InputError
from smcore.io.atomic import write_csv
from smcore.io.netcdf import provenance_attrs, write_netcdf
from smcore.workdir import WorkDir

__all__ = [
    "AnalysisResult",
    "open_ssm",
    "seasonal_trends",
    "compare_trends",
    "trends_dataset",
    "analyse",
    "DEFAULT_CHUNK_BYTES",
    "DEFAULT_LOAD_BYTES",
]

DEFAULT_CHUNK_BYTES = 32 * 2**20
"""Target size (float64) of one spatial chunk × full time series."""

DEFAULT_LOAD_BYTES = 1 * 2**30
"""Files whose ``ssm`` is at most this large are read in one go, then chunked in memory
(fast: a time-chunked file is decompressed once). Larger ones are read chunk by chunk."""

ACCEPTED_UNITS = {"m3 m-3", "m3/m3", "m^3 m^-3", "m**3 m**-3", "m3.m-3", "1"}
TREND_UNITS = "0.1 year-1"  # UDUNITS spelling of "per decade" for a dimensionless index


@dataclass(frozen=True)
class AnalysisResult:
    """What :func:`analyse` wrote and the headline numbers."""

    trends_path: Path
    change_rates_path: Path
    area_fractions_path: Path
    figures: list[Path] = field(default_factory=list)
    truth_comparison_path: Path | None = None
    truth_comparison: pd.DataFrame | None = None


def _year_span(da: xr.DataArray) -> tuple[int, int]:
    years = da["time"].dt.year.values
    return int(years.min()), int(years.max())


def open_ssm(
    path: str | Path,
    *,
    needs: Iterable[tuple[str, tuple[int, int]]] = (),
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    load_bytes: int = DEFAULT_LOAD_BYTES,
    hint: str = "",
) -> xr.DataArray:
    """Open ``ssm(time, lat, lon)`` of a product (or truth) file, checked and dask-chunked.

    Parameters
    ----------
    path : path of the NetCDF file.
    needs : pairs (name, (first_year, last_year)) of periods the file must cover entirely.
    chunk_bytes : target bytes (float64) of one spatial chunk holding the whole series.
    load_bytes : files whose ``ssm`` is at most this large are read at once.
    hint : appended to the "missing file" message (e.g. which command writes it).

    Returns
    -------
    DataArray (time, lat, lon), m3 m-3, chunked ``{time: -1, lat: c, lon: c}``.

    Raises
    ------
    InputError naming the file and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found" + (f"; {hint}" if hint else ""))
    try:
        ds = xr.open_dataset(path, chunks={})
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad input file
        raise InputError(path, f"cannot read NetCDF: {exc}") from exc
    if "ssm" not in ds:
        raise InputError(path, f"no variable 'ssm' (found: {', '.join(map(str, ds.data_vars)) or 'none'})")
    da = ds["ssm"]
    if set(da.dims) != {"time", "lat", "lon"}:
        raise InputError(path, f"'ssm' has dims {da.dims}, expected (time, lat, lon)")
    units = str(da.attrs.get("units", "")).strip()
    if units not in ACCEPTED_UNITS:
        raise InputError(path, f"'ssm' has units {units!r}, expected 'm3 m-3'")
    try:
        years = da["time"].dt.year.values
        months = da["time"].dt.month.values
    except (AttributeError, TypeError) as exc:
        raise InputError(path, f"time coordinate is not decodable as dates: {exc}") from exc
    if len(years) == 0:
        raise InputError(path, "'ssm' has no time steps")
    stamp = years * 12 + months
    if np.any(np.diff(stamp) <= 0):
        raise InputError(path, "time steps are not strictly increasing monthly values")
    present = set(years.tolist())
    for name, (y0, y1) in needs:
        missing = [y for y in range(y0, y1 + 1) if y not in present]
        if missing:
            raise InputError(
                path,
                f"covers {years.min()}-{years.max()} but {name} needs {y0}-{y1} "
                f"(missing {missing[0]}{'…' if len(missing) > 1 else ''})",
            )
    da = da.transpose("time", "lat", "lon").astype(np.float32)
    nt, ny, nx = da.shape
    side = max(8, int(math.sqrt(chunk_bytes / (8 * nt))))
    chunks = {"time": -1, "lat": min(side, ny), "lon": min(side, nx)}
    if da.nbytes <= load_bytes:
        try:
            da = da.load()
        except Exception as exc:  # noqa: BLE001
            raise InputError(path, f"cannot read 'ssm': {exc}") from exc
    da = da.chunk(chunks)
    da.attrs["source_file"] = str(path)
    return da


def seasonal_trends(
    ssm: xr.DataArray,
    reference: tuple[int, int],
    *,
    min_valid: int = DEFAULT_MIN_VALID,
    seasons: Sequence[str] = SEASONS,
) -> xr.Dataset:
    """SSMI trend maps of one experiment, lazily.

    Parameters
    ----------
    ssm : DataArray (time, lat, lon)
        Monthly soil moisture, m3 m-3; the months of the ``reference`` years are used.
    reference : (first, last)
        Years of the SSMI statistics and of the trend (2015–2100).
    min_valid : int
        Fewest finite yearly values for a trend.
    seasons : which of :data:`SEASONS` to compute.

    Returns
    -------
    Dataset (season, lat, lon): ``trend`` (SSMI per decade), ``p_value`` (Mann–Kendall).
    """
    y = ssm["time"].dt.year
    sub = ssm.isel(time=((y >= reference[0]) & (y <= reference[1])).values)
    index = ssmi(sub, reference)
    parts = [trend_test(aggregate(index, s), "year", per=10.0, min_valid=min_valid) for s in seasons]
    out = xr.concat(parts, dim=pd.Index(list(seasons), name="season"))
    return out.transpose("season", "lat", "lon")


def compare_trends(product: xr.Dataset, truth: xr.Dataset, experiment: str) -> pd.DataFrame:
    """Spatial agreement of product and truth trend maps, one row per season.

    Columns: ``experiment, season, spatial_r`` (Pearson r over pixels finite in both),
    ``rmse`` and ``bias`` (SSMI per decade), ``product_mean``, ``truth_mean``,
    ``sign_agreement`` (share of pixels with the same trend sign), ``n_pixels``.
    """
    rows = []
    for season in product["season"].values:
        a = product["trend"].sel(season=season).values.ravel()
        b = truth["trend"].sel(season=season).values.ravel()
        ok = np.isfinite(a) & np.isfinite(b)
        a, b = a[ok], b[ok]
        n = int(ok.sum())
        r = float(np.corrcoef(a, b)[0, 1]) if n > 2 and a.std() > 0 and b.std() > 0 else float("nan")
        rows.append(
            {
                "experiment": experiment,
                "season": str(season),
                "spatial_r": r,
                "rmse": float(np.sqrt(np.mean((a - b) ** 2))) if n else float("nan"),
                "bias": float(np.mean(a - b)) if n else float("nan"),
                "product_mean": float(a.mean()) if n else float("nan"),
                "truth_mean": float(b.mean()) if n else float("nan"),
                "sign_agreement": float(np.mean(np.sign(a) == np.sign(b))) if n else float("nan"),
                "n_pixels": n,
            }
        )
    return pd.DataFrame(rows)


def trends_dataset(trends: dict[str, xr.Dataset], cfg: Config, min_valid: int) -> xr.Dataset:
    """Stack per-experiment trend maps into the ``ssmi_trends.nc`` dataset with CF metadata."""
    ds = xr.concat(list(trends.values()), dim=pd.Index(list(trends), name="experiment"))
    ds = ds.transpose("experiment", "season", "lat", "lon")
    y0, y1 = cfg.periods.future
    ds["trend"] = ds["trend"].astype(np.float32)
    ds["p_value"] = ds["p_value"].astype(np.float32)
    ds["trend"].attrs = {
        "long_name": "Theil-Sen trend of the standardised soil moisture index (SSMI) per decade",
        "units": TREND_UNITS,
        "comment": (
            f"median of pairwise slopes of the {y0}-{y1} annual/seasonal mean SSMI, times 10 "
            "(SSMI is dimensionless; the units read 'per decade'); NaN where fewer than "
            f"{min_valid} finite years"
        ),
        "coverage_content_type": "modelResult",
    }
    ds["p_value"].attrs = {
        "long_name": "two-sided Mann-Kendall p-value of the SSMI trend (tie-corrected variance)",
        "units": "1",
        "valid_min": np.float32(0.0),
        "valid_max": np.float32(1.0),
        "coverage_content_type": "modelResult",
    }
    ds["experiment"].attrs = {"long_name": "CMIP6 experiment_id"}
    ds["season"].attrs = {
        "long_name": "aggregation period of the SSMI series",
        "comment": "annual: Jan-Dec; DJF: December of the previous year with January and February",
    }
    ds.attrs = provenance_attrs(
        "SSMI trends of the merged CMIP6 surface soil moisture (smcore)",
        config_json=cfg.to_json(),
        ssmi_reference_period=f"{y0}-{y1}",
        trend_method="Theil-Sen median slope (Sen 1968) per decade; Mann-Kendall test",
        experiment_labels=", ".join(f"{e}={SCENARIO_LABELS.get(e, e)}" for e in trends),
    )
    return ds


def analyse(
    wd: WorkDir | str | Path,
    cfg: Config,
    *,
    truth: str | Path | None = None,
    progress: bool = True,
    figures: bool = True,
    min_valid: int = DEFAULT_MIN_VALID,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    load_bytes: int = DEFAULT_LOAD_BYTES,
    client: Any = None,
) -> AnalysisResult:
    """Compute and write everything of ``WD/analysis/``.

    Parameters
    ----------
    wd : work directory holding ``product/``.
    cfg : the study configuration (experiments, periods, region split).
    truth : folder with ``truth_<experiment>.nc`` to compare trend maps against (demo).
    progress : show progress bars.
    figures : write the PNG figures.
    min_valid, chunk_bytes, load_bytes : see :func:`seasonal_trends`, :func:`open_ssm`.
    client : a ``distributed.Client`` (see :mod:`smcore.distributed`): the dask graphs run
        on its cluster, the workers reading their spatial chunks from the files
        (``load_bytes`` is then ignored); the results are identical.

    Returns
    -------
    :class:`AnalysisResult` with the written paths.
    """
    wd = wd if isinstance(wd, WorkDir) else WorkDir(wd)
    experiments = list(cfg.future_experiments)
    if not experiments:
        raise InputError(None, "the configuration has no future experiment to analyse")
    p = cfg.periods
    # On a cluster the workers read their chunks themselves: nothing is loaded here.
    open_kw = {"chunk_bytes": chunk_bytes, "load_bytes": load_bytes if client is None else 0}
    hint = "run 'smcore predict' first"

    needs = [("periods.future", p.future)] + [(f"change period {a}-{b}", (a, b)) for a, b in p.change]
    truth_needs = [("periods.future", p.future)]
    truth_hint = "expected the demo truth folder"

    # Check every input (metadata only) before any long computation or any write.
    hist = open_ssm(wd.product("historical"), needs=[("the baseline", p.baseline)], hint=hint,
                    chunk_bytes=chunk_bytes, load_bytes=0)
    for exp in experiments:
        _check_same_grid(open_ssm(wd.product(exp), needs=needs, hint=hint, load_bytes=0), hist)
        if truth is not None:
            tpath = Path(truth) / f"truth_{exp}.nc"
            _check_same_grid(open_ssm(tpath, needs=truth_needs, hint=truth_hint, load_bytes=0), hist)

    hist = open_ssm(wd.product("historical"), needs=[("the baseline", p.baseline)], hint=hint, **open_kw)
    masks = region_masks(hist["lat"], hist["lon"], cfg.north_south_split_lat, cfg.east_of_lon)
    (hist_regional,) = compute(
        regional_mean(hist, masks), desc="historical", progress=progress, client=client
    )

    trends: dict[str, xr.Dataset] = {}
    regional: dict[str, xr.DataArray] = {}
    truth_trends: dict[str, xr.Dataset] = {}
    outer = tqdm(experiments, desc="analyse", unit="experiment", disable=not progress)
    for exp in outer:
        ssm = open_ssm(wd.product(exp), needs=needs, hint=hint, **open_kw)
        tr, reg = compute(
            seasonal_trends(ssm, p.future, min_valid=min_valid),
            regional_mean(ssm, masks),
            desc=f"{exp} trends",
            progress=progress,
            client=client,
        )
        trends[exp], regional[exp] = tr, reg
        if truth is not None:
            tssm = open_ssm(Path(truth) / f"truth_{exp}.nc", needs=truth_needs, hint=truth_hint, **open_kw)
            (truth_trends[exp],) = compute(
                seasonal_trends(tssm, p.future, min_valid=min_valid),
                desc=f"{exp} truth trends",
                progress=progress,
                client=client,
            )
    outer.close()

    ds = trends_dataset(trends, cfg, min_valid)
    rates = change_rates(hist_regional, regional, p.baseline, p.change)
    fractions = area_fractions(ds)
    comparison = None
    if truth is not None:
        comparison = pd.concat(
            [compare_trends(trends[e], truth_trends[e], e) for e in experiments], ignore_index=True
        )

    out = wd.analysis
    trends_path = write_netcdf(ds, out / "ssmi_trends.nc")
    rates_path = write_csv(rates, out / "change_rates.csv")
    fractions_path = write_csv(fractions, out / "area_fractions.csv")
    comparison_path = None
    if comparison is not None:
        comparison_path = write_csv(comparison, out / "truth_trend_comparison.csv")
    else:
        # A comparison left by an earlier --truth run would no longer match these trends.
        (out / "truth_trend_comparison.csv").unlink(missing_ok=True)
    written: list[Path] = []
    if figures:
        from smcore.analysis.figures import plot_change_rates, plot_trend_maps

        for exp in experiments:
            written.append(
                plot_trend_maps(
                    trends[exp], truth_trends.get(exp), out / f"trend_maps_{exp}.png",
                    title=f"SSMI trend {p.future[0]}-{p.future[1]}, {SCENARIO_LABELS.get(exp, exp)}",
                    comparison=None if comparison is None else comparison[comparison.experiment == exp],
                )
            )
        written.append(plot_change_rates(rates, out / "change_rates.png", baseline=p.baseline))
    return AnalysisResult(
        trends_path=trends_path,
        change_rates_path=rates_path,
        area_fractions_path=fractions_path,
        figures=written,
        truth_comparison_path=comparison_path,
        truth_comparison=comparison,
    )


def _check_same_grid(a: xr.DataArray, b: xr.DataArray) -> None:
    for c in ("lat", "lon"):
        if a.sizes[c] != b.sizes[c] or not np.allclose(a[c].values, b[c].values, atol=1e-6):
            raise InputError(
                a.attrs.get("source_file"),
                f"{c} grid differs from {b.attrs.get('source_file')} "
                f"({a.sizes[c]} vs {b.sizes[c]} points)",
            )
