"""Progress bars that also tell the dashboard how far the running step has come.

:class:`StepBar` is tqdm's bar (drawn in the terminal unless ``disable``) that, while this process
runs a step ``smcore run`` marked (:func:`smcore.runstate.mark_running`), keeps its count in
the step's ``WD/.stamps/running.json`` (:func:`smcore.runstate.open_bar`), drawn or not: the
dashboard's sidebar and Model tab show it while the pipeline runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tqdm.auto import tqdm

from smcore import runstate

__all__ = ["StepBar"]


class StepBar(tqdm):
    """``tqdm(...)`` whose count also goes to the running step's file."""

    def __init__(self, iterable: Any = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(iterable, *args, **kwargs)
        # tqdm sets total (from the iterable's length if need be) and n even when disabled,
        # but not desc and unit
        self._record = runstate.open_bar(
            kwargs.get("desc") or "", self.total, kwargs.get("unit", "it"), self.n
        )

    def update(self, n: float | None = 1) -> bool | None:
        """Count ``n`` more done (in the terminal and in the step's file)."""
        out = super().update(n)
        self._record.update(int(n or 0))
        return out

    def __iter__(self) -> Iterator[Any]:
        for item in super().__iter__():
            yield item
            self._record.update(1)

    def close(self) -> None:
        """Close the bar; its record leaves the step's file."""
        record = getattr(self, "_record", None)
        if record is not None:
            record.close()
        super().close()
