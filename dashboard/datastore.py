"""The dashboard's state: the work directory, the shared selections and what they select.

One :class:`DataStore` per browser session holds the controls every tab shares (scenario,
season, compared product, period, month, the explorer's cell) and the values derived from them
that views draw: the explorer's two maps of the selected month (:attr:`DataStore.month_maps`)
and the selected cell's series (:attr:`DataStore.cell_series`). Each derived value is computed
once per change of what it depends on, however many views bind to it. The data behind it are
read through the cached loaders of :mod:`dashboard.loaders`, so all sessions of a server share
one copy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
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
from dashboard.config import (
    DEFAULT_PIXEL,
    SCENARIO_LABELS,
    SEASON_LABELS,
    STEP_LABELS,
    product_label,
)
from dashboard.contain import code_span, describe, escape_markdown, log_failure
from dashboard.projection import DEFAULT_PROJECTION, PROJECTION_LABELS, PROJECTIONS
from dashboard.widgets import DiscreteSlider
from smcore import runstate
from smcore.analysis.partition import PARTITION_FRACTIONS
from smcore.config import SEASONS, Config
from smcore.errors import ConfigError, InputError
from smcore.evaluation.calibration import gaussian_interval
from smcore.workdir import STEPS, WorkDir, artifact, workdir_config

__all__ = [
    "DataStore", "MonthMaps", "INTERVAL_COLUMNS", "SUMMARY_TYPES", "check_summary",
    "uncertainty_field",
]

log = logging.getLogger(__name__)

SSM_ATTRS = {"units": "m3 m-3", "standard_name": "volume_fraction_of_condensed_water_in_soil"}
INTERVAL_COLUMNS = ("CMIP6_DL_q05", "CMIP6_DL_q95")
"""Columns of a cell's series with the bounds of CMIP6_DL's 90 % interval (m3 m-3)."""


UNCERTAINTY_LABELS = {
    "interval_width": "CMIP6_DL 90 % interval width",
    "ssm_members_spread": "CMIP6_DL ensemble spread",
}
"""Title of the explorer's uncertainty map, by the name of the field it shows."""


def uncertainty_field(sd: xr.DataArray | None, spread: xr.DataArray | None) -> xr.DataArray | None:
    """The uncertainty map of one month (lat, lon; m3 m-3) from the product's ancillary fields.

    The width of the 90 % predictive interval (``interval_width`` = 2 · 1.645 · ``ssm_sd``)
    where the product has ``ssm_sd``; else the deep ensemble's ``ssm_members_spread`` (the
    networks' disagreement only, not an interval); else None.
    """
    if sd is not None:
        lo, hi = gaussian_interval(np.zeros_like(sd.values), sd.values)
        return sd.copy(data=(hi - lo).astype(np.float32)).rename("interval_width").assign_attrs(
            units="m3 m-3",
            long_name="width of CMIP6_DL's 90 % predictive interval (2 x 1.645 x ssm_sd)",
        )
    if spread is not None:
        return spread.rename("ssm_members_spread").assign_attrs(
            units="m3 m-3", long_name="standard deviation of the deep ensemble's members"
        )
    return None


