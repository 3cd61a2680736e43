"""smcore.prep."""
