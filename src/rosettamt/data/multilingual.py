"""Multilingual data: one bilingual corpus per direction, a joint language-balanced tokenizer, tagged ids.

A multilingual config (``data.langs`` or ``data.pairs``, see rosettamt/langs.py) is read as one
bilingual config per direction (:func:`direction_config`), each loaded and validated by the
usual sources. The tokenizer is one SentencePiece model over every language, trained on text
drawn from each language by the same temperature rule as the training pairs (so a small
language is not drowned by a big one), with the target tags (``<2de>``) as single pieces.
Every source id sequence starts with the tag of its target language; the training split is
the directions' id splits one after the other (:class:`DirectionGroups` says where each lies),
and :func:`direction_counts` says how many pairs of each an epoch draws.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from rosettamt import langs as L
from rosettamt.config import DataConfig, Sampling, Source, TokenizerConfig
from rosettamt.errors import UserError

log = logging.getLogger(__name__)

Direction = Tuple[str, str]
SAMPLE_FORMAT = "rosettamt-multilingual-1"  # bump when the tokenizer's text sampling changes


def directions_of(cfg: DataConfig) -> Optional[List[Direction]]:
    """The directions of ``cfg`` (None: bilingual)."""
    return L.directions(cfg.langs, cfg.pairs)


def direction_config(cfg: DataConfig, direction: Direction, only: bool = False) -> DataConfig:
    """The bilingual DataConfig of one direction of a multilingual ``cfg``.

    data=files: ``data.pair_files.<src-tgt>`` when it names the direction, else ``data.files``
    with ``{src}`` / ``{tgt}`` in its paths filled in; ``only`` (this direction alone is read, as
    rosettamt-evaluate with src_lang= / tgt_lang= does): ``data.files`` without placeholders is
    this direction's pair (or no files at all, for the caller to ask for). data=hub: ``{src}`` / ``{tgt}`` in
    ``data.hub_config`` filled in (``wmt14`` style per-direction configs), or multi-way
    ``translation`` records read with the direction's two languages.
    """
    src, tgt = direction
    name = L.pair_name(direction)

    def fill(text: str) -> str:
        return text.replace("{src}", src).replace("{tgt}", tgt)

    files = cfg.files
    if cfg.source == Source.files:
        if name in cfg.pair_files:
            files = {split: list(paths) for split, paths in cfg.pair_files[name].items()}
        elif any("{src}" in p or "{tgt}" in p for paths in cfg.files.values() for p in paths):
            files = {split: [fill(p) for p in paths] for split, paths in cfg.files.items()}
        elif not only:
            raise UserError(f"data=files with several directions: give data.pair_files.{name}.train=[SRC,TGT] "
                            f"(and .val, .test) for direction {name}, or put {{src}} and {{tgt}} in the "
                            "data.files paths (data.files.train=[train.{src},train.{tgt}])")
    hub_config = fill(cfg.hub_config) if cfg.hub_config else cfg.hub_config
    return dataclasses.replace(cfg, src_lang=src, tgt_lang=tgt, langs=None, pairs=None, pair_files={},
                               files=files, hub_config=hub_config)


# ---------------------------------------------------------------------------- sampling


def direction_probabilities(sizes: Sequence[int], sampling: Sampling, temperature: float) -> np.ndarray:
    """p(direction): proportional to n^(1/T) (temperature; T=1 proportional), or uniform."""
    n = np.asarray(sizes, dtype=np.float64)
    if sampling == Sampling.uniform:
        weights = (n > 0).astype(np.float64)
    else:
        weights = np.where(n > 0, n, 0.0) ** (1.0 / float(temperature))
    total = weights.sum()
    return weights / total if total > 0 else weights


def direction_counts(sizes: Sequence[int], sampling: Sampling, temperature: float,
                     total: Optional[int] = None) -> List[int]:
    """Examples of each direction one epoch draws: ``total`` (default: all examples) split by
    :func:`direction_probabilities`, rounded so that the counts add up to ``total``."""
    total = int(sum(sizes)) if total is None else int(total)
    p = direction_probabilities(sizes, sampling, temperature)
    raw = p * total
    counts = np.floor(raw).astype(np.int64)
    rest = total - int(counts.sum())
    if rest > 0:  # largest remainders first, ties by position
        order = np.argsort(-(raw - counts), kind="stable")
        counts[order[:rest]] += 1
    return [int(c) for c in counts]


def draw(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    """``m`` indices into ``range(n)``: every index ``m // n`` times, the rest drawn without repeats."""
    if n <= 0 or m <= 0:
        return np.zeros(0, dtype=np.int64)
    full, rest = divmod(m, n)
    parts = [np.arange(n, dtype=np.int64)] * full + [rng.choice(n, size=rest, replace=False).astype(np.int64)]
    return np.concatenate(parts)


