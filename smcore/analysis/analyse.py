"""`smcore analyse`: SSMI trends, change rates and area fractions of the merged product.

Reads the products of the prepared experiments and writes the ``analyse`` artifacts of
:data:`smcore.workdir.ARTIFACTS` (see docs/workdir.md and docs/analysis.md). The pure computations live in
:mod:`~smcore.analysis.ssmi`, :mod:`~smcore.analysis.seasons`,
:mod:`~smcore.analysis.trends` and :mod:`~smcore.analysis.change`; this module opens and
checks the inputs, runs the dask graphs chunk by chunk with a progress bar and writes
the results atomically.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from smcore.analysis.change import (
    area_fractions,
    change_rates,
    model_change_ranges,
    model_regional_series,
    region_masks,
    regional_mean,
    regional_weights,
)
from smcore.analysis.partition import partition_table
from smcore.analysis.robustness import (
    AGREE_SHARE,
    CLASS_MEANINGS,
    MISSING,
    SIGNIFICANT_SHARE,
    robustness_maps,
)
from smcore.analysis.seasons import SEASONS, aggregate
from smcore.analysis.significance import MK_TEST_NAMES, fdr_mask, fdr_rule, significance_label
from smcore.analysis.ssmi import ssmi
from smcore.analysis.trends import DEFAULT_MIN_VALID, DEFAULT_MK_TEST, trend_test
from smcore.config import SCENARIO_LABELS, Config
from smcore.distributed import compute
from smcore.errors import InputError
from smcore.io.atomic import write_csv
from smcore.io.nclock import open_netcdf
from smcore.io.netcdf import provenance_attrs, write_netcdf
from smcore.io.product import check_same_checkpoint, open_product
from smcore.progress import StepBar
from smcore.workdir import WorkDir, artifact, hint_for

__all__ = [
    "AnalysisResult",
    "open_chunked",
    "seasonal_trends",
    "with_significance",
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

TREND_UNITS = "0.1 year-1"  # UDUNITS spelling of "per decade" for a dimensionless index

SIGNIFICANT_ENCODING = {
    "significant": {"dtype": "int8", "_FillValue": np.int8(-1)},
    "robustness": {"dtype": "int8", "_FillValue": np.int8(MISSING)},
}
"""``significant`` (float 1/0/NaN in memory) is stored as a byte with -1 outside land; so is
the AR6 ``robustness`` class."""


@dataclass(frozen=True)
class AnalysisResult:
    """What :func:`analyse` wrote and the headline numbers."""

    trends_path: Path
    change_rates_path: Path
    area_fractions_path: Path
    figures: list[Path] = field(default_factory=list)
    truth_comparison_path: Path | None = None
    truth_comparison: pd.DataFrame | None = None
    partition_path: Path | None = None


@dataclass(frozen=True)
class ModelEnsemble:
    """What the individual (bias-corrected) models say: the trends' robustness per scenario,
    the models' regional means (model, region, time) per experiment, m3 m-3."""

    robustness: dict[str, xr.Dataset]
    regional: dict[str, xr.DataArray]


def _year_span(da: xr.DataArray) -> tuple[int, int]:
    years = da["time"].dt.year.values
    return int(years.min()), int(years.max())


