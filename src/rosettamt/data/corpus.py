"""Parallel text -> a ``datasets.DatasetDict`` of ``{src, tgt}`` strings, validated and cached.

The front door of the corpus: it picks the source that ``data.source`` names
(``multi30k.py``, ``hub.py`` or ``user_files.py``), lets ``corpus_cache.py``
clean each split once into a memory-mapped Arrow file, and hashes split text
for the tokenizer and id caches downstream. Bad input raises :class:`UserError`
with a one-line message naming the file, line or option.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Callable

from datasets import Dataset, DatasetDict

from rosettamt.config import DataConfig, Source
from rosettamt.data.corpus_cache import CHUNK, Sources, SplitStats, materialize
from rosettamt.data.hub import hub_sources
from rosettamt.data.multi30k import multi30k_sources
from rosettamt.data.splits import wanted_splits
from rosettamt.data.user_files import files_sources
from rosettamt.errors import UserError

log = logging.getLogger(__name__)

SOURCES: dict[Source, Callable[[DataConfig, list[str]], Sources]] = {
    Source.multi30k: multi30k_sources,
    Source.files: files_sources,
    Source.hub: hub_sources,
}


def load_corpus(cfg: DataConfig) -> DatasetDict:
    """Every split the config names (train, val, tests) as a ``{src, tgt}`` DatasetDict."""
    return load_corpus_with_stats(cfg)[0]


def load_corpus_with_stats(cfg: DataConfig) -> tuple[DatasetDict, dict[str, SplitStats]]:
    """Like :func:`load_corpus`, plus per-split counts (for rosettamt-prepare's report)."""
    wanted = wanted_splits(cfg)
    if cfg.source not in SOURCES:  # pragma: no cover - the schema's enum rules this out
        raise UserError(f"unknown data.source={cfg.source}")
    sources = SOURCES[cfg.source](cfg, wanted)
    root = Path(cfg.cache_dir) / "corpus"
    splits, stats = {}, {}
    for split, (key, pairs) in sources.items():
        splits[split], stats[split] = materialize(split, key, pairs, root)
        if stats[split].dropped_empty:
            log.info("%s: dropped %d empty or whitespace-only pairs", split, stats[split].dropped_empty)
        if stats[split].pairs == 0:
            raise UserError(f"split {split!r} has no non-empty pairs ({_describe(cfg, split)})")
    return DatasetDict(splits), stats


_HASHES: dict[str, str] = {}  # datasets fingerprint -> content hash, within one process


def content_hash(ds: Dataset) -> str:
    """sha256 of a split's text: the same pairs give the same hash wherever they were read from."""
    if ds._fingerprint in _HASHES:  # the fingerprint changes whenever the data may have changed
        return _HASHES[ds._fingerprint]
    h = hashlib.sha256()
    for batch in ds.select_columns(["src", "tgt"]).iter(batch_size=CHUNK):
        for s, t in zip(batch["src"], batch["tgt"]):
            sb, tb = s.encode("utf-8"), t.encode("utf-8")
            h.update(b"%d:%d:" % (len(sb), len(tb)))  # length prefix: no separator ambiguity
            h.update(sb)
            h.update(tb)
    _HASHES[ds._fingerprint] = h.hexdigest()
    return _HASHES[ds._fingerprint]


def _describe(cfg: DataConfig, split: str) -> str:
    """Where an empty split came from, for the error message."""
    if cfg.source == Source.files:
        return f"data.files.{split}={cfg.files.get(split)}"
    return f"data.source={cfg.source}"
