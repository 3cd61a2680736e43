"""smcore.evaluation."""
