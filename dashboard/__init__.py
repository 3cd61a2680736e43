"""The smcore Panel dashboard."""
