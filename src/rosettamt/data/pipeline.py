"""corpus -> tokenizer -> cached ids in one call, shared by rosettamt-prepare and the trainer.

Every step is cached on disk under ``data.cache_dir`` (corpus Arrow files,
tokenizer models, token ids), so a second call with the same inputs only
memory-maps what the first one wrote.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import DatasetDict, concatenate_datasets

from rosettamt.atomic import writable_dir
from rosettamt.config import DataConfig, TokenizerConfig, check_tokenizer
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
    # multilingual only (data.langs / data.pairs); corpus and ids then hold every direction's split
    # one after the other (sources start with the target tag id), the per-direction parts are here
    directions: list[tuple[str, str]] | None = None
    dir_corpus: dict[str, DatasetDict] = field(default_factory=dict)  # "en-de" -> split -> {src, tgt}
    dir_ids: dict[str, DatasetDict] = field(default_factory=dict)  # "en-de" -> split -> {src_ids, tgt_ids}
    groups: Any = None  # data.multilingual.DirectionGroups of the train split
    langid: dict | None = None  # rosettamt.langid profiles (state_dict), built by training for checkpoints

    @property
    def multilingual(self) -> bool:
        return self.directions is not None

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
        if self.groups is not None:
            lines.append(f"train pairs drawn per epoch (direction drawn/kept): {self.groups.describe()}")
        return lines


def prepare_data(data_cfg: DataConfig, tok_cfg: TokenizerConfig, seed: int = 1) -> PreparedData:
    """Load and validate the corpus, train or reuse the tokenizer, encode and cache every split.

    ``seed`` is the run's seed, accepted so that callers pass their whole config; every data
    step is deterministic (the tokenizer's sentence sampling follows ``tokenizer.seed``).
    """
    check_tokenizer(tok_cfg)
    cache_dir = writable_dir(Path(data_cfg.cache_dir), "data.cache_dir")  # before any work is done
    if data_cfg.langs or data_cfg.pairs:
        return prepare_multilingual(data_cfg, tok_cfg, cache_dir)
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


def prepare_multilingual(data_cfg: DataConfig, tok_cfg: TokenizerConfig, cache_dir: Path) -> PreparedData:
    """:func:`prepare_data` for data.langs / data.pairs: each direction loaded as its own bilingual
    corpus, one joint tokenizer with the target tags, tagged ids, train directions drawn by data.sampling."""
    from rosettamt import langs as L
    from rosettamt.config import check_directions
    from rosettamt.data import multilingual as M
    from rosettamt.data.tokenizer import train_or_load_multilingual
    from rosettamt.errors import UserError

    dirs = check_directions(data_cfg, tok_cfg)
    assert dirs is not None
    train = data_cfg.train_split
    dir_corpus, stats = {}, {}
    for d in dirs:
        name = L.pair_name(d)
        try:
            corpus, corpus_stats = load_corpus_with_stats(M.direction_config(data_cfg, d))
        except UserError as err:  # which direction's files (data.pair_files.<name> or data.files with {src}/{tgt})
            message = str(err)
            if name in data_cfg.pair_files:  # its files came from data.pair_files.<name>: say that option
                message = message.replace("data.files.", f"data.pair_files.{name}.")
            raise UserError(f"direction {name}: {message}") from None
        dir_corpus[name] = corpus
        for split, st in corpus_stats.items():
            stats[(split, name)] = st
    tokenizer, hit = train_or_load_multilingual({d: dir_corpus[L.pair_name(d)][train] for d in dirs}, tok_cfg,
                                                data_cfg, cache_dir)
    dir_ids = {}
    for d in dirs:
        name = L.pair_name(d)
        dir_ids[name] = encode_splits(dir_corpus[name], tokenizer, data_cfg, cache_dir,
                                      src_prefix=[tokenizer.tag_id(d[1])], label=name)
    splits = list(dict.fromkeys(s for c in dir_corpus.values() for s in c))
    corpus = DatasetDict({s: concatenate_datasets([c[s] for c in dir_corpus.values() if s in c]) for s in splits})
    ids = DatasetDict({s: concatenate_datasets([i[s] for i in dir_ids.values() if s in i]) for s in splits})
    names = [L.pair_name(d) for d in dirs]
    groups = M.direction_groups(names, [len(dir_ids[n][train]) for n in names], data_cfg)
    log.info("directions: %s; train pairs drawn per epoch (drawn/kept): %s (data.sampling=%s, T=%g)",
             ", ".join(names), groups.describe(), data_cfg.sampling, data_cfg.sampling_temperature)
    if sum(groups.counts) == 0:  # pragma: no cover - every train split is checked non-empty
        raise UserError("no train pairs in any direction")
    report = {}
    for (split, name), st in stats.items():
        kept = len(dir_ids[name][split])
        report[f"{split} {name}"] = SplitReport(pairs=st.pairs, dropped_empty=st.dropped_empty,
                                                filtered_long=len(dir_corpus[name][split]) - kept)
    return PreparedData(corpus=corpus, ids=ids, tokenizer=tokenizer, tokenizer_cache_hit=hit, stats=report,
                        train_split=train, val_split=data_cfg.val_split if data_cfg.val_split in corpus else None,
                        test_splits=[s for s in data_cfg.test_splits if s in corpus],
                        directions=list(dirs), dir_corpus=dir_corpus, dir_ids=dir_ids, groups=groups)
