"""corpus -> tokenizer -> cached ids in one call, shared by rosettamt-prepare and the trainer.

Every step is cached on disk under ``data.cache_dir`` (corpus Arrow files,
tokenizer models, token ids), so a second call with the same inputs only
memory-maps what the first one wrote.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from datasets import DatasetDict

from rosettamt.atomic import writable_dir
from rosettamt.config import DataConfig, TokenizerConfig
from rosettamt.data.batching import encode_splits
from rosettamt.data.corpus import load_corpus_with_stats
from rosettamt.data.tokenizer import Tokenizer, train_or_load

log = logging.getLogger(__name__)


@dataclass
class SplitReport:
    """What happened to one split on its way to ids."""

    pairs: int  # non-empty pairs read
    dropped_empty: int  # empty or whitespace-only pairs dropped
    filtered_long: int  # train pairs over data.max_len tokens (0 for val/test: never dropped)

    @property
    def kept(self) -> int:
        return self.pairs - self.filtered_long


@dataclass
class PreparedData:
    corpus: DatasetDict  # split -> {src, tgt} strings
    ids: DatasetDict  # split -> {src_ids, tgt_ids} (no BOS/EOS)
    tokenizer: Tokenizer
    tokenizer_cache_hit: bool
    stats: dict[str, SplitReport]
    train_split: str = "train"
    val_split: str | None = None
    test_splits: list[str] = field(default_factory=list)  # those the corpus has (no cs test_2017)

    def summary(self) -> list[str]:
        """Human-readable lines: per split counts, then the tokenizer."""
        width = max(len(s) for s in self.stats)
        lines = []
        for split, r in self.stats.items():
            lines.append(f"{split:<{width}}  {r.pairs:>8} pairs  {r.dropped_empty:>6} dropped (empty)  "
                         f"{r.filtered_long:>6} filtered (too long)  {r.kept:>8} kept")
        tok = self.tokenizer
        vocab = (f"vocab size {tok.src_vocab_size} (joint)" if tok.joint
                 else f"vocab size {tok.src_vocab_size} (source) / {tok.tgt_vocab_size} (target)")
        hit = "cache hit" if self.tokenizer_cache_hit else "trained (cache miss)"
        lines.append(f"tokenizer: {vocab}, {hit}, hash {tok.content_hash[:12]}")
        return lines


def prepare_data(data_cfg: DataConfig, tok_cfg: TokenizerConfig, seed: int = 1) -> PreparedData:
    """Load and validate the corpus, train or reuse the tokenizer, encode and cache every split.

    ``seed`` is the run's seed, accepted so that callers pass their whole config; every data
    step is deterministic (the tokenizer's sentence sampling follows ``tokenizer.seed``).
    """
    cache_dir = writable_dir(Path(data_cfg.cache_dir), "data.cache_dir")  # before any work is done
    corpus, corpus_stats = load_corpus_with_stats(data_cfg)
    tokenizer, hit = train_or_load(corpus[data_cfg.train_split], tok_cfg, data_cfg, cache_dir)
    ids = encode_splits(corpus, tokenizer, data_cfg, cache_dir)
    stats = {split: SplitReport(pairs=s.pairs, dropped_empty=s.dropped_empty,
                                filtered_long=len(corpus[split]) - len(ids[split]))
             for split, s in corpus_stats.items()}
    return PreparedData(corpus=corpus, ids=ids, tokenizer=tokenizer, tokenizer_cache_hit=hit, stats=stats,
                        train_split=data_cfg.train_split,
                        val_split=data_cfg.val_split if data_cfg.val_split in corpus else None,
                        test_splits=[s for s in data_cfg.test_splits if s in corpus])
