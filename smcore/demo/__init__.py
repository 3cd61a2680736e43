"""smcore.demo."""
