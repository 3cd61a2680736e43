"""Model tab: loss curves (Fig. 2), run summary, channel set and configuration.

Reads ``training/history.csv`` and ``summary.json``; never loads a checkpoint.
"""

from __future__ import annotations

from typing import Any

import holoviews as hv
import pandas as pd
import panel as pn

from dashboard.config import SERIES_HEIGHT
from dashboard.views.base import View, csv_download
from smcore.errors import InputError

__all__ = ["ModelView", "loss_curves", "summary_markdown"]


def loss_curves(history: pd.DataFrame, best_epoch: int | None = None) -> hv.Overlay:
    """Training and validation loss per epoch (log scale); a dashed line marks the best epoch."""
    layers: list[hv.Element] = []
    for col, label, color in (
        ("train_loss", "Training loss", "#1f77b4"),
        ("val_loss", "Validation loss", "#d62728"),
    ):
        if col in history.columns:
            layers.append(
                hv.Curve(history, "epoch", hv.Dimension(col, label="Loss"), label=label).opts(
                    color=color, line_width=2, tools=["hover"]
                )
            )
            layers.append(
                hv.Scatter(history, "epoch", hv.Dimension(col, label="Loss"), label=label).opts(
                    color=color, size=4
                )
            )
    if best_epoch is not None:
        layers.append(
            hv.VLine(best_epoch, label="best epoch").opts(color="#555555", line_dash="dashed")
        )
    positive = all(
        (history[c] > 0).all() for c in ("train_loss", "val_loss") if c in history.columns
    )
    return hv.Overlay(layers).opts(
        title="Loss per epoch (Fig. 2)",
        logy=positive,
        responsive=True,
        height=SERIES_HEIGHT + 60,
        legend_position="top_right",
        show_grid=True,
        xlabel="Epoch",
        toolbar="above",
    )


def _fmt_seconds(s: Any) -> str:
    try:
        s = float(s)
    except (TypeError, ValueError):
        return str(s)
    return f"{s / 3600:.1f} h" if s >= 3600 else f"{s / 60:.1f} min" if s >= 60 else f"{s:.0f} s"


def summary_markdown(
    summary: dict[str, Any], channels: list[str], excluded: dict[str, str] | None = None
) -> str:
    """The run summary (``summary.json``) and the channel set as a Markdown table and list."""
    n = summary.get("n_parameters")
    rows = [
        ("Parameters", f"{int(n):,}" if isinstance(n, (int, float)) else "–"),
        ("Device", summary.get("device", "–")),
        ("Mixed precision", summary.get("amp", "–")),
        ("Epochs run", summary.get("epochs_run", "–")),
        ("Stopped early", summary.get("stopped_early", "–")),
        ("Best epoch", summary.get("best_epoch", "–")),
        (
            "Best validation loss",
            f"{summary['best_val_loss']:.5g}"
            if isinstance(summary.get("best_val_loss"), (int, float))
            else "–",
        ),
        ("Training time", _fmt_seconds(summary.get("seconds", "–"))),
    ]
    md = ["| Run | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]
    md.append(
        f"\n**Channels ({len(channels)})**, in input order: "
        + (", ".join(channels) if channels else "–")
    )
    if excluded:
        md.append("\n**Excluded models**: " + "; ".join(f"{k} ({v})" for k, v in excluded.items()))
    return "\n".join(md)


class ModelView(View):
    """Loss curves, run summary, channel set and the study configuration."""

    key = "model"
    title = "Model"

    def build(self) -> pn.viewable.Viewable:
        """Loss curves, run summary, channels and configuration."""
        store = self.store
        history = store.history()
        try:
            summary = store.summary()
        except InputError:
            summary = {}
        try:
            manifest = store.manifest()
        except InputError:
            manifest = {}
        best = summary.get("best_epoch")
        config = manifest.get("config") or store.config.to_dict()
        return pn.Column(
            pn.Row(
                pn.pane.HoloViews(
                    loss_curves(history, int(best) if best is not None else None),
                    sizing_mode="stretch_width",
                    linked_axes=False,
                ),
                pn.Column(
                    "#### Run",
                    pn.pane.Markdown(
                        summary_markdown(
                            summary,
                            list(manifest.get("channels", store.channels)),
                            manifest.get("excluded"),
                        ),
                        width=380,
                    ),
                ),
                sizing_mode="stretch_width",
            ),
            "#### Configuration",
            pn.pane.JSON(config, depth=1, name="configuration", sizing_mode="stretch_width"),
            csv_download(lambda: history, "history.csv", label="History (CSV)"),
            sizing_mode="stretch_width",
        )
