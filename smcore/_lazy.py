"""Lazy package exports (PEP 562), so that importing one submodule does not import its siblings.

The training core (``smcore.models``, ``smcore.train``) imports ``smcore.io.atomic`` and
``smcore.prep.store``; with lazy package ``__init__`` files it runs where the file-format stack
(netCDF4, cftime, zarr, dask) is not installed, such as a bare GPU node.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, exports: dict[str, list[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` of ``package``: ``{submodule: [names]}``, imported on use."""
    where = {name: sub for sub, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{where[name]}"), name)

    def __dir__() -> list[str]:
        return sorted(where)

    return __getattr__, __dir__
