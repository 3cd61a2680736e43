"""dashboard.widgets: a discrete slider kept when its options change, no Panel link on a page."""

from __future__ import annotations

import panel as pn
import pytest
from bokeh.document import Document
from bokeh.models import CustomJS, Div, Slider
from panel.io.state import set_curdoc
from panel.links import Callback

from dashboard.widgets import DiscreteSlider, find_links


def _rendered(widget: pn.widgets.DiscreteSlider) -> tuple[Document, Slider, Div]:
    doc = Document()
    with set_curdoc(doc):
        root = widget.get_root(doc)
    doc.add_root(root)
    (slider,) = root.select({"type": Slider})
    (text,) = root.select({"type": Div})
    return doc, slider, text


def test_new_options_change_the_same_slider_and_its_label(model_walks):
    """Months of another experiment: same Bokeh slider (Panel's made a new one, and a new
    link), its end, position and label follow, and the browser's label callback gets the new
    labels, without Bokeh collecting the document's models again."""
    months = [f"1950-{m:02d}" for m in range(1, 13)]
    widget = DiscreteSlider(options=months, value="1950-06", name="Month")
    doc, slider, text = _rendered(widget)
    (callback,) = slider.js_property_callbacks["change:value"]
    assert isinstance(callback, CustomJS) and callback.args["target"] is text
    labels = callback.args["labels"].data["label"]
    assert labels[5] == "Month: <b>1950-06</b>" and slider.value == 5
    model_walks[0] = 0
    later = [f"2015-{m:02d}" for m in range(1, 4)]
    with set_curdoc(doc):
        widget.param.update(options=later, value="2015-02")
    assert model_walks == [0]
    assert slider.document is doc and widget._slider._models[doc.roots[0].ref["id"]][0] is slider
    assert (slider.end, slider.value, slider.disabled) == (2, 1, False)
    assert text.text == "Month: <b>2015-02</b>"
    assert callback.args["labels"].data["label"] == [f"Month: <b>{m}</b>" for m in later]
    # the browser moves the handle: the widget's value follows, as with Panel's slider
    with set_curdoc(doc):
        widget._slider.value = 2
    assert widget.value == "2015-03" and text.text == "Month: <b>2015-03</b>"
    # one option: the slider is disabled, as Panel's is
    with set_curdoc(doc):
        widget.param.update(options=["2100-12"], value="2100-12")
    assert (slider.end, slider.value, slider.disabled) == (1, 0, True)


def test_the_slider_makes_no_panel_link():
    before = len(Callback.registry)
    widget = DiscreteSlider(options=["a", "b", "c"], value="b", name="Scenario")
    widget.options = ["a", "b"]
    assert len(Callback.registry) == before
    assert widget._slider not in Callback.registry


def test_the_link_search_walks_nothing_when_no_link_exists(monkeypatch):
    class Untouchable:
        def __getattr__(self, name):
            raise AssertionError(f"the page was walked ({name})")

    monkeypatch.setattr(Callback, "registry", type(Callback.registry)())
    find_links(Callback, Untouchable(), Untouchable(), Untouchable())  # returns at once
    # with a link in the process, Panel's search runs and puts the link on the page's models
    source, target = pn.widgets.TextInput(value="x"), pn.pane.Markdown("y")
    source.jslink(target, value="object")
    row = pn.Row(source, target)
    doc = Document()
    with set_curdoc(doc):
        root = row.get_root(doc)  # Panel's preparation calls the search
    assert any(model.js_property_callbacks for model in root.references())


def test_a_served_page_makes_no_panel_link(served_workdir, fresh_panel):
    """With no link on a page, every click on a tab is spared a walk over the page."""
    from dashboard.app import App

    before = set(Callback.registry.keys())
    doc = Document()
    app = App(served_workdir.root)
    with set_curdoc(doc):
        app.template().server_doc(doc)
        for index in range(len(app._tabs)):
            app._tabs.active = index
        app.store.period = "future"  # the months of a scenario: a new range for the slider
    made = [type(src).__name__ for src in Callback.registry.keys() if src not in before]
    assert made == []


@pytest.fixture(scope="module")
def served_workdir(tmp_path_factory):
    from tests.factories.dashboard import make_workdir

    return make_workdir(tmp_path_factory.mktemp("widgets") / "w")