def open_chunked(
    path: str | Path,
    *,
    what: str = "product",
    needs: Iterable[tuple[str, tuple[int, int]]] = (),
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    load_bytes: int = DEFAULT_LOAD_BYTES,
    hint: str = "",
) -> xr.DataArray:
    """A product (or truth) file, checked by :func:`smcore.io.product.open_product`, in
    spatial dask chunks that each hold the whole series (what the trend kernels need).

    Parameters
    ----------
    path : path of the NetCDF file.
    what : what the file is, for messages.
    needs : pairs (name, (first_year, last_year)) of periods the file must cover entirely.
    chunk_bytes : target bytes (float64) of one spatial chunk holding the whole series.
    load_bytes : files whose ``ssm`` is at most this large are read at once (fast: a
        time-chunked file is decompressed once), then chunked in memory.
    hint : appended to the "missing file" message (e.g. which command writes it).

    Returns
    -------
    DataArray (time, lat, lon) float32, m3 m-3, chunked ``{time: -1, lat: c, lon: c}``.

    Raises
    ------
    InputError naming the file and the problem.
    """
    da = open_product(path, what=what, hint=hint, needs=needs, chunks={})
    source = da.attrs["source_file"]
    da = da.astype(np.float32)
    nt, ny, nx = da.shape
    side = max(8, int(math.sqrt(chunk_bytes / (8 * nt))))
    chunks = {"time": -1, "lat": min(side, ny), "lon": min(side, nx)}
    if da.nbytes <= load_bytes:
        try:
            da = da.load()
        except Exception as exc:  # noqa: BLE001
            raise InputError(path, f"cannot read 'ssm': {exc}") from exc
    da = da.chunk(chunks)
    da.attrs["source_file"] = source
    return da


