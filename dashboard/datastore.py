"""The dashboard's state: the work directory, the shared selections, and data access.

One :class:`DataStore` per browser session holds the controls every tab shares (scenario,
season, compared product, period, month). The data behind it are read through the cached
loaders of :mod:`dashboard.loaders`, so all sessions of a server share one copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import param
import xarray as xr
from panel.viewable import Viewer

from dashboard import loaders
from dashboard.compute import month_labels, nearest_index, point_series, upsample
from dashboard.config import SCENARIO_LABELS, SEASON_LABELS
from smcore.config import SEASONS, Config
from smcore.errors import InputError
from smcore.workdir import WorkDir

__all__ = ["DataStore", "ARTIFACTS"]

ARTIFACTS: tuple[tuple[str, str], ...] = (
    ("prepared/manifest.json", "prepared inputs"),
    ("training/history.csv", "training history"),
    ("product/CMIP6_DL_historical.nc", "historical product"),
    ("evaluation/metrics.csv", "evaluation"),
    ("analysis/ssmi_trends.nc", "future trends"),
    ("analysis/change_rates.csv", "change rates"),
)
"""Artifacts whose presence the sidebar reports, with a short name."""


class DataStore(Viewer):
    """Shared selections of a session plus read access to the artifacts of one work directory.

    The data methods raise :class:`dashboard.loaders.ArtifactMissing` when a file is absent;
    views turn that into an explanation of what to run.
    """

    scenario = param.Selector(
        default=None,
        objects=[],
        doc="Future experiment (SSP) shown by the trend, change and future explorer views.",
    )
    season = param.Selector(
        default="annual", objects=list(SEASONS), doc="Season of the trend maps."
    )
    product = param.Selector(
        default="ensemble_mean",
        objects=["ensemble_mean"],
        doc="ESM or ensemble mean compared with CMIP6_DL in the explorer.",
    )
    period = param.Selector(
        default="historical",
        objects=["historical", "future"],
        doc="Historical record or the selected scenario in the explorer.",
    )
    month = param.Selector(default=None, objects=[], doc="Month (YYYY-MM) of the explorer maps.")

    def __init__(self, workdir: str | Path | WorkDir, **params: Any) -> None:
        wd = workdir if isinstance(workdir, WorkDir) else WorkDir(workdir)
        if not wd.root.is_dir():
            raise InputError(wd.root, "work directory does not exist")
        super().__init__()
        self.workdir = wd
        self.config = self._read_config(wd)
        self.channels = self._read_channels()
        scenarios = list(self.config.future_experiments)
        # objects are set per instance (after __init__), never on the class
        self.param.scenario.objects = {SCENARIO_LABELS.get(e, e): e for e in scenarios}
        self.param.season.objects = {SEASON_LABELS.get(s, s): s for s in SEASONS}
        self.param.period.objects = {"Historical": "historical", "Scenario": "future"}
        self.param.product.objects = {
            "Ensemble mean": "ensemble_mean",
            **{m: m for m in self.channels},
        }
        params.setdefault(
            "scenario", "ssp245" if "ssp245" in scenarios else (scenarios[0] if scenarios else None)
        )
        with param.parameterized.discard_events(self):
            self.param.update(**params)
        self._update_months()

    # -- configuration ----------------------------------------------------
    @staticmethod
    def _read_config(wd: WorkDir) -> Config:
        try:
            manifest = loaders.read_json(wd.root, "prepared/manifest.json")
            return Config.from_dict(manifest["config"])
        except (InputError, KeyError, TypeError, ValueError):
            return Config()

    def _read_channels(self) -> list[str]:
        try:
            return [str(c) for c in self.manifest().get("channels", [])]
        except InputError:
            return []

    @property
    def root(self) -> Path:
        """Absolute path of the work directory."""
        return self.workdir.root

    @property
    def explorer_experiment(self) -> str:
        """Experiment shown by the explorer: ``historical`` or the selected scenario."""
        if self.period == "historical" or not self.scenario:
            return "historical"
        return str(self.scenario)

    @param.depends("period", "scenario", watch=True)
    def _update_months(self) -> None:
        try:
            labels = month_labels(self.product_dataset(self.explorer_experiment)["time"].values)
        except InputError:
            labels = []
        current = self.month
        self.param.month.objects = labels
        if labels and current not in labels:
            # the latest July, else the last month: a summer map is the most telling default
            julys = [lab for lab in labels if lab.endswith("-07")]
            self.month = julys[-1] if julys else labels[-1]
        elif not labels:
            self.month = None

    # -- artifacts --------------------------------------------------------
    def has(self, relative: str) -> bool:
        """Whether an artifact exists inside the work directory."""
        try:
            loaders.resolve_artifact(self.root, relative)
        except InputError:
            return False
        return True

    def manifest(self) -> dict[str, Any]:
        """``prepared/manifest.json``."""
        return loaders.read_json(self.root, "prepared/manifest.json")

    def summary(self) -> dict[str, Any]:
        """``training/summary.json``."""
        return loaders.read_json(self.root, "training/summary.json")

    def history(self) -> pd.DataFrame:
        """``training/history.csv``: loss per epoch."""
        return loaders.read_csv(self.root, "training/history.csv")

    def metrics(self) -> pd.DataFrame:
        """``evaluation/metrics.csv``: scores of every product."""
        return loaders.read_csv(self.root, "evaluation/metrics.csv")

    def taylor(self) -> pd.DataFrame:
        """``evaluation/taylor.csv``: normalised Taylor statistics."""
        return loaders.read_csv(self.root, "evaluation/taylor.csv")

    def maps(self) -> xr.Dataset:
        """``evaluation/maps.nc``: MAE and r maps."""
        return loaders.read_netcdf(self.root, "evaluation/maps.nc")

    def regional_series(self) -> xr.Dataset:
        """``evaluation/regional_series.nc``: regional means."""
        return loaders.read_netcdf(self.root, "evaluation/regional_series.nc")

    def regions(self) -> xr.Dataset:
        """``evaluation/regions.nc``: climate regions."""
        return loaders.read_netcdf(self.root, "evaluation/regions.nc")

    def trends(self) -> xr.Dataset:
        """``analysis/ssmi_trends.nc``: SSMI trends and p-values."""
        return loaders.read_netcdf(self.root, "analysis/ssmi_trends.nc")

    def change_rates(self) -> pd.DataFrame:
        """``analysis/change_rates.csv`` (percent)."""
        return loaders.read_csv(self.root, "analysis/change_rates.csv")

    def area_fractions(self) -> pd.DataFrame:
        """``analysis/area_fractions.csv``: land drying/wetting."""
        return loaders.read_csv(self.root, "analysis/area_fractions.csv")

    def product_dataset(self, experiment: str) -> xr.Dataset:
        """``CMIP6_DL_<experiment>.nc``, lazily opened."""
        return loaders.open_product(self.root, experiment)

    # -- explorer data ----------------------------------------------------
    def product_month(self, experiment: str, month: str) -> xr.DataArray:
        """CMIP6_DL of one month ``YYYY-MM``, m3 m-3, dims (lat, lon)."""
        ds = self.product_dataset(experiment)
        labels = month_labels(ds["time"].values)
        if month not in labels:
            raise InputError(
                loaders.resolve_artifact(self.root, f"product/CMIP6_DL_{experiment}.nc"),
                f"no month {month}",
            )
        return ds["ssm"].isel(time=labels.index(month)).load().rename("ssm")

    def comparison_month(
        self, experiment: str, month: str, product: str, like: xr.DataArray
    ) -> xr.DataArray:
        """``product`` (an ESM or ``ensemble_mean``) of one month on the grid of ``like``.

        Bilinear from the coarse inputs, NaN where ``like`` is NaN; m3 m-3, dims (lat, lon).
        """
        coarse = loaders.coarse_field(self.root, experiment, product)
        labels = month_labels(coarse["time"].values)
        if month not in labels:
            raise InputError(
                self.workdir.prepared_store, f"{experiment} inputs have no month {month}"
            )
        field = upsample(
            coarse.isel(time=labels.index(month)),
            like["lat"].values,
            like["lon"].values,
            mask=np.isfinite(like.values),
        )
        return field.rename("ssm").assign_attrs(units="m3 m-3")

    def pixel_index(self, experiment: str, lon: float, lat: float) -> tuple[int, int]:
        """Row and column of the product cell nearest to (lon, lat)."""
        ds = self.product_dataset(experiment)
        return nearest_index(ds["lat"].values, lat), nearest_index(ds["lon"].values, lon)

    def pixel_series(self, experiment: str, lon: float, lat: float, product: str) -> pd.DataFrame:
        """Monthly series at the cell nearest (lon, lat), m3 m-3, index = month start.

        Columns: ``reference`` (historical only), ``CMIP6_DL``, ``ensemble_mean`` and, when
        ``product`` is an ESM, that model; coarse series are bilinear at the cell centre.
        """
        ds = self.product_dataset(experiment)
        i, j = self.pixel_index(experiment, lon, lat)
        clat, clon = float(ds["lat"].values[i]), float(ds["lon"].values[j])
        columns: dict[str, pd.Series] = {}
        if experiment == "historical":
            try:
                columns["reference"] = loaders.reference_point(self.root, i, j)
            except InputError:
                pass
        columns["CMIP6_DL"] = loaders.product_point(self.root, experiment, i, j)
        for name in dict.fromkeys(["ensemble_mean", product]):
            try:
                coarse = loaders.coarse_field(self.root, experiment, name)
            except InputError:
                continue
            values = point_series(coarse, clat, clon)
            index = pd.DatetimeIndex(coarse["time"].values).to_period("M").to_timestamp()
            columns[name] = pd.Series(values.astype(np.float32), index=index)
        df = pd.DataFrame(columns)
        df.index.name = "time"
        if not np.isfinite(df["CMIP6_DL"]).any():
            df.loc[:, [c for c in df.columns if c != "CMIP6_DL"]] = (
                np.nan
            )  # off land: nothing to compare
        df.attrs.update(lon=clon, lat=clat, experiment=experiment, units="m3 m-3")
        return df

    # -- sidebar ----------------------------------------------------------
    def status_markdown(self) -> str:
        """Which artifacts of the work directory exist, as a Markdown list."""
        lines = [f"**Work directory** `{self.root.name}`"]
        for rel, label in ARTIFACTS:
            lines.append(f"- {'✔' if self.has(rel) else '✘'} {label}")
        return "\n".join(lines)

    def __panel__(self) -> pn.viewable.Viewable:
        scenario = pn.widgets.DiscreteSlider.from_param(
            self.param.scenario, name="Scenario", sizing_mode="stretch_width"
        )
        season = pn.widgets.Select.from_param(
            self.param.season, name="Season", sizing_mode="stretch_width"
        )
        product = pn.widgets.Select.from_param(
            self.param.product, name="Compare CMIP6_DL with", sizing_mode="stretch_width"
        )
        period = pn.widgets.RadioButtonGroup.from_param(
            self.param.period,
            name="Period",
            color="primary",
            variant="outline",
            sizing_mode="stretch_width",
        )
        return pn.Column(
            scenario,
            season,
            product,
            pn.pane.Markdown("Explorer period", margin=(0, 10, -10, 10)),
            period,
            pn.layout.Divider(),
            pn.pane.Markdown(self.status_markdown(), sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
