"""The dashboard's tabs, one module each; :data:`TABS` gives their order."""

from __future__ import annotations

from dashboard.views.base import View
from dashboard.views.change_rates import ChangeRatesView
from dashboard.views.evaluation import EvaluationView
from dashboard.views.explorer import ExplorerView
from dashboard.views.model import ModelView
from dashboard.views.regional import RegionalView
from dashboard.views.trends import TrendsView

__all__ = ["TABS", "View"]

TABS: tuple[type[View], ...] = (
    ExplorerView,
    EvaluationView,
    RegionalView,
    TrendsView,
    ChangeRatesView,
    ModelView,
)
"""Tab classes in display order."""
