"""What every tab shares: the :class:`View` base class, the missing-artifact notice, exports."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import pandas as pd
import panel as pn
import param
import xarray as xr
from panel.viewable import Viewer

from dashboard.datastore import DataStore
from dashboard.loaders import ArtifactMissing
from smcore.errors import InputError
from smcore.io.netcdf import provenance_attrs

__all__ = [
    "View",
    "missing_panel",
    "error_panel",
    "csv_download",
    "netcdf_download",
    "dataset_bytes",
]


def missing_panel(exc: ArtifactMissing, title: str) -> pn.pane.Alert:
    """A notice saying which artifact a tab needs and which command writes it."""
    return pn.pane.Alert(
        f"### {title}: nothing to show yet\n\n"
        f"This tab needs `{exc.path}`, which is not there.\n\nRun `{exc.command}` to create it, "
        "then reload this page.",
        alert_type="info",
        sizing_mode="stretch_width",
    )


def error_panel(exc: InputError, title: str) -> pn.pane.Alert:
    """A notice for an artifact that exists but cannot be read."""
    return pn.pane.Alert(
        f"### {title}: cannot read the data\n\n`{exc}`",
        alert_type="danger",
        sizing_mode="stretch_width",
    )


def dataset_bytes(ds: xr.Dataset, title: str) -> bytes:
    """``ds`` as an in-memory NetCDF-4 file with CF provenance attributes."""
    ds = ds.copy()
    ds.attrs = {
        **provenance_attrs(title),
        **{k: v for k, v in ds.attrs.items() if k not in ("history",)},
    }
    ds.attrs["title"] = title
    with tempfile.TemporaryDirectory(prefix="smcore-export-") as tmp:
        path = Path(tmp) / "export.nc"
        ds.to_netcdf(path, engine="netcdf4", format="NETCDF4")
        return path.read_bytes()


def csv_download(
    make: Callable[[], pd.DataFrame], filename: str, label: str = "CSV"
) -> pn.widgets.FileDownload:
    """A button that writes ``make()`` as CSV when clicked."""

    def callback() -> io.BytesIO:
        df = make()
        return io.BytesIO(df.to_csv(index=not isinstance(df.index, pd.RangeIndex)).encode())

    return pn.widgets.FileDownload(
        callback=callback,
        filename=filename,
        label=f"⬇ {label}",
        color="light",
        embed=False,
        width=190,
    )


def netcdf_download(
    make: Callable[[], xr.Dataset], filename: str, title: str, label: str = "NetCDF"
) -> pn.widgets.FileDownload:
    """A button that writes ``make()`` as NetCDF when clicked."""
    return pn.widgets.FileDownload(
        callback=lambda: io.BytesIO(dataset_bytes(make(), title)),
        filename=filename,
        label=f"⬇ {label}",
        color="light",
        embed=False,
        width=190,
    )


class View(Viewer):
    """One tab: renders data of the :class:`DataStore`; computes nothing heavy.

    Subclasses set ``key`` and ``title`` and implement :meth:`build`; it is called once, on
    first display, and a missing artifact turns into an explanation instead of an error.
    """

    store = param.ClassSelector(class_=DataStore, doc="The session's data store.")

    key: ClassVar[str] = ""
    title: ClassVar[str] = ""

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._layout: pn.viewable.Viewable | None = None

    def build(self) -> pn.viewable.Viewable:
        """The tab's content (raise ``ArtifactMissing`` when a needed file is absent)."""
        raise NotImplementedError

    def __panel__(self) -> pn.viewable.Viewable:
        if self._layout is None:
            try:
                self._layout = self.build()
            except ArtifactMissing as exc:
                self._layout = missing_panel(exc, self.title)
            except InputError as exc:
                self._layout = error_panel(exc, self.title)
        return self._layout
