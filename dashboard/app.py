"""The smcore dashboard: a template with the shared controls in the sidebar and one tab per view.

Serve it with ``smcore serve --workdir WD`` or ``panel serve dashboard/app.py --address
127.0.0.1 --args --workdir WD``. This is the only module that calls ``.servable()``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import holoviews as hv
import panel as pn
import param
from bokeh.document import Document
from bokeh.themes import Theme as BokehTheme
from panel.theme.fast import Fast, FastDefaultTheme
from panel.viewable import Viewer

from dashboard import live, serialization, widgets
from dashboard.config import ACCENT, FONT, TITLE
from dashboard.contain import code_span, describe, log_failure
from dashboard.datastore import DataStore
from dashboard.loaders import start_warm_up
from dashboard.views import TABS, View

__all__ = [
    "App",
    "Page",
    "PageTabs",
    "collected_once",
    "create_app",
    "configure",
    "workdir_from_args",
    "OfflineFast",
    "REFRESH_MS",
]

log = logging.getLogger(__name__)

# The template's own font is replaced by system fonts: nothing is fetched from Google Fonts.
_RAW_CSS = f"""
:root, body, .bk-root, fast-design-system-provider {{ --body-font: {FONT}; font-family: {FONT}; }}
"""


class FastTheme(FastDefaultTheme):
    """Panel's Fast light theme with one Bokeh theme for the whole process.

    Panel's own makes a new :class:`bokeh.themes.Theme` each time it is asked, so every figure
    a page shows, and every document, had its whole theme applied again (each themed default
    of each model computed twice); one object lets Bokeh pass over what it already themed.
    """

    @property
    def bokeh_theme(self) -> BokehTheme:  # type: ignore[override]
        return BOKEH_THEME


BOKEH_THEME: BokehTheme = FastDefaultTheme().bokeh_theme
"""The Bokeh theme of every page and figure (:class:`FastTheme`)."""

# Panel's Fast design minus its Google Fonts stylesheet; its scripts are bundled and served by
# the server itself. The class must be *named* "Fast": Panel finds bundled files by the
# lower-cased class name (``fast/js/fast_design.js``).
OfflineFast = type(
    "Fast",
    (Fast,),
    {
        "__doc__": "The Fast design without web fonts, its light theme made once.",
        "_resources": {k: v for k, v in Fast._resources.items() if k != "font"},
        "_themes": {**Fast._themes, "default": FastTheme},
    },
)


@contextmanager
def collected_once(*docs: Document | None) -> Iterator[None]:
    """Hold the models of ``docs`` (``None`` skipped) while the block runs.

    Bokeh collects each document's models once, when the block ends, instead of after every
    change in it. Unlike Bokeh's own ``doc.models.freeze()``, a failure in the block does not
    leave a document held (its models would never be collected again: new plots not found,
    patches lost).
    """
    held = [doc.models for doc in dict.fromkeys(docs) if doc is not None]
    for models in held:
        models._push_freeze()
    try:
        yield
    finally:
        for models in held:
            models._pop_freeze()


class Page(pn.template.FastListTemplate):
    """The Fast list template, its document's models collected once when it is served.

    Panel adds the template's roots, links and theme one at a time, and Bokeh collects the
    document's models again after each (nine walks over a few hundred models per page on the
    default demo); held together they are collected once, when the page is complete.
    """

    def server_doc(
        self, doc: Document | None = None, title: str | None = None, location: bool = True
    ) -> Document:
        """The page in ``doc`` (default: the session's), its models collected once."""
        target = doc if doc is not None else pn.state.curdoc
        with collected_once(target):
            return super().server_doc(doc, title, location)


class PageTabs(pn.Tabs):
    """Panel's tabs, a switch of tab prepared and collected once.

    Showing a tab (``dynamic``) builds its models and drops the previous tab's. Panel ran its
    page-wide preparation (links, theme) twice per switch, for the new ``active`` and again
    for the new children, and Bokeh collected the document's models after each, about 0.1 s
    on the default demo; the children's update alone covers both.
    """

    @property
    def _preprocess_params(self) -> list[str]:
        return [p for p in super()._preprocess_params if p != "active"]

    def _update_active(self, *events: param.parameterized.Event) -> None:
        docs = [model.document for model, _ in self._models.values()]
        with collected_once(*docs):
            super()._update_active(*events)


def configure() -> None:
    """Panel/HoloViews settings for an offline server (idempotent)."""
    os.environ.setdefault("BOKEH_RESOURCES", "server")
    pn.extension(
        "tabulator",
        raw_css=[_RAW_CSS],
        notifications=False,
        design=OfflineFast,
        loading_indicator=True,
    )
    hv.extension("bokeh", logo=False)
    # Canvas, not WebGL: without a GPU (headless, virtual machines, many projector laptops)
    # WebGL is emulated and compositing its canvases took seconds per tab; the maps are one
    # image and a few lines each, which the 2D canvas draws at once.
    hv.renderer("bokeh").webgl = False
    pn.config.throttled = True  # sliders update on release, not on every pixel of a drag
    serialization.install()  # patches to the browser without the defaults they leave out
    widgets.install()  # no walk over a page's models for links when there are none
    live.use_theme(BOKEH_THEME)  # figures rendered themed, so that a page passes over them


REFRESH_MS = 3000
"""How often a session looks for new or changed artifacts (milliseconds)."""


class App(Viewer):
    """One browser session: its :class:`DataStore`, one view per tab, and the page.

    The views follow :data:`dashboard.views.TABS`; each tab is built when first opened. While
    a pipeline still writes the work directory, :meth:`tick` (a periodic callback of the
    session) fills in the tabs whose files appear and redraws those whose files change; the
    sidebar's list of steps follows. A new map projection redraws the maps of the tab on
    display and marks the other opened tabs for a rebuild when shown; the presentation mode
    changes the fonts and tool bars of every opened tab in place.
    """

    def __init__(self, workdir: str | Path, **params: object) -> None:
        super().__init__(**params)
        self.store = DataStore(workdir)
        self.views = [tab(store=self.store) for tab in TABS]
        self._tabs: pn.Tabs | None = None
        self._tick_problem = ""
        self.store.param.watch(self._projection_changed, ["projection"])
        self.store.param.watch(self._display_changed, ["presentation"])

    @property
    def active_view(self) -> View:
        """The view of the tab on display (the first before the page exists)."""
        return self.views[self._tabs.active if self._tabs is not None else 0]

    def _show(self, view: View) -> None:
        """Rebuild ``view`` now if it is on display, else when it is next shown."""
        if view is self.active_view:
            view.rebuild()
        else:
            view.stale = True

    def _display_changed(self, *_: object) -> None:
        """Presentation mode: the plots of every opened tab change in place."""
        for view in self.views:
            if view.built and not view.stale and not view.run(view.restyle, default=True):
                self._show(view)

    def _projection_changed(self, *_: object) -> None:
        for view in self.views:
            if view.built and view is self.active_view and not view.stale:
                view.run(view.reproject)
            elif view.built:
                view.stale = True

    def _tab_shown(self, event: param.parameterized.Event) -> None:
        view = self.views[event.new]
        if view.stale:
            view.rebuild()

    def tick(self) -> None:
        """Look at the work directory again: new options, the steps' states, changed tabs."""
        store = self.store
        try:
            if store.refresh():
                for view in self.views:
                    if view.built:
                        self._show(view)
            store.update_status()
            for view in self.views:
                if view.built and not view.stale and view.changed():
                    if view is self.active_view:
                        view.run(view.refresh)
                    else:
                        view.stale = True
        except Exception as exc:  # noqa: BLE001 - a half-written file must not stop the timer
            if describe(exc) != self._tick_problem:  # once, not every REFRESH_MS
                self._tick_problem = describe(exc)
                log_failure(log, f"refreshing the dashboard of {store.root}", exc)
        else:
            self._tick_problem = ""

    def watch_workdir(self, period_ms: int = REFRESH_MS) -> None:
        """Call :meth:`tick` every ``period_ms`` in a served session (nothing otherwise)."""
        doc = pn.state.curdoc
        if doc is None or doc.session_context is None:
            return
        pn.state.add_periodic_callback(self.tick, period=period_ms)

    def tabs(self) -> pn.Tabs:
        """One tab per view; each is built and rendered on first display."""
        self._tabs = PageTabs(
            *[
                (view.title, pn.param.ParamFunction(lambda v=view: v.__panel__(), lazy=True))
                for view in self.views
            ],
            dynamic=True,
            sizing_mode="stretch_width",
            name="tabs",
        )
        self._tabs.param.watch(self._tab_shown, "active")
        return self._tabs

    def template(self) -> Page:
        """The page: title bar, shared controls in the sidebar, tabs in the main area."""
        return Page(
            title=TITLE,
            sidebar=[self.store],
            main=[self.tabs()],
            accent=ACCENT,
            header_background=ACCENT,
            font=FONT,
            font_url="",
            sidebar_width=310,
            theme_toggle=False,
            main_layout=None,
            design=OfflineFast,
            busy_indicator=None,  # Panel's busy state is the process's, not this page's
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self.store, self.tabs())


def prerender(
    workdir: str | Path, tabs: Sequence[int] | None = None, every_projection: bool = True
) -> Iterator[tuple[str, float]]:
    """Draw every tab for nobody, one tab per step; yields each tab's title and seconds.

    The tabs are drawn at the default selections, then again in each other map projection
    (unless not ``every_projection``); ``tabs``: only these (indices into
    :data:`dashboard.views.TABS`).

    The figures stay in the server's shared renders (:class:`dashboard.live.RenderCache`), so
    the first visitors' tabs, and their tabs after a switch of projection, are copied instead
    of rendered by HoloViews. A tab that cannot be drawn (a missing or broken file) shows its
    notice, as it would to a visitor. The server stops stepping once a visitor's page has
    begun (:func:`sessions_started`): the visitor's own session renders what it shows, and it
    must not wait behind tabs drawn for nobody.
    """
    import time

    from bokeh.document import Document

    from dashboard.projection import PROJECTIONS

    first = App(workdir)
    others = [p for p in PROJECTIONS if p != first.store.projection] if every_projection else []
    for projection in [first.store.projection, *others]:
        app = first if projection == first.store.projection else App(workdir)
        app.store.projection = projection
        for k, view in enumerate(app.views):
            if tabs is not None and k not in tabs:
                continue
            t0 = time.perf_counter()
            view.__panel__().get_root(Document())
            title = view.title if app is first else f"{view.title} ({projection})"
            yield title, round(time.perf_counter() - t0, 3)


class TabFiles:
    """The stamps of every tab's files, to tell which tabs changed since the last look.

    :meth:`changed` says which tabs' files appeared, changed or went away since it was last
    called (since construction the first time): the tabs a server draws again for nobody
    while a pipeline fills the work directory (:func:`dashboard.server.serve`).
    """

    def __init__(self, workdir: str | Path) -> None:
        self._app = App(workdir)
        self._seen = self._signatures()

    def _signatures(self) -> list[tuple[Any, ...]]:
        self._app.store.refresh()
        return [view.signature() for view in self._app.views]

    def changed(self) -> list[int]:
        """Indices of the tabs whose files changed since the last call and now exist."""
        now = self._signatures()
        out = [
            k for k, (a, b) in enumerate(zip(now, self._seen, strict=True))
            if a != b and any(stamp is not None for stamp in a)
        ]
        self._seen = now
        return out


_SESSIONS = [0]


def sessions_started() -> int:
    """How many pages :func:`create_app` has begun in this process."""
    return _SESSIONS[0]


def create_app(workdir: str | Path) -> Page:
    """The whole dashboard of one work directory, for one browser session.

    In a served session the page follows the work directory (:meth:`App.watch_workdir`).
    When even the page cannot be made (a failure outside every tab), it says why instead.
    """
    _SESSIONS[0] += 1
    try:
        app = App(workdir)
        page = app.template()
    except Exception as exc:  # noqa: BLE001 - one session's page, not the server
        log_failure(log, f"the dashboard of {workdir}", exc)
        return Page(
            title=TITLE,
            main=[
                pn.pane.Alert(
                    f"### The dashboard cannot be shown\n\n{code_span(describe(exc))}",
                    alert_type="danger",
                    sizing_mode="stretch_width",
                )
            ],
            accent=ACCENT,
            header_background=ACCENT,
            font=FONT,
            font_url="",
            theme_toggle=False,
            design=OfflineFast,
            busy_indicator=None,
        )
    app.watch_workdir()
    return page


def workdir_from_args(argv: Sequence[str]) -> str:
    """The work directory given to ``panel serve dashboard/app.py --args --workdir WD``.

    Falls back to ``$SMCORE_WORKDIR``, then ``demo/work``.
    """
    parser = argparse.ArgumentParser(prog="dashboard/app.py", add_help=False)
    parser.add_argument("--workdir", default=os.environ.get("SMCORE_WORKDIR", "demo/work"))
    args, _ = parser.parse_known_args(list(argv))
    return str(args.workdir)


if __name__.startswith("bokeh"):  # run by `panel serve`
    configure()
    _workdir = workdir_from_args(sys.argv[1:])
    start_warm_up(str(Path(_workdir).resolve()))
    create_app(_workdir).servable(title=TITLE)