def seasonal_trends(
    ssm: xr.DataArray,
    reference: tuple[int, int],
    *,
    min_valid: int = DEFAULT_MIN_VALID,
    seasons: Sequence[str] = SEASONS,
    mk_test: str = DEFAULT_MK_TEST,
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
    mk_test : str
        The Mann–Kendall variant (:func:`~smcore.analysis.trends.theil_sen_mk_numpy`).

    Returns
    -------
    Dataset (season, lat, lon): ``trend`` (SSMI per decade), ``p_value`` (Mann–Kendall,
    per pixel).
    """
    y = ssm["time"].dt.year
    sub = ssm.isel(time=((y >= reference[0]) & (y <= reference[1])).values)
    index = ssmi(sub, reference)
    parts = [
        trend_test(aggregate(index, s), "year", per=10.0, min_valid=min_valid, mk_test=mk_test)
        for s in seasons
    ]
    out = xr.concat(parts, dim=pd.Index(list(seasons), name="season"))
    return out.transpose("season", ..., "lat", "lon")


def with_significance(trends: xr.Dataset, fdr_alpha: float) -> xr.Dataset:
    """``trends`` with the field-significance mask of each map (all dims but lat, lon).

    Parameters
    ----------
    trends : Dataset (..., lat, lon)
        With ``p_value`` (computed, not lazy).
    fdr_alpha : float
        False discovery rate of :func:`~smcore.analysis.significance.fdr_mask`.

    Returns
    -------
    A copy with ``significant`` (dims of ``p_value``, float32): 1 significant, 0 not, NaN
    where ``p_value`` is NaN (no test: outside land or too few years).
    """
    p = trends["p_value"]
    mask = fdr_mask(p, fdr_alpha).transpose(*p.dims)
    return trends.assign(significant=mask.astype(np.float32).where(p.notnull()))


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
    mk_test, fdr_alpha = cfg.analysis.mk_test, cfg.analysis.fdr_alpha
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
        "comment": (
            f"one test per pixel: {MK_TEST_NAMES[mk_test]}; not corrected for testing many "
            "pixels, see 'significant'"
        ),
        "coverage_content_type": "modelResult",
    }
    ds["significant"].attrs = {
        "long_name": "field significance of the SSMI trend (false discovery rate over the map)",
        "flag_values": np.array([0, 1], dtype=np.int8),
        "flag_meanings": "not_significant significant",
        "comment": (
            "1 where p_value is at most the Benjamini-Hochberg threshold of its "
            f"(experiment, season) map at alpha_FDR = {fdr_alpha:g} (Wilks 2016); "
            "fill value where p_value is missing (outside land)"
        ),
        "mann_kendall_variant": mk_test,
        "fdr_alpha": float(fdr_alpha),
        "coverage_content_type": "qualityInformation",
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
        mann_kendall_test=MK_TEST_NAMES[mk_test],
        field_significance=fdr_rule(fdr_alpha),
        experiment_labels=", ".join(f"{e}={SCENARIO_LABELS.get(e, e)}" for e in trends),
    )
    return ds


def _evaluation_regions(wd: WorkDir, lat: xr.DataArray, lon: xr.DataArray) -> xr.DataArray | None:
    """Masks (region, lat, lon) of the evaluation's climate regions, when evaluate has run."""
    path = wd.path("regions")
    if not path.is_file():
        return None
    try:
        with open_netcdf(path) as ds:
            code = ds["region"].load()
    except Exception as exc:  # noqa: BLE001 - any reader failure names the file
        raise InputError(path, f"cannot read the evaluation regions: {exc}") from exc
    if code.shape != (lat.size, lon.size):
        raise InputError(path, f"region grid {code.shape} differs from the products' grid")
    from smcore.evaluation.regions import REGION_CODES

    masks = [xr.DataArray(code.values == c, dims=("lat", "lon"), coords={"lat": lat, "lon": lon})
             for c in REGION_CODES.values()]
    return xr.concat(masks, dim="region").assign_coords(region=list(REGION_CODES))


def model_ensemble(
    cfg: Config,
    wd: WorkDir,
    experiments: Sequence[str],
    land: xr.DataArray,
    masks: xr.DataArray,
    product_trends: dict[str, xr.Dataset],
    *,
    min_valid: int = DEFAULT_MIN_VALID,
    progress: bool = True,
) -> ModelEnsemble:
    """Robustness of the trends across the models and the models' regional means.

    Each model's SSMI trend and field significance are computed on its coarse grid with the
    product's kernel and test (the SSMI is unchanged by the per-pixel, per-calendar-month bias
    correction); :func:`~smcore.analysis.robustness.robustness_maps` carries the shares to the
    target grid. The regional means are those of the bias-corrected, bilinearly resampled
    models (:func:`~smcore.analysis.change.model_regional_series`), over ``masks`` (region,
    lat, lon) and ``land`` (lat, lon).
    """
    from smcore.evaluation.baselines import monthly_climatology
    from smcore.prep.store import open_prepared

    store = open_prepared(wd)
    p = cfg.periods
    t0, t1 = store.split("train")
    hist_in = store.inputs("historical").astype(np.float64).load()
    hyears = hist_in["time"].dt.year.values
    train = (hyears >= t0) & (hyears <= t1)
    months = hist_in["time"].dt.month.values[train]
    x = hist_in.transpose("time", "model", "clat", "clon").values[train]
    x_clim = np.moveaxis(monthly_climatology(x.reshape(x.shape[0], -1), months)
                         .reshape(12, *x.shape[1:]), 0, 1)  # (model, 12, clat, clon)
    ref = store.static["reference"]
    ryears = ref["time"].dt.year.values
    rsel = (ryears >= t0) & (ryears <= t1)
    ref_train = ref.isel(time=np.flatnonzero(rsel)).transpose("time", "lat", "lon").values
    ref_months = ref["time"].dt.month.values[rsel]
    ref_clim = monthly_climatology(ref_train.reshape(ref_train.shape[0], -1), ref_months)
    ref_clim = ref_clim.reshape(12, *ref_train.shape[1:])
    clim = xr.DataArray(ref_clim, dims=("time", "lat", "lon"),
                        coords={"time": np.arange(12), "lat": land["lat"], "lon": land["lon"]})
    ref_regional = regional_mean(clim.where(land), masks).transpose("region", "time").values
    weights = regional_weights(masks, land, hist_in["clat"].values, hist_in["clon"].values)
    regional = {"historical": model_regional_series(hist_in, weights, x_clim, ref_regional)}
    robustness: dict[str, xr.Dataset] = {}
    for exp in StepBar(experiments, desc="models' trends", unit="experiment", disable=not progress):
        inputs = store.inputs(exp).astype(np.float64).load()
        regional[exp] = model_regional_series(inputs, weights, x_clim, ref_regional)
        coarse = inputs.rename(clat="lat", clon="lon").transpose("time", "model", "lat", "lon")
        tr = seasonal_trends(coarse, p.future, min_valid=min_valid, mk_test=cfg.analysis.mk_test)
        tr = with_significance(tr.compute(), cfg.analysis.fdr_alpha)
        tr = tr.rename(lat="clat", lon="clon")
        robustness[exp] = robustness_maps(
            tr["trend"], tr["significant"], land["lat"].values, land["lon"].values,
            product_trends[exp]["trend"].notnull(),
        ).transpose("season", "lat", "lon")
    return ModelEnsemble(robustness=robustness, regional=regional)


def with_robustness(
    ds: xr.Dataset, robustness: dict[str, xr.Dataset], fdr_alpha: float
) -> xr.Dataset:
    """``ssmi_trends.nc`` with the AR6 classes and both shares (experiment, season, lat, lon)."""
    rob = xr.concat([robustness[e] for e in ds["experiment"].values],
                    dim=pd.Index(ds["experiment"].values, name="experiment"))
    out = ds.assign(**{k: rob[k] for k in ("share_significant", "share_agree", "robustness")})
    rule = (f"robust: at least {SIGNIFICANT_SHARE:.0%} of the models have a significant trend "
            f"(field significance, alpha_FDR = {fdr_alpha:g}, as the product) and at least "
            f"{AGREE_SHARE:.0%} agree on the sign of the multi-model median trend; conflicting: "
            f"at least {SIGNIFICANT_SHARE:.0%} significant, fewer than {AGREE_SHARE:.0%} agree; "
            "no robust change: fewer significant")
    coarse = ("computed per model on its coarse grid (the SSMI is unchanged by the per-pixel "
              "bias correction) and resampled bilinearly to this grid as the models are")
    out["share_significant"].attrs = {
        "long_name": "share of the bias-corrected models with a significant SSMI trend",
        "units": "1", "valid_min": np.float32(0), "valid_max": np.float32(1),
        "comment": coarse, "coverage_content_type": "qualityInformation",
    }
    out["share_agree"].attrs = {
        "long_name": "share of the models whose SSMI trend has the sign of the multi-model median",
        "units": "1", "valid_min": np.float32(0), "valid_max": np.float32(1),
        "comment": coarse, "coverage_content_type": "qualityInformation",
    }
    out["robustness"].attrs = {
        "long_name": (
            "robustness of the SSMI trend across models (IPCC AR6 Atlas, advanced approach)"
        ),
        "flag_values": np.array(sorted(CLASS_MEANINGS), dtype=np.int8),
        "flag_meanings": " ".join(CLASS_MEANINGS[k] for k in sorted(CLASS_MEANINGS)),
        "comment": rule + "; from share_significant and share_agree",
        "references": "Gutierrez et al. (2021), IPCC AR6 WGI Atlas, Cross-Chapter Box Atlas.1",
        "coverage_content_type": "qualityInformation",
    }
    out["trend"].attrs = dict(
        out["trend"].attrs, ancillary_variables="p_value significant robustness"
    )
    return out


def _annual(series: xr.DataArray, years: tuple[int, int]) -> xr.DataArray:
    """Calendar-year means (…, year) of a monthly series over complete years in ``years``."""
    y = series["time"].dt.year
    sub = series.isel(time=np.flatnonzero(((y >= years[0]) & (y <= years[1])).values))
    counts = sub["time"].dt.year.to_series().value_counts()
    full = sorted(int(k) for k, n in counts.items() if n == 12)
    annual = sub.groupby("time.year").mean("time")
    return annual.sel(year=full)


def uncertainty_partition(regional: dict[str, xr.DataArray], cfg: Config) -> pd.DataFrame:
    """Hawkins–Sutton partition per region and year of the models' regional means."""
    p = cfg.periods
    scenarios = [e for e in regional if e != "historical"]
    annual = xr.concat([_annual(regional[e], p.future) for e in scenarios],
                       dim=pd.Index(scenarios, name="scenario"))
    baseline = _annual(regional["historical"], p.baseline).mean("year")
    return partition_table(annual, baseline)


def analyse(
    cfg: Config,
    workdir: WorkDir | str | Path,
    *,
    truth: str | Path | None = None,
    progress: bool = True,
    report: Callable[[str], None] = print,
    figures: bool = True,
    min_valid: int = DEFAULT_MIN_VALID,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    load_bytes: int = DEFAULT_LOAD_BYTES,
    client: Any = None,
) -> AnalysisResult:
    """Compute and write everything of ``WD/analysis/`` for the prepared scenarios.

    Parameters
    ----------
    cfg : the study configuration (periods, region split).
    workdir : work directory holding ``prepared/`` and ``product/``.
    truth : folder with ``truth_<experiment>.nc`` to compare trend maps against (demo).
    progress : show progress bars.
    report : receives one line per file written.
    figures : write the PNG figures.
    min_valid, chunk_bytes, load_bytes : see :func:`seasonal_trends`, :func:`open_chunked`.
    client : a ``distributed.Client`` (see :mod:`smcore.distributed`): the dask graphs run
        on its cluster, the workers reading their spatial chunks from the files
        (``load_bytes`` is then ignored); the results are identical.

    Returns
    -------
    :class:`AnalysisResult` with the written paths.
    """
    wd = workdir if isinstance(workdir, WorkDir) else WorkDir(workdir)
    wd.sweep()  # temporaries of a killed earlier run
    experiments = wd.scenarios()
    if not experiments:
        raise InputError(wd.manifest, "no future experiment was prepared: nothing to analyse")
    check_same_checkpoint(
        [wd.product(e) for e in ["historical", *experiments]],
        hint=f"run `{hint_for(artifact('product').relative('historical'), wd.root)}` again",
    )
    p = cfg.periods
    mk_test, fdr_alpha = cfg.analysis.mk_test, cfg.analysis.fdr_alpha
    # On a cluster the workers read their chunks themselves: nothing is loaded here.
    open_kw = {"chunk_bytes": chunk_bytes, "load_bytes": load_bytes if client is None else 0}

    def product(exp: str, needs: list[tuple[str, tuple[int, int]]], **kw: Any) -> xr.DataArray:
        rel = artifact("product").relative(exp)
        return open_chunked(wd.root / rel, what="network product", needs=needs,
                            hint=f"run `{hint_for(rel, wd.root)}` first", **kw)

    def truth_file(exp: str, **kw: Any) -> xr.DataArray:
        return open_chunked(Path(truth) / f"truth_{exp}.nc", what="truth", needs=truth_needs,
                            hint="expected the demo truth folder", **kw)

    needs = [("periods.future", p.future)] + [(f"change period {a}-{b}", (a, b)) for a, b in p.change]
    truth_needs = [("periods.future", p.future)]
    base_needs = [("the baseline", p.baseline)]

    # Check every input (metadata only) before any long computation or any write.
    hist = product("historical", base_needs, chunk_bytes=chunk_bytes, load_bytes=0)
    for exp in experiments:
        _check_same_grid(product(exp, needs, load_bytes=0), hist)
        if truth is not None:
            _check_same_grid(truth_file(exp, load_bytes=0), hist)

    hist = product("historical", base_needs, **open_kw)
    masks = region_masks(hist["lat"], hist["lon"], cfg.north_south_split_lat, cfg.east_of_lon)
    (hist_regional,) = compute(
        regional_mean(hist, masks), desc="historical", progress=progress, client=client
    )

    trends: dict[str, xr.Dataset] = {}
    regional: dict[str, xr.DataArray] = {}
    truth_trends: dict[str, xr.Dataset] = {}
    outer = StepBar(experiments, desc="analyse", unit="experiment", disable=not progress)
    for exp in outer:
        ssm = product(exp, needs, **open_kw)
        tr, reg = compute(
            seasonal_trends(ssm, p.future, min_valid=min_valid, mk_test=mk_test),
            regional_mean(ssm, masks),
            desc=f"{exp} trends",
            progress=progress,
            client=client,
        )
        trends[exp], regional[exp] = with_significance(tr, fdr_alpha), reg
        if truth is not None:
            (truth_tr,) = compute(
                seasonal_trends(truth_file(exp, **open_kw), p.future, min_valid=min_valid,
                                mk_test=mk_test),
                desc=f"{exp} truth trends",
                progress=progress,
                client=client,
            )
            truth_trends[exp] = with_significance(truth_tr, fdr_alpha)
    outer.close()

    ds = trends_dataset(trends, cfg, min_valid)
    rates = change_rates(hist_regional, regional, p.baseline, p.change)
    partition = None
    if wd.prepared_store.exists():  # the models themselves: robustness, ranges, partition
        land = hist.isel(time=0).notnull().load()
        more = _evaluation_regions(wd, hist["lat"], hist["lon"])
        all_masks = masks if more is None else xr.concat([masks, more], dim="region")
        models = model_ensemble(cfg, wd, experiments, land, all_masks, trends,
                                min_valid=min_valid, progress=progress)
        ds = with_robustness(ds, models.robustness, fdr_alpha)
        own = {e: s.sel(region=list(masks["region"].values)) for e, s in models.regional.items()}
        ranges = model_change_ranges(own["historical"], {e: own[e] for e in experiments},
                                     p.baseline, p.change)
        rates = rates.merge(ranges, on=["experiment", "region", "period", "timescale"], how="left")
        partition = uncertainty_partition(models.regional, cfg)
    fractions = area_fractions(ds)
    comparison = None
    if truth is not None:
        comparison = pd.concat(
            [compare_trends(trends[e], truth_trends[e], e) for e in experiments], ignore_index=True
        )

    encoding = {k: v for k, v in SIGNIFICANT_ENCODING.items() if k in ds}
    trends_path = write_netcdf(ds, wd.path("trends"), encoding=encoding)
    rates_path = write_csv(rates, wd.path("change_rates"))
    partition_path = None
    if partition is not None:
        partition_path = write_csv(partition, wd.path("uncertainty_partition"))
    fractions_path = write_csv(fractions, wd.path("area_fractions"))
    comparison_path = None
    if comparison is not None:
        comparison_path = write_csv(comparison, wd.path("truth_trend_comparison"))
    else:
        # A comparison left by an earlier --truth run would no longer match these trends.
        wd.path("truth_trend_comparison").unlink(missing_ok=True)
    written: list[Path] = []
    if figures:
        from smcore.analysis.figures import plot_change_rates, plot_trend_maps

        for exp in experiments:
            written.append(
                plot_trend_maps(
                    trends[exp], truth_trends.get(exp), wd.path("trend_maps_figure", exp),
                    title=f"SSMI trend {p.future[0]}-{p.future[1]}, {SCENARIO_LABELS.get(exp, exp)}",
                    significance=significance_label(mk_test, fdr_alpha),
                    comparison=None if comparison is None else comparison[comparison.experiment == exp],
                )
            )
        written.append(plot_change_rates(rates, wd.path("change_rates_figure"), baseline=p.baseline))
    result = AnalysisResult(
        trends_path=trends_path,
        change_rates_path=rates_path,
        area_fractions_path=fractions_path,
        figures=written,
        truth_comparison_path=comparison_path,
        truth_comparison=comparison,
        partition_path=partition_path,
    )
    for path in (trends_path, rates_path, fractions_path, partition_path, *written):
        if path is None:
            continue
        report(f"wrote {path}")
    if comparison is not None:
        annual = comparison[comparison["season"] == "annual"]
        for row in annual.itertuples():
            report(f"truth: {row.experiment} annual trend spatial r = {row.spatial_r:.3f}")
    return result


def _check_same_grid(a: xr.DataArray, b: xr.DataArray) -> None:
    for c in ("lat", "lon"):
        if a.sizes[c] != b.sizes[c] or not np.allclose(a[c].values, b[c].values, atol=1e-6):
            raise InputError(
                a.attrs.get("source_file"),
                f"{c} grid differs from {b.attrs.get('source_file')} "
                f"({a.sizes[c]} vs {b.sizes[c]} points)",
            )
