"""smcore.io."""
