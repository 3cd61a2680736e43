"""smcore.models."""
