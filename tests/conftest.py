"""Shared fixtures: everything offline, small and seeded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MULTI30K = REPO.parent / "shared" / "data" / "multi30k"

# Keep the two cores of CI for the test process itself.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def multi30k_dir() -> Path:
    if not (MULTI30K / "train.en.gz").is_file():
        pytest.skip(f"Multi30k copy not found at {MULTI30K}")
    return MULTI30K


@pytest.fixture(scope="session")
def toy_files(tmp_path_factory) -> dict[str, list[str]]:
    """split -> [src_file, tgt_file] of the toy language pair (tests/helpers/toy.py)."""
    from helpers.toy import write_toy_corpus

    return write_toy_corpus(tmp_path_factory.mktemp("toy"))


@pytest.fixture(scope="module")
def toy_cache(tmp_path_factory) -> Path:
    """A data cache for one test module: the toy tokenizer and ids are trained once per module."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def make_cfg(toy_files, toy_cache):
    """``make_cfg(*overrides)``: the TrainConfig of a toy run (helpers/train_toy.py) with these overrides."""
    from helpers.train_toy import compose_train, toy_overrides

    return lambda *extra: compose_train(toy_overrides(toy_files, toy_cache, *extra))


@pytest.fixture(scope="session")
def multi30k_slice(multi30k_dir, tmp_path_factory) -> Path:
    """A 500-line-per-split en/de slice of Multi30k in a temporary directory."""
    from helpers.toy import write_multi30k_slice

    return write_multi30k_slice(multi30k_dir, tmp_path_factory.mktemp("m30k"))