@dataclass(frozen=True, eq=False)
class MonthMaps:
    """The explorer's maps of one month: CMIP6_DL, the compared product and the uncertainty.

    ``dl`` and ``other`` are (lat, lon) fields in m3 m-3; ``other`` is ``product`` (an ESM or
    ``ensemble_mean``) bilinear from the coarse inputs, NaN where ``dl`` is NaN.
    ``uncertainty`` is :func:`uncertainty_field` of the product's month (None without one).
    """

    experiment: str
    month: str
    product: str
    dl: xr.DataArray
    other: xr.DataArray
    uncertainty: xr.DataArray | None = None

    @property
    def uncertainty_title(self) -> str:
        """Title of the uncertainty map (empty without one)."""
        if self.uncertainty is None:
            return ""
        label = UNCERTAINTY_LABELS.get(str(self.uncertainty.name), str(self.uncertainty.name))
        return f"{label} · {self.month}"

    @property
    def dl_title(self) -> str:
        """Title of the CMIP6_DL map."""
        return f"CMIP6_DL · {self.month} · {SCENARIO_LABELS.get(self.experiment, self.experiment)}"

    @property
    def other_title(self) -> str:
        """Title of the compared product's map."""
        scenario = SCENARIO_LABELS.get(self.experiment, self.experiment)
        return f"{product_label(self.product)} · {self.month} · {scenario}"

    def to_dataset(self) -> xr.Dataset:
        """The maps as a dataset (m3 m-3), for export."""
        fields = {
            "CMIP6_DL": self.dl.drop_vars("time", errors="ignore").assign_attrs(SSM_ATTRS),
            self.product: self.other.assign_attrs(
                SSM_ATTRS, comment="bilinear from the 2° model grid"
            ),
        }
        if self.uncertainty is not None:
            fields[f"CMIP6_DL_{self.uncertainty.name}"] = self.uncertainty.drop_vars(
                "time", errors="ignore"
            )
        return xr.Dataset(fields, attrs={"experiment": self.experiment, "month": self.month})


SUMMARY_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "n_parameters": ((int,), "a whole number"),
    "device": ((str,), "a text"),
    "amp": ((bool, str), "true, false or a precision name"),
    "epochs_run": ((int,), "a whole number"),
    "stopped_early": ((bool,), "true or false"),
    "best_epoch": ((int, type(None)), "a whole number or null"),
    "best_val_loss": ((int, float, type(None)), "a number or null"),
    "seconds": ((int, float), "a number"),
}
"""The ``summary.json`` fields the Model tab shows: accepted JSON types, in words."""


