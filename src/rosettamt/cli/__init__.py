"""Hydra entry points: each parses its config once and calls the library."""
