"""The smcore dashboard: a template with the shared controls in the sidebar and one tab per view.

Serve it with ``smcore serve --workdir WD`` or ``panel serve dashboard/app.py --address
127.0.0.1 --args --workdir WD``. This is the only module that calls ``.servable()``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import holoviews as hv
import panel as pn
from panel.theme.fast import Fast
from panel.viewable import Viewer

from dashboard.config import ACCENT, FONT, TITLE
from dashboard.datastore import DataStore
from dashboard.loaders import start_warm_up
from dashboard.views import TABS

__all__ = ["App", "create_app", "configure", "workdir_from_args", "OfflineFast"]

# The template's own font is replaced by system fonts: nothing is fetched from Google Fonts.
_RAW_CSS = f"""
:root, body, .bk-root, fast-design-system-provider {{ --body-font: {FONT}; font-family: {FONT}; }}
"""


# Panel's Fast design minus its Google Fonts stylesheet; its scripts are bundled and served by
# the server itself. The class must be *named* "Fast": Panel finds bundled files by the
# lower-cased class name (``fast/js/fast_design.js``).
OfflineFast = type(
    "Fast",
    (Fast,),
    {
        "__doc__": "The Fast design without web fonts.",
        "_resources": {k: v for k, v in Fast._resources.items() if k != "font"},
    },
)


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
    pn.config.throttled = True  # sliders update on release, not on every pixel of a drag


class App(Viewer):
    """One browser session: its :class:`DataStore`, one view per tab, and the page.

    The views follow :data:`dashboard.views.TABS`; each tab is built when first opened.
    """

    def __init__(self, workdir: str | Path, **params: object) -> None:
        super().__init__(**params)
        self.store = DataStore(workdir)
        self.views = [tab(store=self.store) for tab in TABS]

    def tabs(self) -> pn.Tabs:
        """One tab per view; each is built and rendered on first display."""
        return pn.Tabs(
            *[
                (view.title, pn.param.ParamFunction(lambda v=view: v.__panel__(), lazy=True))
                for view in self.views
            ],
            dynamic=True,
            sizing_mode="stretch_width",
            name="tabs",
        )

    def template(self) -> pn.template.FastListTemplate:
        """The page: title bar, shared controls in the sidebar, tabs in the main area."""
        return pn.template.FastListTemplate(
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
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self.store, self.tabs())


def create_app(workdir: str | Path) -> pn.template.FastListTemplate:
    """The whole dashboard of one work directory, for one browser session."""
    return App(workdir).template()


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
