"""Colours, sizes and labels of the dashboard (one place to restyle it)."""

from __future__ import annotations

from smcore.config import SCENARIO_LABELS

__all__ = [
    "TITLE",
    "ACCENT",
    "FONT",
    "MAP_WIDTH",
    "SMALL_MAP_WIDTH",
    "SERIES_HEIGHT",
    "PRODUCT_COLORS",
    "KIND_COLORS",
    "BOUNDARY_STYLES",
    "GRATICULE_STYLE",
    "PRESENTATION_FONTSCALE",
    "STIPPLE_MAX_POINTS",
    "STIPPLE_SPACING_PX",
    "STIPPLE_SIZE_PX",
    "STIPPLE_MAX_COVER",
    "SSM_CMAP",
    "TREND_CMAP",
    "ERROR_CMAP",
    "CORR_CMAP",
    "UNCERTAINTY_CMAP",
    "REGION_COLORS",
    "REGION_LABELS",
    "SCENARIO_LABELS",
    "SEASON_LABELS",
    "STEP_LABELS",
    "product_label",
    "RASTERIZE_ABOVE",
    "SIGNIFICANCE",
    "DEFAULT_PIXEL",
]

TITLE = "smcore · CMIP6 surface soil moisture merged by YNet"
ACCENT = "#1f5f8b"
# System fonts only: the page must not fetch web fonts (air-gapped HPC centres).
FONT = (
    "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', 'Helvetica Neue', "
    "Arial, sans-serif"
)

MAP_WIDTH = 400
SMALL_MAP_WIDTH = 200
SERIES_HEIGHT = 300

SSM_CMAP = "YlGnBu"
TREND_CMAP = "BrBG"  # brown = drying, green = wetting; always centred on zero
ERROR_CMAP = "magma_r"
CORR_CMAP = "viridis"
UNCERTAINTY_CMAP = "Purples"  # interval width / ensemble spread: light = sure, dark = unsure

PRODUCT_COLORS: dict[str, str] = {
    "reference": "#222222",
    "CMIP6_DL": "#d62728",
    "ensemble_mean": "#1f77b4",
    "model": "#2ca02c",
}

KIND_COLORS: dict[str, str] = {
    "reference": "#222222",
    "CMIP6_DL": "#d62728",
    "ensemble mean": "#1f77b4",
    "baseline": "#ff7f0e",
    "ESM": "#7f7f7f",
}

BOUNDARY_STYLES: dict[str, dict[str, object]] = {
    "coastline": {"color": "#5b7fa3", "line_width": 0.8},
    "china_provinces": {"color": "#9a9a9a", "line_width": 0.4},
    "china_boundary": {"color": "#202020", "line_width": 1.2},
    "tibetan_plateau": {"color": "#7b3294", "line_width": 1.0, "line_dash": "dashed"},
}

GRATICULE_STYLE: dict[str, object] = {"color": "#b0b0b0", "line_width": 0.5, "line_dash": "dotted"}
"""Meridians and parallels of projected maps."""

PRESENTATION_FONTSCALE = 1.6
"""Font scale of every plot in presentation mode (the sidebar's switch)."""

REGION_COLORS: dict[str, str] = {
    "arid": "#d8b365",
    "semi_arid_sub_humid": "#a6d96a",
    "humid": "#1a9850",
    "tibetan_plateau": "#7b3294",
}

REGION_LABELS: dict[str, str] = {
    "arid": "Arid",
    "semi_arid_sub_humid": "Semi-arid / sub-humid",
    "humid": "Humid",
    "tibetan_plateau": "Tibetan Plateau",
    "north": "North (≥ 35°N, east of 100°E)",
    "south": "South (< 35°N, east of 100°E)",
}

SEASON_LABELS: dict[str, str] = {
    "annual": "Annual",
    "MAM": "Spring (MAM)",
    "JJA": "Summer (JJA)",
    "SON": "Autumn (SON)",
    "DJF": "Winter (DJF)",
}

STEP_LABELS: dict[str, str] = {
    "prepare": "prepared inputs",
    "train": "training",
    "predict": "products",
    "evaluate": "evaluation",
    "analyse": "future analysis",
}
"""Short sidebar names of the pipeline's steps (:data:`smcore.workdir.STEPS`) and their files."""

DEFAULT_PIXEL = (116.375, 39.875)
"""Cell (lon, lat) whose series the explorer shows first (Beijing; snapped to land)."""

SIGNIFICANCE = 0.05
"""Mann–Kendall p-value below which a trend is stippled, only for trend files without the
``significant`` (false discovery rate) mask, written before it existed."""

RASTERIZE_ABOVE = 1_500_000
"""Maps with more cells than this go through datashader's rasterize."""

STIPPLE_MAX_POINTS = 4000
"""Without a map size: at most about this many significance dots (the grid is subsampled)."""

STIPPLE_SPACING_PX = 10
"""Significance dots sit on a lattice of blocks about this many screen pixels wide."""

STIPPLE_SIZE_PX = 2.5
"""Diameter of a significance dot, screen pixels."""

STIPPLE_MAX_COVER = 0.08
"""Largest share of a map's pixels the significance dots may cover (a test checks it)."""

_PRODUCT_LABELS = {
    "reference": "Reference (ERA5-Land)",
    "CMIP6_DL": "CMIP6_DL (YNet)",
    "ensemble_mean": "Ensemble mean",
}


def product_label(name: str) -> str:
    """Human-readable name of a product (reference, CMIP6_DL, ensemble mean, ESM, baseline)."""
    return _PRODUCT_LABELS.get(name, name.replace("_", " ") if name.islower() else name)
