"""Bokeh's serialization without the defaults it leaves out (dashboard.serialization)."""

from __future__ import annotations

import json

import pytest
from bokeh.core.has_props import HasProps
from bokeh.core.property.descriptors import PropertyDescriptor
from bokeh.document import Document

from dashboard import serialization
from dashboard.datastore import DataStore
from dashboard.views.change_rates import ChangeRatesView
from dashboard.views.explorer import ExplorerView
from dashboard.views.trends import TrendsView


def _document(view) -> Document:
    doc = Document()
    doc.add_root(view.__panel__().get_root(doc))
    return doc


def _json(doc: Document, query) -> str:
    original = HasProps.query_properties_with_values
    HasProps.query_properties_with_values = query
    try:
        return json.dumps(doc.to_json(deferred=False), sort_keys=True, default=str)
    finally:
        HasProps.query_properties_with_values = original


def _count_defaults(monkeypatch) -> list[int]:
    """A counter (``[n]``) of the property defaults Bokeh computes from now on."""
    calls = [0]
    computed = PropertyDescriptor.instance_default

    def counted(self, obj):
        calls[0] += 1
        return computed(self, obj)

    monkeypatch.setattr(PropertyDescriptor, "instance_default", counted)
    return calls


@pytest.mark.parametrize("tab", [TrendsView, ExplorerView, ChangeRatesView])
def test_the_serialized_tab_is_bokehs_own(dashboard_workdir, tab):
    doc = _document(tab(store=DataStore(dashboard_workdir.root)))
    ours = _json(doc, serialization.set_properties_with_values)
    assert ours == _json(doc, serialization.BOKEH_QUERY)
    assert len(ours) > 10_000


def test_serializing_a_tab_computes_no_default_it_leaves_out(dashboard_workdir, monkeypatch):
    serialization.install()  # as the dashboard's configure() does
    doc = _document(TrendsView(store=DataStore(dashboard_workdir.root)))
    calls = _count_defaults(monkeypatch)
    doc.to_json(deferred=False)
    # Bokeh's own method computes the default of every unset property of every model (about
    # six thousand for this tab on the default demo) only to leave them out
    assert calls[0] < len(doc.models) / 10


# -- the walk over a document's models -----------------------------------------------------
def _walk(roots, visit) -> list[str]:
    """The ids of the models under ``roots``, as Bokeh collects them, walking with ``visit``."""
    import bokeh.model.util as model_util

    original = model_util.visit_immediate_value_references
    model_util.visit_immediate_value_references = visit
    try:
        return [m.id for m in model_util.collect_models(*roots)]
    finally:
        model_util.visit_immediate_value_references = original


@pytest.mark.parametrize("tab", [TrendsView, ExplorerView, ChangeRatesView])
def test_the_walk_finds_the_models_bokehs_own_finds(dashboard_workdir, tab):
    doc = _document(tab(store=DataStore(dashboard_workdir.root)))
    bokehs = _walk(doc.roots, serialization.BOKEH_VISIT)
    assert len(bokehs) > 50
    for _ in range(2):  # the defaults seen on the first walk are skipped on the second
        assert _walk(doc.roots, serialization.visit_immediate_value_references) == bokehs


def test_the_walk_finds_a_model_an_unset_default_holds():
    """A default that is a model (shared by every model of the class) is walked every time."""
    from bokeh.core.properties import Instance, Nullable, Override
    from bokeh.model import Model
    from bokeh.models import LinearAxis, Range1d

    shared = Range1d()

    class _Holder(Model):  # a test model, never sent to a browser
        child = Nullable(Instance(Model))

    class _HolderOfARange(_Holder):
        child = Override(default=shared)

    for _ in range(2):
        holder = _HolderOfARange()
        assert "child" not in holder._property_values
        found = _walk([holder], serialization.visit_immediate_value_references)
        assert shared.id in found
        assert found == _walk([holder], serialization.BOKEH_VISIT)
    axis = LinearAxis()  # defaults made per model (its ticker, its formatter)
    assert _walk([axis], serialization.visit_immediate_value_references) == _walk(
        [axis], serialization.BOKEH_VISIT
    )


def test_walking_a_tab_computes_few_defaults(dashboard_workdir, monkeypatch):
    import bokeh.model.util as model_util

    serialization.install()  # as the dashboard's configure() does
    doc = _document(TrendsView(store=DataStore(dashboard_workdir.root)))
    model_util.collect_models(*doc.roots)  # the defaults of these classes seen once
    calls = _count_defaults(monkeypatch)
    assert len(model_util.collect_models(*doc.roots)) == len(doc.models)
    # Bokeh's own walk reads the default of every unset property that may refer to a model
    # (one and a half per model on this tab), each time the models of a page change
    assert calls[0] < len(doc.models) / 10
