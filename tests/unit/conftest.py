"""Fixtures shared by several unit test files."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def ckpt(toy_files, tmp_path_factory):
    """A small trained toy checkpoint (built once per session by tests/helpers/toy_checkpoint.py)."""
    from helpers.toy_checkpoint import toy_checkpoint

    return toy_checkpoint(toy_files, tmp_path_factory)


@pytest.fixture(scope="module")
def translator(ckpt):
    from rosettamt.translate import Translator

    return Translator.from_checkpoint(ckpt, device="cpu")
