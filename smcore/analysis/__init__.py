"""smcore.analysis."""
