"""Which splits the config asks for, and which option asked for each (for error messages)."""

from __future__ import annotations

from rosettamt.config import DataConfig
from rosettamt.errors import UserError


def wanted_splits(cfg: DataConfig) -> list[str]:
    """The split names the config asks for, in order: train, val, then the test splits."""
    if not cfg.train_split:
        raise UserError("data.train_split is empty; the tokenizer and the trainer need a train split")
    names = [cfg.train_split] + ([cfg.val_split] if cfg.val_split else []) + list(cfg.test_splits)
    return list(dict.fromkeys(names))


def split_option(cfg: DataConfig, split: str) -> str:
    """The option that named ``split``, so an error can point the user at it."""
    if split == cfg.train_split:
        return "data.train_split"
    return "data.val_split" if split == cfg.val_split else "data.test_splits"
