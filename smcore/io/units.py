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
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import xarray as xr

from smcore.errors import InputError

__all__ = [
    "parse_units",
    "same_units",
    "soil_moisture_kind",
    "to_volumetric",
    "check_soil_moisture_units",
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
