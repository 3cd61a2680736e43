"""Model tab: loss curves (Fig. 2), run summary, channel set and configuration.

Reads ``training/history.csv`` and ``summary.json``; never loads a checkpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import holoviews as hv
import hvplot.pandas  # noqa: F401 - registers .hvplot on DataFrames
import numpy as np
import pandas as pd
import panel as pn
from bokeh.models import BasicTicker, NumeralTickFormatter

from dashboard.config import SERIES_HEIGHT
from dashboard.contain import escape_markdown, log_failure
from dashboard.loaders import ArtifactMissing
from dashboard.maps import present
from dashboard.views.base import View, csv_download, error_panel
from smcore import runstate
from smcore.errors import InputError

__all__ = ["ModelView", "loss_curves", "summary_markdown", "training_progress"]

log = logging.getLogger(__name__)


def _integer_ticks(plot: Any, element: Any) -> None:
    """Ticks on whole epochs only (no 2.5th epoch)."""
    for axis in plot.state.xaxis:
        axis.ticker = BasicTicker(min_interval=1, desired_num_ticks=8)
        axis.formatter = NumeralTickFormatter(format="0")


def loss_curves(
    history: pd.DataFrame, best_epoch: int | None = None, presentation: bool = False
) -> hv.Overlay:
    """Training and validation loss per epoch (log scale); a dashed line marks the best epoch.

    hvplot lines with a dot per epoch; the epoch axis has whole-number ticks.
    """
    layers: list[hv.Element] = []
    for col, label, color in (
        ("train_loss", "Training loss", "#1f77b4"),
        ("val_loss", "Validation loss", "#d62728"),
    ):
        if col in history.columns:
            style = dict(
                x="epoch", y=col, label=label, color=color, responsive=True,
                height=SERIES_HEIGHT + 60,
            )  # fmt: skip
            layers.append(history.hvplot.line(line_width=2, **style).redim.label(**{col: "Loss"}))
            layers.append(history.hvplot.scatter(**style).redim.label(**{col: "Loss"}).opts(size=5))
    if best_epoch is not None:
        layers.append(
            hv.VLine(best_epoch, label="best epoch").opts(color="#555555", line_dash="dashed")
        )
    positive = all(
        (history[c] > 0).all() for c in ("train_loss", "val_loss") if c in history.columns
    )
    overlay = hv.Overlay(layers).opts(
        title="Loss per epoch (Fig. 2)",
        logy=positive,
        responsive=True,
        height=SERIES_HEIGHT + 60,
        legend_position="top_right",
        show_grid=True,
        xlabel="Epoch",
        ylabel="Loss",
        toolbar="above",
        hooks=[_integer_ticks],
    )
    return present(overlay, presentation)


def training_progress(
    history: pd.DataFrame | None,
    total_epochs: int | None,
    train_months: int | None,
    running: bool,
    bars: Sequence[runstate.Progress] = (),
) -> str:
    """One line on a training run: epoch reached, months per second and time left.

    ``history`` is ``training/history.csv`` (None before the first epoch ends);
    ``total_epochs`` the configured number (early stopping may end the run sooner);
    ``train_months`` the training months one epoch goes through; ``running`` whether the
    pipeline is training now; ``bars`` the running step's progress bars
    (:func:`smcore.runstate.progress_of`), whose innermost one counting months is the epoch
    under way: its months so far give the rate and the time left before the epoch ends; before
    the first epoch another bar (the CPU's precision probe) says what runs instead.
    Empty when there is nothing to say (a finished run).
    """
    done = 0 if history is None or history.empty else int(history["epoch"].max())
    total = f" of {total_epochs}" if total_epochs else ""
    if not running:
        if total_epochs and 0 < done < total_epochs:
            return f"Training stopped after epoch {done}{total} (not running now)."
        return ""
    seconds = (
        history["seconds"].to_numpy(dtype=float)
        if history is not None and "seconds" in history
        else np.array([])
    )
    recent = seconds[np.isfinite(seconds)][-3:]
    per_epoch = float(recent.mean()) if recent.size and recent.mean() > 0 else None
    epoch = next((b for b in reversed(bars) if b.unit == "month" and b.total), None)
    if epoch is not None and 0 < epoch.n <= epoch.total and epoch.elapsed > 0:
        rate = epoch.n / epoch.elapsed
        seconds_per_epoch = per_epoch or epoch.total / rate  # validation included once known
        left = (1 - epoch.n / epoch.total) * seconds_per_epoch
        if total_epochs:
            left += max(total_epochs - done - 1, 0) * seconds_per_epoch
        return " · ".join([
            f"**Training** · epoch {done + 1}{total}: {epoch.n}/{epoch.total} months",
            f"{rate:.1f} months/s",
            f"about {_fmt_seconds(left)} left",
        ])
    if done == 0:
        before = [b for b in bars if b.unit != "epoch"]  # e.g. the CPU's precision probe
        if before:
            what = escape_markdown(runstate.describe_progress(before))
            return f"**Training** · before epoch 1{total}: {what}; the curve appears after epoch 1."
        return f"**Training** · epoch 1{total} under way; the curve appears after it."
    parts = [f"**Training** · epoch {done}{total} done"]
    if per_epoch is not None:
        if train_months:
            parts.append(f"{train_months / per_epoch:.1f} months/s")
        if total_epochs and total_epochs > done:
            parts.append(f"about {_fmt_seconds((total_epochs - done) * per_epoch)} left")
    return " · ".join(parts)


def _fmt_seconds(s: Any) -> str:
    try:
        s = float(s)
    except (TypeError, ValueError):
        return str(s)
    return f"{s / 3600:.1f} h" if s >= 3600 else f"{s / 60:.1f} min" if s >= 60 else f"{s:.0f} s"


def _yes_no(value: object) -> object:
    return {True: "yes", False: "no"}.get(value, value) if isinstance(value, bool) else value


def summary_markdown(
    summary: dict[str, Any], channels: list[str], excluded: dict[str, str] | None = None
) -> str:
    """The run summary (``summary.json``) and the channel set as a Markdown table and list.

    Every value from the files is escaped (:func:`dashboard.contain.escape_markdown`): shown
    as text, never as HTML or Markdown.
    """
    n = summary.get("n_parameters")
    rows = [
        ("Parameters", f"{int(n):,}" if isinstance(n, (int, float)) else "–"),
        ("Device", summary.get("device", "–")),
        ("Mixed precision", summary.get("amp", "–")),
        ("Epochs run", summary.get("epochs_run", "–")),
        ("Stopped early", _yes_no(summary.get("stopped_early", "–"))),
        ("Best epoch", summary.get("best_epoch", "–")),
        (
            "Best validation loss",
            f"{summary['best_val_loss']:.5g}"
            if isinstance(summary.get("best_val_loss"), (int, float))
            else "–",
        ),
        ("Training time", _fmt_seconds(summary.get("seconds", "–"))),
    ]
    md = [
        "| Run | |",
        "|---|---|",
        *(f"| {k} | {escape_markdown(v, max_len=120)} |" for k, v in rows),
    ]
    md.append(
        f"\n**Channels ({len(channels)})**, in input order: "
        + (", ".join(escape_markdown(c) for c in channels) if channels else "–")
    )
    if excluded:
        md.append(
            "\n**Excluded models**: "
            + "; ".join(f"{escape_markdown(k)} ({escape_markdown(v)})" for k, v in excluded.items())
        )
    return "\n".join(md)


class ModelView(View):
    """Loss curves, run summary, channel set and the study configuration.

    While ``smcore run`` trains, the curve grows with each epoch written to ``history.csv``
    and a line gives the epoch, the training months per second and the time left.
    """

    key = "model"
    title = "Model"
    artifacts = ("history", "summary", "manifest")

    def _training_now(self) -> bool:
        state = self.store.run_state
        return state is not None and state.get("step") == "train"

    def _progress(self, history: pd.DataFrame | None) -> str:
        cfg = self.store.config
        total = cfg.train.epochs if cfg is not None else None
        months = None
        if cfg is not None:
            y0, y1 = cfg.periods.train
            months = 12 * (int(y1) - int(y0) + 1)
        training = self._training_now()
        bars = runstate.progress_of(self.store.run_state) if training else []
        return training_progress(history, total, months, training, bars)

    def _follow_run(self, *_: object) -> None:
        """The running step's state changed: say how far training is, in place."""
        text = self._progress(self._history)
        if self._progress_pane.object != text:
            self._progress_pane.object = text

    def build(self) -> pn.viewable.Viewable:
        """Loss curves, run summary, channels and configuration."""
        store = self.store
        try:
            history = store.history()
        except InputError:
            if not self._training_now():
                raise
            history = None  # the first epoch is under way
        run_problem: InputError | None = None
        try:
            summary = store.summary()
        except ArtifactMissing:
            summary = {}  # training is under way
        except InputError as exc:
            summary, run_problem = {}, exc  # shown in place of the run's table
            log_failure(log, "Model tab", exc)
        try:
            manifest = store.manifest()
        except InputError:
            manifest = {}  # the sidebar shows the manifest's problems
        best = summary.get("best_epoch")
        config = manifest.get("config") or (store.config.to_dict() if store.config else {})
        self._history = history
        self._progress_pane = pn.pane.Markdown(
            self._progress(history), sizing_mode="stretch_width", name="progress"
        )
        self.watch(self._follow_run, "run_state")
        curves: pn.viewable.Viewable = pn.Spacer(height=SERIES_HEIGHT + 60)
        if history is not None:
            curves = pn.pane.HoloViews(
                loss_curves(history, int(best) if best is not None else None, store.presentation),
                sizing_mode="stretch_width",
                linked_axes=False,
            )
        self._curves = curves
        self._has_curves = history is not None and not summary
        return pn.Column(
            self._progress_pane,
            pn.Row(
                curves,
                pn.Column(
                    "#### Run",
                    error_panel(run_problem, "Run summary")
                    if run_problem is not None
                    else pn.pane.Markdown(
                        summary_markdown(
                            summary,
                            list(manifest.get("channels", store.channels)),
                            manifest.get("excluded"),
                        ),
                        width=380,
                    ),
                    width=400,
                ),
                sizing_mode="stretch_width",
            ),
            "#### Configuration",
            pn.pane.JSON(config, depth=1, name="configuration", sizing_mode="stretch_width"),
            csv_download(store.history, "history.csv", label="History (CSV)"),
            sizing_mode="stretch_width",
        )

    def refresh(self) -> None:
        """While training: a new epoch redraws the curve and the progress line in place."""
        store = self.store
        training = self._training_now()
        if not (self._has_curves and training and not store.has("training/summary.json")):
            self.rebuild()
            return
        try:
            history = store.history()
        except InputError:
            self.rebuild()
            return
        self._signature = self.signature()
        self._history = history
        self._curves.object = loss_curves(history, None, store.presentation)
        self._progress_pane.object = self._progress(history)
