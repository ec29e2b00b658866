"""Shared test helpers: toy corpora, toy checkpoints, toy training configs (imported as ``helpers.*``)."""
