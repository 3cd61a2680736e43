"""Widgets, and Panel's link search, that cost a busy server less than Panel's own.

:func:`install` (called by :func:`dashboard.app.configure`) replaces Panel's link search by
one that returns at once when no link exists in the process; the dashboard's pages make
none (:class:`DiscreteSlider`, the Evaluation tab's choice without a loading indicator).
"""

from __future__ import annotations

from typing import Any

import panel as pn
import param
from bokeh.document import Document
from bokeh.models import ColumnDataSource, CustomJS, Model
from panel.links import Callback
from panel.viewable import Viewable

__all__ = ["DiscreteSlider", "install", "find_links"]


class DiscreteSlider(pn.widgets.DiscreteSlider):
    """Panel's discrete slider (same parameters and look), kept when its options change.

    - **New options change the slider in place.** Panel's makes a new slider, with a new
      Bokeh model, each time (the months of another experiment): the page's models were
      collected again and its links walked.
    - **The label follows the handle in the browser through a callback on the slider's own
      Bokeh model**, not through a Panel link. While any Panel link exists, every change of a
      page's layout (a click on a tab) walks the page's models looking for links
      (:func:`find_links`).
    """

    _LABEL_JS = (
        "const label = labels.data.label[cb_obj.value]\n"
        "if (label !== undefined) target.text = label"
    )

    def __init__(self, **params: Any) -> None:
        # the labels of each rendered slider, by root: a source holds no model, so changing
        # them does not make Bokeh collect the document's models again (the callback's args do)
        self._label_sources: dict[str, ColumnDataSource] = {}
        super().__init__(**params)

    def _update_options(self, *events: param.parameterized.Event) -> None:
        if self._slider is None:
            super()._update_options(*events)
            # the label's callback is put on each rendered model instead (_get_model)
            links = Callback.registry.get(self._slider, [])
            if self._jslink in links:
                links.remove(self._jslink)
            if not links:
                Callback.registry.pop(self._slider, None)
            return
        values, labels = self.values, self.labels
        if not self.options and self.value is None:
            index, label = 0, (f"{self.label}: " if self.label else "") + "<b>-</b>"
        elif self.value not in values:
            index, label = 0, labels[0]
            self.value = values[0]
        else:
            index = values.index(self.value)
            label = labels[index]
        disabled = len(values) in (0, 1) or self.disabled
        for source in self._label_sources.values():
            source.data = {"label": labels}
        self._syncing = True  # the slider follows this widget's value, not the other way round
        try:
            with param.edit_constant(self._slider):
                self._slider.param.update(
                    end=1 if disabled else len(values) - 1, value=index, disabled=disabled
                )
        finally:
            self._syncing = False
        self._text.value = label

    def _get_model(
        self,
        doc: Document,
        root: Model | None = None,
        parent: Model | None = None,
        comm: Any = None,
    ) -> Model:
        model = super()._get_model(doc, root, parent, comm)
        ref = (model if root is None else root).ref["id"]
        slider, _ = self._slider._models[ref]
        text, _ = self._text._models[ref]
        source = ColumnDataSource(data={"label": self.labels})
        slider.js_on_change("value", CustomJS(args={"target": text, "labels": source},
                                              code=self._LABEL_JS))
        self._label_sources[ref] = source
        return model

    def _cleanup(self, root: Model | None = None) -> None:
        if root is not None:
            self._label_sources.pop(root.ref["id"], None)
        super()._cleanup(root)


_PANEL_SEARCH = Callback._process_callbacks.__func__


def find_links(cls: type[Callback], root_view: Viewable, root_model: Model,
               changed: Viewable | None = None, old_models: Any = None) -> None:
    """Panel's search for the links of a page, skipped when no link exists in the process.

    This is ``Callback._process_callbacks`` once :func:`install` ran. Panel's search looks
    only for links in its registry, but before it looks it walks every Bokeh model of the
    changed part of the page: about 20 ms for each click on a tab of the default demo, and
    one more walk for each new page.
    """
    if not cls.registry:
        return
    _PANEL_SEARCH(cls, root_view, root_model, changed, old_models)


def install() -> None:
    """Put :func:`find_links` in place of Panel's link search (idempotent).

    It becomes ``Callback._process_callbacks`` itself: whenever a link is made, Panel adds
    that method to its preparation hooks if it is not among them.
    """
    original = Callback._process_callbacks
    Callback._process_callbacks = classmethod(find_links)  # type: ignore[method-assign]
    hooks = Viewable._preprocessing_hooks
    hooks[:] = [Callback._process_callbacks if hook == original else hook for hook in hooks]
