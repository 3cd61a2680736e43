"""Soil-moisture units: recognise the spellings found in CMIP6 and CDS files and convert.

Accepted units (case-insensitive; separators may be spaces, ``.`` or ``*``; exponents may
be written ``-2``, ``^-2`` or ``**-2``; a ``/`` divides by everything after it):

==========================  ==================  =======================================
kind                        example spellings   conversion to m3 m-3
==========================  ==================  =======================================
mass per area (areal)       ``kg m-2``,         ÷ 1000 kg m-3 × 1000 mm m-1 ÷ layer
                            ``kg/m2``,          depth (mm), i.e. ÷ ``layer_depth_mm``
                            ``kg m**-2``,       (÷ 100 for the 10 cm ``mrsos`` layer)
                            ``kg m^-2``
volumetric                  ``m3 m-3``,         none
                            ``m**3 m**-3``,
                            ``m3/m3``, ``1``,
                            ``fraction``
volumetric percent          ``%``, ``percent``  ÷ 100
==========================  ==================  =======================================

Anything else is rejected with a one-line :class:`~smcore.errors.InputError`.

After conversion, :func:`check_plausible` refuses values a volume fraction cannot take, in
the spirit of ESMValCore's CMOR checks: negative values, values above 1 m3 m-3 (both beyond
:data:`BOUNDS_TOLERANCE`), and a median outside :data:`PLAUSIBLE_MEDIAN` — the signature of
mislabelled units (m3 m-3 labelled ``kg m-2`` gives medians near 0.002; kg m-2 labelled
``1`` gives values of tens).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import xarray as xr

from smcore.errors import InputError

__all__ = [
    "parse_units",
    "same_units",
    "soil_moisture_kind",
    "to_volumetric",
    "check_soil_moisture_units",
    "check_plausible",
    "BOUNDS_TOLERANCE",
    "PLAUSIBLE_MEDIAN",
    "VOLUMETRIC_UNITS",
    "CMIP6_STANDARD_UNITS",
]

VOLUMETRIC_UNITS = "m3 m-3"
"""The units of every soil-moisture array after preparation (CF spelling)."""

CMIP6_STANDARD_UNITS: dict[str, str] = {
    "mrsos": "kg m-2",
    "mrso": "kg m-2",
    "mrsol": "kg m-2",
    "mrsofc": "kg m-2",
    "mrro": "kg m-2 s-1",
    "mrros": "kg m-2 s-1",
    "pr": "kg m-2 s-1",
    "evspsbl": "kg m-2 s-1",
    "tas": "K",
    "tasmax": "K",
    "tasmin": "K",
    "ts": "K",
    "huss": "1",
    "hurs": "%",
    "ps": "Pa",
    "psl": "Pa",
    "sfcWind": "m s-1",
    "rsds": "W m-2",
    "rlds": "W m-2",
    "sftlf": "%",
    "orog": "m",
}
"""CMIP6 data-request units of common variables, used by the catalog to flag surprises."""

_TOKEN = re.compile(r"^([a-z%]+)(?:\^|\*\*)?([+-]?\d+)?$")
_DIMENSIONLESS = {"1", "", "fraction", "(0-1)", "0-1"}
_PERCENT = {"%", "percent"}

SoilMoistureKind = Literal["areal", "volumetric", "percent"]


def parse_units(text: str | None) -> dict[str, int] | None:
    """Parse a units string into ``{symbol: exponent}`` with equal symbols combined.

    ``"kg m-2"`` → ``{"kg": 1, "m": -2}``; ``"m**3 m**-3"`` and ``"1"`` → ``{}``;
    ``"%"`` → ``{"%": 1}``. Returns ``None`` when the string cannot be parsed
    (and for a missing attribute).
    """
    if text is None:
        return None
    s = str(text).strip().lower()
    if s in _DIMENSIONLESS:
        return {}
    if s in _PERCENT:
        return {"%": 1}
    parts = s.split("/")
    result: dict[str, int] = {}
    for i, part in enumerate(parts):
        sign = 1 if i == 0 else -1
        # "**" and "^" belong to exponents; turn the other separators into spaces.
        part = part.replace("**", "^")
        tokens = [t for t in re.split(r"[\s.*·]+", part) if t]
        if not tokens and i > 0:
            return None
        for tok in tokens:
            if tok == "1" and len(tokens) == 1 and i == 0:
                continue
            m = _TOKEN.match(tok)
            if not m:
                return None
            symbol, exp = m.group(1), int(m.group(2)) if m.group(2) else 1
            result[symbol] = result.get(symbol, 0) + sign * exp
    return {k: v for k, v in result.items() if v != 0}


def same_units(a: str | None, b: str | None) -> bool:
    """True when two unit strings parse to the same symbols and exponents."""
    pa, pb = parse_units(a), parse_units(b)
    return pa is not None and pa == pb


def soil_moisture_kind(units: str | None) -> SoilMoistureKind | None:
    """Classify soil-moisture units: ``"areal"`` (kg m-2), ``"volumetric"`` (m3 m-3), ``"percent"``.

    Returns ``None`` for anything else (unknown or missing units).
    """
    parsed = parse_units(units)
    if parsed is None:
        return None
    if parsed == {"kg": 1, "m": -2}:
        return "areal"
    if parsed == {}:
        return "volumetric"
    if parsed == {"%": 1}:
        return "percent"
    return None


def check_soil_moisture_units(
    units: str | None, name: str = "soil moisture", source: str | Path | None = None
) -> SoilMoistureKind:
    """The kind of soil-moisture ``units``; raises :class:`InputError` naming ``source``."""
    kind = soil_moisture_kind(units)
    if kind is None:
        what = "has no units attribute" if units is None else f"has unknown units {units!r}"
        raise InputError(
            source, f"{name} {what} (accepted: kg m-2 or m3 m-3 in any common spelling, or %)"
        )
    return kind


def to_volumetric(
    da: xr.DataArray,
    units: str | None,
    layer_depth_mm: float,
    source: str | Path | None = None,
) -> xr.DataArray:
    """Convert soil moisture to volumetric water content (m3 m-3).

    ``da`` holds soil moisture in ``units``; areal values (kg m-2) are divided by
    ``layer_depth_mm`` (mm), since 1 kg m-2 of water is a 1 mm column. Raises
    :class:`InputError` naming ``source`` for missing or unknown units.
    """
    kind = check_soil_moisture_units(units, str(da.name or "soil moisture"), source)
    if kind == "areal":
        if not layer_depth_mm > 0:
            raise InputError(source, f"layer depth must be positive, got {layer_depth_mm} mm")
        out = da / float(layer_depth_mm)
    elif kind == "percent":
        out = da / 100.0
    else:
        out = da
    out = out.astype("float32")
    out.attrs = {
        "units": VOLUMETRIC_UNITS,
        "standard_name": "volume_fraction_of_condensed_water_in_soil",
        "long_name": "volumetric soil water content",
        "source_units": str(units),
    }
    if kind == "areal":
        out.attrs["layer_depth_mm"] = float(layer_depth_mm)
    return out.rename(da.name)


BOUNDS_TOLERANCE = 0.01
"""m3 m-3 beyond 0 and 1 that converted soil moisture may reach (rounding, packing)."""

PLAUSIBLE_MEDIAN = (0.01, 0.8)
"""Range (m3 m-3) of a plausible median of surface soil moisture over a domain's land."""


