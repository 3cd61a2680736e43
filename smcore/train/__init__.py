"""smcore.train."""
