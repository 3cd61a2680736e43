"""Bokeh's serialization of a model without computing the defaults it leaves out.

To send a model to the browser, Bokeh (3.x) lists its properties with values, leaving out
those still at their default (``HasProps.query_properties_with_values(include_defaults=False)``).
It reads *every* property first and only then drops the unset ones; reading an unset property
computes its default (the class's, through the theme, validated), so serializing a figure of a
few hundred models computes tens of thousands of defaults only to discard them. Its own comment
says so ("this should happen before get_value()"). That was most of the time a tab's patch took
to serialize on the server (0.23–0.32 s per tab on the default demo; 0.03–0.05 s without).

:func:`install` replaces that method with :func:`set_properties_with_values`: the same
selection and the same values, the unset properties skipped before they are read.

Bokeh walks a document's models the same way: every time the models of a page change (a tab
shown, a map redrawn) it collects them again, reading every property that may refer to a model,
unset ones included (``bokeh.model.util.visit_immediate_value_references``). With twenty pages
open that walk was a fifth of the server's time. :func:`visit_immediate_value_references`
finds the same models and skips an unset property whose default (the same for every model of
its class) was seen once to hold none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import bokeh
import bokeh.model.util as model_util
from bokeh.core.has_props import HasProps
from bokeh.core.property.descriptors import PropertyDescriptor
from bokeh.core.property.wrappers import PropertyValueContainer

__all__ = [
    "install",
    "set_properties_with_values",
    "visit_immediate_value_references",
    "BOKEH_QUERY",
    "BOKEH_VISIT",
]

BOKEH_QUERY = HasProps.query_properties_with_values
"""Bokeh's own ``HasProps.query_properties_with_values`` (the fallback, and for tests)."""


def set_properties_with_values(
    self: HasProps,
    query: Callable[[PropertyDescriptor[Any]], bool],
    *,
    include_defaults: bool = True,
    include_undefined: bool = False,
) -> dict[str, Any]:
    """``HasProps.query_properties_with_values``, reading only the properties it returns.

    With ``include_defaults`` or ``include_undefined`` it is Bokeh's own method. Otherwise
    it returns what Bokeh's returns: the properties set on the model, those whose default the
    model holds (containers and models, unless an unchanged container) and those themed,
    that ``query`` accepts.
    """
    if include_defaults or include_undefined:
        return BOKEH_QUERY(
            self, query, include_defaults=include_defaults, include_undefined=include_undefined
        )
    themed = self.themed_values()
    themed_keys = set(themed) if themed is not None else set()
    selected = set(self._property_values) | set(self._unstable_default_values) | themed_keys
    result: dict[str, Any] = {}
    for key in self.properties(_with_props=True):  # Bokeh's order
        if key not in selected:
            continue
        descriptor = self.lookup(key)
        if not query(descriptor):
            continue
        value = descriptor.get_value(self)
        if (
            key not in themed_keys
            and isinstance(value, PropertyValueContainer)
            and key in self._unstable_default_values
        ):
            continue  # an unchanged container default, as Bokeh leaves out
        result[key] = value
    return result


BOKEH_VISIT = model_util.visit_immediate_value_references
"""Bokeh's own ``visit_immediate_value_references`` (for tests)."""

_EMPTY_DEFAULTS: dict[tuple[type, str], bool] = {}
"""(model class, property) → whether the property's default, when unset, holds no model."""


def visit_immediate_value_references(value: Any, visitor: Callable[[Any], None]) -> None:
    """Bokeh's ``visit_immediate_value_references``, without reading defaults that hold no model.

    Visits the models that ``value``'s properties refer to (for a model) or that ``value``
    holds (anything else), as Bokeh's function does. A property that is not set, not themed
    and whose default Bokeh does not keep per model (a stable default, the same for every
    model of the class) is read once per class; when its default holds no model it is not read
    again.
    """
    visit = model_util.visit_value_and_its_immediate_references
    if not isinstance(value, HasProps):
        visit(value, visitor)
        return
    cls = type(value)
    themed = value.themed_values() or {}
    for attr in value.properties_with_refs():
        unset = (
            attr not in value._property_values
            and attr not in value._unstable_default_values
            and attr not in value._unstable_themed_values
            and attr not in themed
        )
        if unset and _EMPTY_DEFAULTS.get((cls, attr)):
            continue
        child = getattr(value, attr)
        visit(child, visitor)
        if unset and (cls, attr) not in _EMPTY_DEFAULTS:
            kept = attr in value._unstable_default_values or attr in value._unstable_themed_values
            found: list[Any] = []
            visit(child, found.append)
            _EMPTY_DEFAULTS[(cls, attr)] = not kept and not found


def install() -> None:
    """Use :func:`set_properties_with_values` and :func:`visit_immediate_value_references`.

    Bokeh then serializes models and walks documents with them (idempotent).

    Only for Bokeh 3, whose method this reproduces; any other version keeps its own.
    """
    if bokeh.__version__.split(".")[0] == "3":
        HasProps.query_properties_with_values = set_properties_with_values  # type: ignore[method-assign]
        model_util.visit_immediate_value_references = visit_immediate_value_references
