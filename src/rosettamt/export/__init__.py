"""Exports (filled in below)."""