@dataclass
class DirectionGroups:
    """Where each direction's examples lie in the concatenated train split, and how an epoch draws them."""

    names: List[str]
    starts: List[int]
    sizes: List[int]
    counts: List[int]  # examples per epoch

    def epoch_pool(self, seed: int, epoch: int) -> np.ndarray:
        """The example indices of one epoch (a direction drawn more often than it has pairs repeats them)."""
        rng = np.random.default_rng([seed, epoch, 7919])  # its own stream: the batch order's stays as it was
        parts = [start + draw(rng, n, m) for start, n, m in zip(self.starts, self.sizes, self.counts)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def describe(self) -> str:
        return ", ".join(f"{name} {m}/{n}" for name, n, m in zip(self.names, self.sizes, self.counts))


def direction_groups(names: Sequence[str], sizes: Sequence[int], cfg: DataConfig) -> DirectionGroups:
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int).tolist() if len(sizes) else []
    counts = direction_counts(sizes, cfg.sampling, cfg.sampling_temperature)
    return DirectionGroups(names=list(names), starts=starts, sizes=list(sizes), counts=counts)


# ---------------------------------------------------------------------------- tokenizer text


def language_texts(train: Dict[Direction, "object"]) -> Dict[str, List[str]]:
    """Each language's distinct train sentences (first-seen order), from whichever side it is on."""
    out: Dict[str, Dict[str, None]] = {}
    for (src, tgt), ds in train.items():
        for column, lang in (("src", src), ("tgt", tgt)):
            seen = out.setdefault(lang, {})
            for batch in ds.select_columns([column]).iter(batch_size=10_000):  # type: ignore[attr-defined]
                for text in batch[column]:
                    seen.setdefault(text, None)
    return {lang: list(texts) for lang, texts in out.items()}


def balanced_sentences(texts: Dict[str, List[str]], cfg: TokenizerConfig, data: DataConfig) -> Iterator[str]:
    """Sentences for the joint tokenizer: each language's share set by the data.sampling rule over its
    number of distinct sentences (so languages count alike on equal data, and a small one is upsampled
    under a temperature > 1), at most tokenizer.input_sentence_size in all (0 = as many as there are)."""
    names = sorted(texts)
    sizes = [len(texts[k]) for k in names]
    total = sum(sizes)
    if cfg.input_sentence_size > 0:
        total = min(total, cfg.input_sentence_size)
    counts = direction_counts(sizes, data.sampling, data.sampling_temperature, total)
    rng = np.random.default_rng([cfg.seed, 104729])
    log.info("tokenizer text per language: %s", ", ".join(f"{k} {m} of {n}" for k, n, m in zip(names, sizes, counts)))
    for lang, n, m in zip(names, sizes, counts):
        for i in draw(rng, n, m):
            yield texts[lang][int(i)]


def tokenizer_key(content_hashes: Dict[str, str], tags: Sequence[str], data: DataConfig) -> str:
    """What the tokenizer's cache key adds for a multilingual run: its directions' text, tags and sampling."""
    payload = {"format": SAMPLE_FORMAT, "tags": list(tags), "text": content_hashes,
               "sampling": str(data.sampling), "temperature": float(data.sampling_temperature)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()
