"""What every tab shares: the :class:`View` base class, the missing-artifact notice, exports."""

from __future__ import annotations

import io
import logging
import tempfile
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pandas as pd
import panel as pn
import param
import xarray as xr
from panel.viewable import Viewer

from dashboard import loaders
from dashboard.config import PRESENTATION_FONTSCALE
from dashboard.contain import code_span, describe, log_failure
from dashboard.datastore import DataStore
from dashboard.live import restyle
from dashboard.loaders import ArtifactMissing
from smcore.errors import InputError
from smcore.io.netcdf import provenance_attrs
from smcore.workdir import artifact
from smcore.io.nclock import to_netcdf

__all__ = [
    "View",
    "missing_panel",
    "error_panel",
    "csv_download",
    "netcdf_download",
    "dataset_bytes",
    "discrete_widget",
]

log = logging.getLogger(__name__)

DiscreteWidget = TypeVar("DiscreteWidget", pn.widgets.DiscreteSlider, pn.widgets.DiscretePlayer)


def missing_panel(exc: ArtifactMissing, title: str) -> pn.pane.Alert:
    """A notice saying which artifact a tab needs and which command writes it."""
    return pn.pane.Alert(
        f"### {title}: nothing to show yet\n\n"
        f"This tab needs {code_span(exc.path)}, which is not there.\n\n"
        f"Run {code_span(exc.command)} to create it; "
        "the tab fills in by itself when the file appears.",
        alert_type="info",
        sizing_mode="stretch_width",
    )


def error_panel(exc: BaseException, title: str, files: Sequence[str] = ()) -> pn.pane.Alert:
    """A notice for data that exist but cannot be read or drawn: the file and the problem.

    An :class:`InputError` names its file; any other failure is reported with ``files``, the
    tab's artifacts. The other tabs are not affected; the tab is built again when its files
    change.
    """
    if isinstance(exc, InputError):
        body = code_span(describe(exc))
    else:
        where = ", ".join(code_span(f) for f in files) if files else "its files"
        body = f"While drawing it from {where}: {code_span(describe(exc))}"
    return pn.pane.Alert(
        f"### {title}: cannot show the data\n\n{body}",
        alert_type="danger",
        sizing_mode="stretch_width",
        name="error",
    )


def discrete_widget(
    cls: type[DiscreteWidget],
    parameter: param.Selector,
    watchers: list[Any] | None = None,
    **params: object,
) -> DiscreteWidget:
    """A discrete slider or player bound both ways to ``parameter``, a Selector of an object.

    When the Selector's objects and value change together (a new experiment, new months), the
    widget receives both in one update, so it never sees a value outside its options (Panel's
    ``from_param`` applies them one at a time and resets the value to the first option).
    The watchers set on the owner are appended to ``watchers`` (to remove them with the widget).
    """
    owner, name = parameter.owner, parameter.name
    widget = cls(options=list(parameter.objects), value=getattr(owner, name), **params)

    def to_widget(*_: param.parameterized.Event) -> None:
        widget.param.update(options=list(owner.param[name].objects), value=getattr(owner, name))

    def to_owner(event: param.parameterized.Event) -> None:
        if event.new != getattr(owner, name) and event.new in owner.param[name].objects:
            setattr(owner, name, event.new)

    added = [
        owner.param.watch(to_widget, [name], what="objects"),
        owner.param.watch(to_widget, [name]),
    ]
    if watchers is not None:
        watchers.extend(added)
    widget.param.watch(to_owner, "value")
    return widget


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
        to_netcdf(ds, path, engine="netcdf4", format="NETCDF4")
        return path.read_bytes()


def _failed_export(filename: str, exc: BaseException) -> io.BytesIO:
    """What a download holds when its data cannot be made: one line saying why."""
    log_failure(log, f"export of {filename}", exc)
    return io.BytesIO(f"# cannot export {filename}: {describe(exc)}\n".encode())