def check_plausible(
    values: np.ndarray,
    *,
    source: str | Path | None,
    units: str | None,
    what: str = "soil moisture",
    locate: Callable[[int], str | Path | None] | None = None,
    layer_depth_mm: float | None = None,
) -> None:
    """Refuse converted soil moisture (m3 m-3) that no volume fraction can be.

    ``values`` is ``(time, ...)`` after conversion from ``units``; NaN are ignored. Raises a
    one-line :class:`InputError` naming the file (``locate(time_index)`` gives the file of a
    time step, else ``source``) for negative values, values above 1 (beyond
    :data:`BOUNDS_TOLERANCE`) and a median outside :data:`PLAUSIBLE_MEDIAN`, the last two as
    "probably mislabelled units".
    """
    arr = np.asarray(values)
    rows = arr.reshape(arr.shape[0] if arr.ndim else 1, -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN time steps
        row_min, row_max = np.nanmin(rows, axis=1), np.nanmax(rows, axis=1)
    if not np.isfinite(row_min).any():
        return
    i_lo, i_hi = int(np.nanargmin(row_min)), int(np.nanargmax(row_max))
    lo, hi = float(row_min[i_lo]), float(row_max[i_hi])

    def where(i: int) -> str | Path | None:
        return (locate(i) if locate is not None else None) or source

    conv = f"after conversion from {units!r}"
    if layer_depth_mm is not None and soil_moisture_kind(units) == "areal":
        conv += f" (÷ layer depth {layer_depth_mm:g} mm)"
    if lo < -BOUNDS_TOLERANCE:
        raise InputError(
            where(i_lo),
            f"{what} has negative values (down to {lo:.3g} m3 m-3 {conv}): "
            "soil moisture cannot be negative (a wrong fill value or offset?)",
        )
    if hi > 1.0 + BOUNDS_TOLERANCE:
        raise InputError(
            where(i_hi),
            f"{what} reaches {hi:.3g} m3 m-3 {conv}, above 1 (a volume fraction lies in 0-1): "
            "probably mislabelled units",
        )
    # whole time steps, evenly spread, about 2 million values: a median to two digits
    sample = rows[:: max(1, rows.size // 2_000_000)]
    sample = sample[np.isfinite(sample)]
    median = float(np.median(sample)) if sample.size else float(np.nanmedian(rows))
    m0, m1 = PLAUSIBLE_MEDIAN
    if not m0 <= median <= m1:
        raise InputError(
            source,
            f"{what} has a median of {median:.3g} m3 m-3 {conv}, implausible for soil "
            f"moisture (expected {m0:g}-{m1:g}): probably mislabelled units",
        )