def check_summary(summary: object, path: str | Path) -> dict[str, Any]:
    """``summary`` (the parsed ``summary.json``), refused when a shown field has another type.

    The file must hold an object whose fields listed in :data:`SUMMARY_TYPES` have those
    types; else an :class:`InputError` names the file, the field and its value. Booleans are
    not numbers here (``"epochs_run": true`` is refused); other fields pass.
    """
    if not isinstance(summary, dict):
        raise InputError(path, f"expected a JSON object, found {type(summary).__name__}")
    for key, (types, words) in SUMMARY_TYPES.items():
        if key not in summary:
            continue
        value = summary[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            shown = repr(value)
            shown = shown if len(shown) <= 80 else shown[:79] + "…"
            raise InputError(path, f"{key!r} is {shown}, expected {words}")
        if key == "best_epoch" and isinstance(value, int) and value < 0:
            raise InputError(path, f"'best_epoch' is {value}, expected an epoch (≥ 0)")
    return summary


def _default_month(labels: list[str], current: str | None) -> str | None:
    """``current`` if it is one of ``labels``, else the latest July, else the last month."""
    if not labels or current in labels:
        return current if labels else None
    julys = [lab for lab in labels if lab.endswith("-07")]  # a summer map is the most telling
    return julys[-1] if julys else labels[-1]


class DataStore(Viewer):
    """Shared selections of a session, what they select, and read access to one work directory.

    The data methods raise :class:`dashboard.loaders.ArtifactMissing` when a file is absent;
    views turn that into an explanation of what to run. Problems with the work directory's
    recorded configuration are kept in :attr:`problems` and shown in the sidebar.
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
    pixel = param.NumericTuple(
        default=DEFAULT_PIXEL, length=2, doc="The explorer's selected cell (lon, lat), degrees."
    )
    projection = param.Selector(
        default=DEFAULT_PROJECTION,
        objects=list(PROJECTIONS),
        doc="Projection of every map: latitude/longitude or Albers equal-area for China.",
    )
    presentation = param.Boolean(
        default=False, doc="Presentation mode: larger fonts, no tool bars (for a projector)."
    )

    # derived from the selections above (set by the store only)
    explorer_experiment = param.String(
        default="historical",
        constant=True,
        doc="Experiment shown by the explorer: historical, or the scenario in the scenario period.",
    )
    month_maps = param.ClassSelector(
        class_=MonthMaps,
        constant=True,
        doc="The explorer's maps of the selected month (None without a month).",
    )
    cell_series = param.DataFrame(
        constant=True,
        doc="Monthly series of the selected cell (see pixel_series); None when unreadable.",
    )
    series_error = param.String(
        default="", constant=True, doc="Why the selected cell's series could not be read."
    )
    maps_error = param.String(
        default="", constant=True, doc="Why the selected month's maps could not be read."
    )
    series_loading = param.Boolean(
        default=False, constant=True, doc="A cell's series is being read (served sessions)."
    )
    run_state = param.Dict(
        default=None,
        constant=True,
        allow_None=True,
        doc="The pipeline step running now and its progress (smcore.runstate.read), or None; "
        "read again every few seconds in a served session (update_status).",
    )

    def __init__(self, workdir: str | Path | WorkDir, **params: Any) -> None:
        wd = workdir if isinstance(workdir, WorkDir) else WorkDir(workdir)
        if not wd.root.is_dir():
            raise InputError(wd.root, "work directory does not exist")
        super().__init__()
        self.workdir = wd
        self._sidebar = pn.Column(sizing_mode="stretch_width")
        self._status = pn.pane.Markdown("", sizing_mode="stretch_width", name="status")
        self._structure_key = self._structure_stamps()
        scenarios = self._read_structure()
        # objects are set per instance (after __init__), never on the class
        self.param.season.objects = {SEASON_LABELS.get(s, s): s for s in SEASONS}
        self.param.period.objects = {"Historical": "historical", "Scenario": "future"}
        self.param.projection.objects = dict(PROJECTION_LABELS)
        if scenarios:
            params.setdefault("scenario", "ssp245" if "ssp245" in scenarios else scenarios[0])
        with param.parameterized.discard_events(self), param.edit_constant(self):
            self.run_state = runstate.read(wd)
            self.param.update(**params)
            self._follow_period()
            self._snap_pixel()
        # the derived values of the initial selection, read now (the first page shows them)
        if self.month is not None:
            self._set_month_maps()  # a failure: the explorer explains it when it is opened
            request = self._series_request()
            self._set_series(request, self._read_series(request))

    # -- configuration ----------------------------------------------------
    def _read_structure(self) -> list[str]:
        """Read the configuration, experiments and channels; set the selectors' options.

        Returns the scenarios.
        """
        # one line per problem of the recorded configuration or manifest, shown in the sidebar
        self.problems: list[str] = []
        # the work directory's configuration; None when its record is unusable
        self.config: Config | None = self._read_config()
        self.experiments, scenarios = self._read_experiments()
        self.channels = self._read_channels()
        self.param.scenario.objects = {SCENARIO_LABELS.get(e, e): e for e in scenarios}
        self.param.product.objects = {
            "Ensemble mean": "ensemble_mean",
            **{m: m for m in self.channels},
        }
        return scenarios

    def _structure_stamps(self) -> tuple[int | None, ...]:
        """Stamps of the files the store's options come from: the manifest and the products."""
        rels = [artifact("manifest").relative()]
        try:
            experiments = self.workdir.experiments()
        except InputError:
            experiments = []
        rels += [artifact("product").relative(e) for e in experiments or ["historical"]]
        stamps: list[int | None] = []
        for rel in rels:
            try:
                stamps.append(loaders.stamp(loaders.resolve_artifact(self.root, rel)))
            except (InputError, OSError):
                stamps.append(None)
        return tuple(stamps)

    def refresh(self) -> bool:
        """Follow a pipeline that is still writing: re-read what the options come from.

        When the manifest or a product appeared or changed since the last look, the
        configuration, experiments, channels, scenarios and months are read again (the
        selections are kept where still possible) and the sidebar's controls rebuilt.
        Returns whether anything was re-read.
        """
        key = self._structure_stamps()
        if key == self._structure_key:
            return False
        self._structure_key = key
        scenarios = self._read_structure()
        with param.parameterized.batch_call_watchers(self):
            if scenarios and self.scenario not in scenarios:
                self.scenario = "ssp245" if "ssp245" in scenarios else scenarios[0]
            if self.product not in self.param.product.objects.values():
                self.product = "ensemble_mean"
            had_month = self.month is not None
            self._follow_period()
            if not had_month and self.month is not None:
                self._snap_pixel()
        if self.month is not None and self.month_maps is None:
            self._set_month_maps()
        if self.cell_series is None:
            request = self._series_request()
            self._set_series(request, self._read_series(request))
        self._sidebar.objects = self._sidebar_objects()
        return True

    def _note(self, exc: Exception) -> None:
        if str(exc) not in self.problems:
            self.problems.append(str(exc))

    def _refuse_outside(self, *keys: tuple[str, str | None]) -> None:
        """Raise :class:`InputError` if an artifact leads outside the work directory."""
        for key, experiment in keys:
            try:
                loaders.resolve_artifact(self.root, artifact(key).relative(experiment))
            except loaders.ArtifactMissing:
                pass

    def _read_config(self) -> Config | None:
        """The configuration recorded in the work directory (defaults when none is recorded)."""
        try:
            self._refuse_outside(("manifest", None), ("product", "historical"))
            return workdir_config(self.workdir)
        except (ConfigError, InputError) as exc:
            self._note(exc)
            return None

    def _read_experiments(self) -> tuple[list[str], list[str]]:
        """The prepared experiments and scenarios (the configured ones when nothing is prepared)."""
        if not self.has(artifact("manifest").relative()):
            return [], list(self.config.future_experiments) if self.config is not None else []
        try:
            return self.workdir.experiments(), self.workdir.scenarios()
        except InputError as exc:
            self._note(exc)
            return [], []

    def _read_channels(self) -> list[str]:
        try:
            return [str(c) for c in self.manifest().get("channels", [])]
        except Exception:  # noqa: BLE001 - no channels; the problem is noted or shown by the tabs
            return []

    def configured_years(self, period: str) -> str:
        """The years of a configured period (``test``, ``baseline``…) as ``Y0-Y1``, or ``?``."""
        if self.config is None:
            return "?"
        return "-".join(map(str, getattr(self.config.periods, period)))

    @property
    def root(self) -> Path:
        """Absolute path of the work directory."""
        return self.workdir.root

    # -- the explorer's selection -----------------------------------------
    @param.depends("period", "scenario", watch=True)
    def _follow_period(self) -> None:
        """Show the experiment the period selects, with its months (the month kept if it has it)."""
        experiment = "historical"
        if self.period != "historical" and self.scenario:
            experiment = str(self.scenario)
        try:
            labels = month_labels(self.product_ssm(experiment)["time"].values)
        except Exception as exc:  # noqa: BLE001 - no months; the explorer says why
            log_failure(log, f"months of {experiment}", exc)
            labels = []
        with param.parameterized.batch_call_watchers(self), param.edit_constant(self):
            self.explorer_experiment = experiment
            if labels != list(self.param.month.objects):
                self.param.month.objects = labels
            self.month = _default_month(labels, self.month)

    def _snap_pixel(self) -> None:
        """Move the selected cell to the centre of the nearest land cell of the product."""
        try:
            ssm = self.product_ssm(self.explorer_experiment)
            i, j = self.pixel_index(self.explorer_experiment, *self.pixel)
            first = loaders.product_month(self.root, self.explorer_experiment, 0).values
        except Exception as exc:  # noqa: BLE001 - the cell stays; the explorer says why
            log_failure(log, "the explorer's first cell", exc)
            return
        if not np.isfinite(first[i, j]):
            land = np.argwhere(np.isfinite(first))
            if land.size:
                i, j = land[np.argmin(((land - [i, j]) ** 2).sum(axis=1))]
        self.pixel = (float(ssm["lon"].values[j]), float(ssm["lat"].values[i]))

    def _maps_request(self) -> tuple[str, str | None, str]:
        return (self.explorer_experiment, self.month, self.product)

    def _read_maps(self, request: tuple[str, str | None, str]) -> MonthMaps | str | None:
        """The maps of ``request``, why they cannot be read, or None without a month."""
        experiment, month, product = request
        if month is None:
            return None
        try:
            return self._month_maps(experiment, month, product)
        except Exception as exc:  # noqa: BLE001 - shown in the explorer, not raised
            log_failure(log, f"explorer maps of {month}", exc)
            return describe(exc)

    def _set_maps(
        self, request: tuple[str, str | None, str], result: MonthMaps | str | None
    ) -> None:
        if request != self._maps_request():
            return  # the selection changed meanwhile: a newer read is under way
        maps, error = (None, result) if isinstance(result, str) else (result, "")
        with param.edit_constant(self):
            self.param.update(month_maps=maps, maps_error=error)

    def _set_month_maps(self) -> None:
        """Read the selected month's maps now; a failure empties them and says why."""
        request = self._maps_request()
        self._set_maps(request, self._read_maps(request))

    @param.depends("explorer_experiment", "month", "product", watch=True)
    async def _update_month_maps(self) -> None:
        """Read the selected month's maps (in a served session on the loader thread)."""
        request = self._maps_request()
        await self._derive(request, self._read_maps, self._set_maps)

    def read_month_maps(self) -> MonthMaps:
        """The explorer's maps of the selected experiment, month and product, read now."""
        experiment, month, product = self._maps_request()
        if month is None:
            raise InputError(self.workdir.path("product", experiment), "no month to show")
        return self._month_maps(experiment, month, product)

    def current_month_maps(self) -> MonthMaps:
        """:attr:`month_maps` when they show the selection, else :meth:`read_month_maps`.

        In a served session the maps of a new selection arrive a moment later (:meth:`_derive`).
        """
        maps = self.month_maps
        if maps is not None and (maps.experiment, maps.month, maps.product) == (
            self._maps_request()
        ):
            return maps
        return self.read_month_maps()

    def _month_maps(self, experiment: str, month: str, product: str) -> MonthMaps:
        dl = self.product_month(experiment, month)
        other = self.comparison_month(experiment, month, product, like=dl)
        return MonthMaps(experiment, month, product, dl, other,
                         self.uncertainty_month(experiment, month))

    def _series_request(self) -> tuple[str, float, float, str]:
        return (self.explorer_experiment, *self.pixel, self.product)

    def _read_series(self, request: tuple[str, float, float, str]) -> pd.DataFrame | str:
        try:
            return self.pixel_series(*request)
        except Exception as exc:  # noqa: BLE001 - shown in the explorer, not raised
            log_failure(log, "explorer series", exc)
            return describe(exc)

    def _set_series(
        self, request: tuple[str, float, float, str], result: pd.DataFrame | str
    ) -> None:
        if request != self._series_request():
            return  # the selection changed meanwhile: a newer read is under way
        with param.edit_constant(self):
            if isinstance(result, str):
                self.param.update(cell_series=None, series_error=result, series_loading=False)
            else:
                self.param.update(cell_series=result, series_error="", series_loading=False)

    @param.depends("explorer_experiment", "pixel", "product", watch=True)
    async def _update_series(self) -> None:
        """Read the selected cell's series (in a served session on the loader thread).

        :attr:`series_loading` is set meanwhile (:meth:`_derive`).
        """
        request = self._series_request()
        await self._derive(
            request, self._read_series, self._set_series, partial(self._set_loading, request)
        )

    def _set_loading(self, request: tuple[str, float, float, str]) -> None:
        if request == self._series_request():
            with param.edit_constant(self):
                self.series_loading = True

    async def _derive(
        self,
        request: Any,
        read: Callable[[Any], Any],
        apply: Callable[[Any, Any], None],
        loading: Callable[[], None] | None = None,
    ) -> None:
        """``apply(request, read(request))``: a value derived from the selections.

        In a served session ``read`` runs on the loader thread (a month's maps or a long
        record take a moment to decompress, and the reads release the GIL), so the server's
        event loop goes on with other pages meanwhile; ``loading()`` and ``apply`` run on the
        session's event loop, holding the document lock, so views bound to what they set may
        update Bokeh models directly. ``apply`` drops a result whose request is no longer
        the selection. Outside a server, ``read`` and ``apply`` run now.
        """
        doc = pn.state.curdoc
        if doc is None or doc.session_context is None:
            apply(request, read(request))
            return
        # this coroutine runs without the lock: changes to the page go through the event loop
        if loading is not None:
            pn.state.execute(loading, schedule=True)
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(loaders.background(), read, request)
        pn.state.execute(partial(apply, request, result), schedule=True)

    # -- artifacts --------------------------------------------------------
    def has(self, relative: str) -> bool:
        """Whether an artifact exists inside the work directory."""
        try:
            loaders.resolve_artifact(self.root, relative)
        except InputError:
            return False
        return True

    def manifest(self) -> dict[str, Any]:
        """``prepared/manifest.json`` (a JSON object)."""
        rel = artifact("manifest").relative()
        manifest = loaders.read_json(self.root, rel)
        if not isinstance(manifest, dict):
            raise InputError(
                self.root / rel, f"expected a JSON object, found {type(manifest).__name__}"
            )
        return manifest

    def summary(self) -> dict[str, Any]:
        """``training/summary.json``, its values checked (:func:`check_summary`)."""
        rel = artifact("summary").relative()
        return check_summary(loaders.read_json(self.root, rel), self.root / rel)

    def _table(self, key: str, columns: tuple[str, ...], numeric: tuple[str, ...] = ()) -> Any:
        """A CSV artifact that has ``columns``, those of ``numeric`` holding numbers."""
        rel = artifact(key).relative()
        df = loaders.read_csv(self.root, rel)
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise InputError(
                self.root / rel,
                f"no column {', '.join(map(repr, missing))} (found: "
                f"{', '.join(map(str, df.columns)) or 'none'}); truncated, or not smcore's?",
            )
        for c in numeric:
            if c in df.columns and not pd.api.types.is_numeric_dtype(df[c]):
                bad = df[c][pd.to_numeric(df[c], errors="coerce").isna() & df[c].notna()]
                example = repr(bad.iloc[0]) if len(bad) else "?"
                raise InputError(self.root / rel, f"column {c!r} holds {example}, not a number")
        return df

    def history(self) -> pd.DataFrame:
        """``training/history.csv``: loss per epoch."""
        return self._table(
            "history", ("epoch",), ("epoch", "train_loss", "val_loss", "lr", "seconds")
        )

    def metrics(self) -> pd.DataFrame:
        """``evaluation/metrics.csv``: scores of every product."""
        df = self._table("metrics", ("product",))
        numeric = tuple(c for c in df.columns if c != "product")
        return self._table("metrics", ("product",), numeric)

    def taylor(self) -> pd.DataFrame:
        """``evaluation/taylor.csv``: normalised Taylor statistics."""
        return self._table(
            "taylor",
            ("product", "std_norm", "corr", "crmsd_norm"),
            ("std_norm", "corr", "crmsd_norm"),
        )

    def maps(self) -> xr.Dataset:
        """``evaluation/maps.nc``: MAE and r maps."""
        return loaders.read_netcdf(self.root, artifact("maps").relative())

    def regional_series(self) -> xr.Dataset:
        """``evaluation/regional_series.nc``: regional means."""
        return loaders.read_netcdf(self.root, artifact("regional_series").relative())

    def regions(self) -> xr.Dataset:
        """``evaluation/regions.nc``: climate regions."""
        return loaders.read_netcdf(self.root, artifact("regions").relative())

    def trends(self) -> xr.Dataset:
        """``analysis/ssmi_trends.nc``: SSMI trends and p-values."""
        return loaders.read_netcdf(self.root, artifact("trends").relative())

    def change_rates(self) -> pd.DataFrame:
        """``analysis/change_rates.csv`` (percent)."""
        return self._table(
            "change_rates", ("experiment", "region", "period", "timescale", "value"), ("value",)
        )

    def uncertainty_partition(self) -> pd.DataFrame:
        """``analysis/uncertainty_partition.csv``: variance shares per region and year."""
        return self._table(
            "uncertainty_partition",
            ("region", "year", *PARTITION_FRACTIONS),
            ("year", *PARTITION_FRACTIONS),
        )

    def area_fractions(self) -> pd.DataFrame:
        """``analysis/area_fractions.csv``: land drying/wetting."""
        return self._table(
            "area_fractions", ("experiment", "season", "drying", "wetting"), ("drying", "wetting")
        )

    def product_ssm(self, experiment: str) -> xr.DataArray:
        """``ssm(time, lat, lon)`` of ``CMIP6_DL_<experiment>.nc``, checked and lazily opened."""
        return loaders.open_product(self.root, experiment)

    # -- explorer data ----------------------------------------------------
    def product_month(self, experiment: str, month: str) -> xr.DataArray:
        """CMIP6_DL of one month ``YYYY-MM``, m3 m-3, dims (lat, lon)."""
        ssm = self.product_ssm(experiment)
        labels = month_labels(ssm["time"].values)
        if month not in labels:
            raise InputError(self.workdir.product(experiment), f"no month {month}")
        return loaders.product_month(self.root, experiment, labels.index(month))

    def uncertainty_month(self, experiment: str, month: str) -> xr.DataArray | None:
        """:func:`uncertainty_field` of CMIP6_DL in one month ``YYYY-MM`` (None without one)."""
        held = loaders.product_uncertainty(self.root, experiment)
        if not held:
            return None
        index = month_labels(self.product_ssm(experiment)["time"].values).index(month)
        fields = {name: loaders.product_month(self.root, experiment, index, name) for name in held}
        return uncertainty_field(fields.get("ssm_sd"), fields.get("ssm_members_spread"))

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
        ssm = self.product_ssm(experiment)
        return nearest_index(ssm["lat"].values, lat), nearest_index(ssm["lon"].values, lon)

    def pixel_series(self, experiment: str, lon: float, lat: float, product: str) -> pd.DataFrame:
        """Monthly series at the cell nearest (lon, lat), m3 m-3, index = month start.

        Columns: ``reference`` (historical only), ``CMIP6_DL``, ``ensemble_mean`` and, when
        ``product`` is an ESM, that model; coarse series are bilinear at the cell centre. A
        product with ``ssm_sd`` adds :data:`INTERVAL_COLUMNS`, CMIP6_DL's 90 % predictive
        interval (:func:`smcore.evaluation.calibration.gaussian_interval`).
        """
        ssm = self.product_ssm(experiment)
        i, j = self.pixel_index(experiment, lon, lat)
        clat, clon = float(ssm["lat"].values[i]), float(ssm["lon"].values[j])
        columns: dict[str, pd.Series] = {}
        if experiment == "historical":
            try:
                columns["reference"] = loaders.reference_point(self.root, i, j)
            except InputError:
                pass
        columns["CMIP6_DL"] = loaders.product_point(self.root, experiment, i, j)
        if "ssm_sd" in loaders.product_uncertainty(self.root, experiment):
            sd = loaders.product_point(self.root, experiment, i, j, "ssm_sd")
            lo, hi = gaussian_interval(columns["CMIP6_DL"].values, sd.values)
            for name, values in zip(INTERVAL_COLUMNS, (lo, hi), strict=True):
                columns[name] = pd.Series(values.astype(np.float32), index=sd.index)
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
    def step_states(self) -> list[tuple[str, str, list[str]]]:
        """``(step, state, missing files)`` per pipeline step.

        ``state`` is ``done`` (every output there, the step not running), ``running`` (the
        step ``smcore run`` is running now, :mod:`smcore.runstate`), ``partial`` (some
        outputs), ``waiting`` (none yet, a pipeline running) or ``missing`` (none, nothing
        running).
        """
        running = self.run_state
        now = running["step"] if running else None
        experiments = self.experiments or ["historical"]
        out = []
        for step in STEPS:
            outs = self.workdir.outputs(step, experiments)
            files = [p.relative_to(self.root).as_posix() for p in outs]
            missing = [f for f in files if not self.has(f)]
            if step == now:
                state = "running"
            elif not missing:
                state = "done"
            elif len(missing) < len(files):
                state = "partial"
            else:
                state = "waiting" if running else "missing"
            out.append((step, state, missing))
        return out

    def status_markdown(self) -> str:
        """Which outputs of each pipeline step the work directory holds, as a Markdown list.

        ✔ done, ▶ running now (with how far its progress bars are), … waiting for the running
        pipeline, ◐ some files, ✘ none (with the command that writes them).
        """
        lines = [f"**Work directory** {code_span(self.root.name)}"]
        for step, state, missing in self.step_states():
            label = STEP_LABELS.get(step, step)
            if state == "done":
                lines.append(f"- ✔ {label}")
            elif state == "running":
                bars = runstate.describe_progress(runstate.progress_of(self.run_state))
                lines.append(f"- ▶ {label}: running now"
                             + (f" ({escape_markdown(bars)})" if bars else ""))
            elif state == "waiting":
                lines.append(f"- … {label}: waiting")
            elif state == "partial":
                lines.append(f"- ◐ {label}: no {', '.join(Path(f).name for f in missing)}")
            else:
                lines.append(f"- ✘ {label}: run `smcore {step}`")
        return "\n".join(lines)

    def update_status(self) -> None:
        """Read which step runs now and show it in the sidebar.

        :attr:`run_state` and the sidebar's :meth:`status_markdown` each change only when
        they differ from what they hold (nothing is sent to the page otherwise).
        """
        state = runstate.read(self.workdir)
        if state != self.run_state:
            with param.edit_constant(self):
                self.run_state = state
        self._show_status()

    def _show_status(self) -> None:
        """The sidebar's status as :attr:`run_state` says (sent only when it changed)."""
        text = self.status_markdown()
        if self._status.object != text:
            self._status.object = text

    def problem_alerts(self) -> list[pn.pane.Alert]:
        """One alert per problem of the recorded configuration or manifest (:attr:`problems`)."""
        return [
            pn.pane.Alert(
                "**The work directory's configuration cannot be used.** "
                f"{code_span(problem)}\n\n"
                "The tabs show what they can without it.",
                alert_type="danger",
                sizing_mode="stretch_width",
            )
            for problem in self.problems
        ]

    def _sidebar_objects(self) -> list[pn.viewable.Viewable]:
        scenario = (
            DiscreteSlider.from_param(
                self.param.scenario, name="Scenario", sizing_mode="stretch_width"
            )
            if self.param.scenario.objects
            else pn.pane.Markdown("**Scenario**: none prepared")
        )
        season = pn.widgets.Select.from_param(
            self.param.season, name="Season", sizing_mode="stretch_width"
        )
        product = pn.widgets.Select.from_param(
            self.param.product, name="Compare CMIP6_DL with", sizing_mode="stretch_width"
        )
        outline = dict(color="primary", variant="outline", sizing_mode="stretch_width")
        period = pn.widgets.RadioButtonGroup.from_param(self.param.period, name="Period", **outline)
        projection = pn.widgets.Select.from_param(
            self.param.projection, name="Map projection", sizing_mode="stretch_width"
        )
        presentation = pn.widgets.Toggle.from_param(
            self.param.presentation, name="Presentation mode (projector)", **outline
        )
        self._show_status()  # run_state as __init__ or the last tick read it (a tick reads it
        # again right after refresh)
        return [
            *self.problem_alerts(),
            scenario,
            season,
            product,
            pn.pane.Markdown("Explorer period", margin=(0, 10, -10, 10)),
            period,
            projection,
            presentation,
            pn.layout.Divider(),
            self._status,
        ]

    def __panel__(self) -> pn.viewable.Viewable:
        if not self._sidebar.objects:
            self._sidebar.objects = self._sidebar_objects()
        return self._sidebar