def csv_download(
    make: Callable[[], pd.DataFrame], filename: str, label: str = "CSV"
) -> pn.widgets.FileDownload:
    """A button that writes ``make()`` as CSV when clicked."""

    def callback() -> io.BytesIO:
        try:
            df = make()
            return io.BytesIO(df.to_csv(index=not isinstance(df.index, pd.RangeIndex)).encode())
        except Exception as exc:  # noqa: BLE001 - the file says why, the session goes on
            return _failed_export(filename, exc)

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
    def callback() -> io.BytesIO:
        try:
            return io.BytesIO(dataset_bytes(make(), title))
        except Exception as exc:  # noqa: BLE001 - the file says why, the session goes on
            return _failed_export(filename, exc)

    return pn.widgets.FileDownload(
        callback=callback,
        filename=filename,
        label=f"⬇ {label}",
        color="light",
        embed=False,
        width=190,
    )


class View(Viewer):
    """One tab: renders data of the :class:`DataStore`; computes nothing heavy.

    Subclasses set ``key``, ``title`` and ``artifacts`` and implement :meth:`build`. The tab's
    content lives in a fixed container (:meth:`__panel__`), built on first display; a missing
    artifact turns into an explanation instead of an error. :meth:`rebuild` replaces the
    content (the session does it when the tab's files appear or change, or when the map
    projection or presentation mode changes); watchers a build sets on the store through
    :meth:`watch` are removed first.

    Failures stay in the tab: one that happens while the tab is built (an unreadable or
    malformed file) shows :func:`error_panel` instead of the content; one in an update (a
    watcher set through :meth:`watch`, or :meth:`contained` actions such as a redraw in another
    projection) shows a notice above the content, which stays usable, until that update
    succeeds. Either is logged as one line (:func:`dashboard.contain.log_failure`).
    """

    store = param.ClassSelector(class_=DataStore, doc="The session's data store.")

    key: ClassVar[str] = ""
    title: ClassVar[str] = ""
    artifacts: ClassVar[tuple[str, ...]] = ()
    """Keys of :data:`smcore.workdir.ARTIFACTS` the tab reads (per-experiment ones: every
    prepared experiment); a change of any of them rebuilds the tab."""

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._container = pn.Column(sizing_mode="stretch_width", name=self.title)
        self._notice = pn.pane.Alert(
            "", alert_type="danger", sizing_mode="stretch_width", visible=False, name="notice"
        )
        self._problems: dict[str, str] = {}
        self._body: pn.viewable.Viewable | None = None
        self._built = False
        self._watchers: list[Any] = []
        self._signature: tuple[Any, ...] | None = None
        self.missing = False
        """Whether the tab shows the missing-artifact notice (or a read error)."""
        self.stale = False
        """Whether the tab must be rebuilt before it is shown again."""

    def build(self) -> pn.viewable.Viewable:
        """The tab's content (raise ``ArtifactMissing`` when a needed file is absent)."""
        raise NotImplementedError

    # -- watchers ----------------------------------------------------------
    def watch(self, fn: Callable[..., Any], names: str | Sequence[str], **kwargs: Any) -> Any:
        """``store.param.watch(fn, names)``, removed when the tab is rebuilt.

        A failure of ``fn`` is shown in the tab's notice (:meth:`report`) instead of reaching
        the widget that changed the store; the next successful call clears it.
        """
        source = "update of " + (names if isinstance(names, str) else ", ".join(names))

        def guarded(*events: param.parameterized.Event) -> None:
            self.contained(source, lambda: fn(*events))

        watcher = self.store.param.watch(guarded, names, **kwargs)
        self._watchers.append(watcher)
        return watcher

    def contained(self, source: str, fn: Callable[[], Any], default: Any = None) -> Any:
        """``fn()``, or ``default`` when it fails: then the tab says so (:meth:`report`).

        ``source`` names what was being done (``"update of month_maps"``, ``"redraw"``); a
        later success of the same ``source`` clears its notice.
        """
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - contained: shown in this tab, one log line
            log_failure(log, f"{self.title} tab, {source}", exc)
            self.report(source, exc)
            return default
        self.report(source, None)
        return result

    def report(self, source: str, problem: BaseException | str | None) -> None:
        """Show (or, with ``None``, clear) the problem of ``source`` above the tab's content."""
        if problem is None:
            if self._problems.pop(source, None) is None:
                return
        else:
            self._problems[source] = problem if isinstance(problem, str) else describe(problem)
        lines = [
            f"**{self.title}: the {what} failed**: {code_span(text)}"
            for what, text in self._problems.items()
        ]
        self._notice.object = "\n\n".join(lines) + (
            "\n\nThe rest of the page still works." if lines else ""
        )
        self._notice.visible = bool(lines)

    @property
    def problems(self) -> dict[str, str]:
        """The problems shown in the tab's notice now, by what failed."""
        return dict(self._problems)

    def _unwatch(self) -> None:
        for watcher in self._watchers:
            watcher.inst.param.unwatch(watcher)
        self._watchers.clear()

    # -- freshness ----------------------------------------------------------
    def artifact_paths(self) -> list[str]:
        """The files of :attr:`artifacts`, relative to the work directory."""
        paths = []
        for key in self.artifacts:
            a = artifact(key)
            if a.per_experiment:
                paths += [a.relative(e) for e in (self.store.experiments or ["historical"])]
            else:
                paths.append(a.relative())
        return paths

    def signature(self) -> tuple[Any, ...]:
        """The modification stamps of the tab's files (None where absent)."""
        out = []
        for rel in self.artifact_paths():
            try:
                out.append(loaders.stamp(loaders.resolve_artifact(self.store.root, rel)))
            except (InputError, OSError):
                out.append(None)
        return tuple(out)

    def shared_key(self, *parts: Hashable) -> tuple[Hashable, ...]:
        """Key of a figure of this tab in the server's shared renders
        (:class:`dashboard.live.RenderCache`): the tab, the work directory and its files'
        stamps when the tab was built, ``parts`` (what the figure shows), the projection and
        the presentation mode."""
        store = self.store
        return (self.key, str(store.root), self._signature, *parts, str(store.projection),
                bool(store.presentation))

    def changed(self) -> bool:
        """Whether the tab was built and its files appeared, changed or went away since."""
        return self._built and self.signature() != self._signature

    # -- content -------------------------------------------------------------
    def _content(self) -> pn.viewable.Viewable:
        self.missing = False
        try:
            return self.build()
        except ArtifactMissing as exc:
            self._unwatch()
            self.missing = True
            return missing_panel(exc, self.title)
        except Exception as exc:  # noqa: BLE001 - contained: an error panel in this tab
            self._unwatch()
            self.missing = True
            log_failure(log, f"{self.title} tab", exc)
            return error_panel(exc, self.title, self.artifact_paths())

    def _show(self, body: pn.viewable.Viewable) -> None:
        self._body = body
        self._container.objects = [self._notice, body]

    def rebuild(self) -> None:
        """Build the content anew from the store and the files as they are now."""
        self._unwatch()
        self._problems.clear()
        self._notice.param.update(object="", visible=False)
        self._signature = self.signature()
        self._built = True
        self.stale = False
        self._show(self._content())

    def fail(self, exc: BaseException) -> None:
        """Replace the content by the error panel of ``exc`` (a redraw that failed half-way)."""
        log_failure(log, f"{self.title} tab", exc)
        self._unwatch()
        self.missing = True
        self._show(error_panel(exc, self.title, self.artifact_paths()))

    def run(self, action: Callable[[], Any], default: Any = None) -> Any:
        """``action()`` (a refresh, redraw or restyle of the tab by the session), contained.

        When it fails the tab shows the error panel (its content may be half-changed); the tab
        is built again when its files change or it is shown anew.
        """
        try:
            return action()
        except Exception as exc:  # noqa: BLE001 - contained in this tab
            self.fail(exc)
            return default

    def refresh(self) -> None:
        """Show the tab's files as they are now (default: :meth:`rebuild`)."""
        self.rebuild()

    def reproject(self) -> None:
        """Draw the maps in the store's projection now (default: :meth:`rebuild`)."""
        self.rebuild()

    def restyle(self) -> bool:
        """Follow the store's presentation mode in place (fonts, tool bars of every plot).

        Returns False when the tab has no rendered plots to change (rebuild it instead).
        """
        roots = [model for model, _ in self._container._models.values()]
        if not roots:
            return False
        restyle(roots, self.store.presentation, PRESENTATION_FONTSCALE)
        return True

    @property
    def built(self) -> bool:
        """Whether the tab was displayed (built) at least once."""
        return self._built

    @property
    def content(self) -> pn.viewable.Viewable:
        """What the tab shows now, below its notice (built on first access)."""
        if not self._built:
            self.rebuild()
        assert self._body is not None
        return self._body

    def __panel__(self) -> pn.viewable.Viewable:
        if not self._built:
            self.rebuild()
        return self._container
