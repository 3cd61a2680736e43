"""PNG figures of the analysis (matplotlib, Agg backend, no map downloads)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402

from smcore.analysis.change import REGIONS, TIMESCALES  # noqa: E402
from smcore.config import SCENARIO_LABELS  # noqa: E402
from smcore.io.atomic import atomic_path  # noqa: E402

__all__ = ["plot_trend_maps", "plot_change_rates"]


def _limit(*arrays: np.ndarray) -> float:
    vals = np.concatenate([np.abs(a[np.isfinite(a)]).ravel() for a in arrays])
    if vals.size == 0:
        return 1.0
    lim = float(np.percentile(vals, 98))
    return lim if lim > 0 else 1.0


def plot_trend_maps(
    product: xr.Dataset,
    truth: xr.Dataset | None,
    path: str | Path,
    *,
    title: str,
    comparison: pd.DataFrame | None = None,
    significance: str = "significant",
) -> Path:
    """Trend maps (SSMI per decade) per season; a second row for the truth when given.

    Pixels flagged in ``significant`` (season, lat, lon; 1 = significant, see
    :func:`~smcore.analysis.analyse.with_significance`) are dotted; ``significance`` names
    the rule in the title. ``comparison`` (rows of ``compare_trends``) adds the spatial r to
    each truth panel title.
    """
    rows = [("CMIP6_DL", product)] + ([("truth", truth)] if truth is not None else [])
    seasons = [str(s) for s in product["season"].values]
    lim = _limit(*[ds["trend"].values for _, ds in rows])
    lon = product["lon"].values
    lat = product["lat"].values
    fig, axes = plt.subplots(
        len(rows), len(seasons), figsize=(3.2 * len(seasons), 2.0 * len(rows) + 0.7),
        squeeze=False, constrained_layout=True,
    )
    mesh = None
    for i, (name, ds) in enumerate(rows):
        for j, season in enumerate(seasons):
            ax = axes[i, j]
            tr = ds["trend"].sel(season=season).values
            mesh = ax.pcolormesh(lon, lat, tr, cmap="RdBu", vmin=-lim, vmax=lim, shading="nearest")
            sig = (ds["significant"].sel(season=season).values == 1) & np.isfinite(tr)
            step = max(1, int(np.ceil(max(sig.shape) / 60)))
            yy, xx = np.nonzero(sig[::step, ::step])
            ax.scatter(lon[::step][xx], lat[::step][yy], s=0.3, c="k", linewidths=0)
            label = f"{name} {season}"
            if name == "truth" and comparison is not None:
                row = comparison[comparison["season"] == season]
                if len(row):
                    label += f"  r={float(row['spatial_r'].iloc[0]):.2f}"
            ax.set_title(label, fontsize=9)
            ax.set_aspect("equal")
            ax.tick_params(labelsize=7)
    fig.suptitle(f"{title} (dots: {significance})", fontsize=10)
    if mesh is not None:
        fig.colorbar(mesh, ax=axes, shrink=0.8, label="SSMI per decade")
    path = Path(path)
    with atomic_path(path, suffix=".tmp.png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def plot_change_rates(rates: pd.DataFrame, path: str | Path, *, baseline: tuple[int, int]) -> Path:
    """Heat maps of the change rates (%): one panel per region, rows experiment × period."""
    fig, axes = plt.subplots(
        len(REGIONS), 1, figsize=(11, 1.2 + 0.32 * _nrows(rates) * len(REGIONS)),
        squeeze=False, constrained_layout=True,
    )
    for ax, region in zip(axes[:, 0], REGIONS):
        sub = rates[rates["region"] == region]
        table = sub.pivot_table(index=["experiment", "period"], columns="timescale", values="value",
                                sort=False)
        table = table.reindex(columns=list(TIMESCALES))
        vals = table.values.astype(float)
        finite = vals[np.isfinite(vals)]
        lim = float(np.abs(finite).max()) if finite.size else 1.0
        lim = lim if lim > 0 else 1.0
        im = ax.imshow(vals, cmap="BrBG", vmin=-lim, vmax=lim, aspect="auto")
        for (r, c), v in np.ndenumerate(vals):
            if np.isfinite(v):
                ax.text(c, r, f"{v:.1f}", ha="center", va="center", fontsize=6)
        ax.set_xticks(range(len(TIMESCALES)), TIMESCALES, fontsize=7)
        ax.set_yticks(
            range(len(table.index)),
            [f"{SCENARIO_LABELS.get(e, e)} {p}" for e, p in table.index],
            fontsize=7,
        )
        ax.set_title(f"{region}: SSM change rate (%) relative to {baseline[0]}-{baseline[1]}",
                     fontsize=9)
        fig.colorbar(im, ax=ax, label="%")
    path = Path(path)
    with atomic_path(path, suffix=".tmp.png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def _nrows(rates: pd.DataFrame) -> int:
    return max(1, rates[["experiment", "period"]].drop_duplicates().shape[0])
