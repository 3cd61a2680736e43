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


@pytest.mark.parametrize("tab", [TrendsView, ExplorerView, ChangeRatesView])
def test_the_serialized_tab_is_bokehs_own(dashboard_workdir, tab):
    doc = _document(tab(store=DataStore(dashboard_workdir.root)))
    ours = _json(doc, serialization.set_properties_with_values)
    assert ours == _json(doc, serialization.BOKEH_QUERY)
    assert len(ours) > 10_000


def test_serializing_a_tab_computes_no_default_it_leaves_out(dashboard_workdir, monkeypatch):
    serialization.install()  # as the dashboard's configure() does
    doc = _document(TrendsView(store=DataStore(dashboard_workdir.root)))
    calls = [0]
    computed = PropertyDescriptor.instance_default

    def counted(self, obj):
        calls[0] += 1
        return computed(self, obj)

    monkeypatch.setattr(PropertyDescriptor, "instance_default", counted)
    doc.to_json(deferred=False)
    # Bokeh's own method computes the default of every unset property of every model (about
    # six thousand for this tab on the default demo) only to leave them out
    assert calls[0] < len(doc.models) / 10
