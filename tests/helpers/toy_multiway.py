"""A multi-way parallel toy corpus (en, de, fr) for multilingual training tests, Multi30k-style files.

Every split has ``{split}.en``, ``{split}.de`` and ``{split}.fr``, line-aligned: the same toy
sentence in each language, so any direction among them is a pair of files
(``data.files.train=[DIR/train.{src},DIR/train.{tgt}]``). The languages are those of
helpers.toy_multilingual: "en" is helpers.toy's source language; "de" maps each word to its
reversal + "x", "fr" to its upper-cased form + "q", both in reversed word order. Each language
has its own words, so ``helpers.toy_multilingual.looks_like(text, lang)`` tells which one a
translation is in, and only the target tag can tell an en source which one to produce.
(The same languages as helpers.toy_multilingual's checkpoint, kept here so either stands alone.)
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Dict, List, Sequence

from helpers.toy import LEXICON, SRC_WORDS
from helpers.train_toy import toy_run

__all__ = ["LANGS", "looks_like", "multiway_overrides", "sentence", "write_multiway_corpus"]

LANGS = ("en", "de", "fr")
FR = {w: f"{w.upper()}q" for w in SRC_WORDS}


def toy_target(words: List[str], lang: str) -> str:
    """``words`` in toy "de" (reversed + x) or toy "fr" (upper-cased + q), in reversed order."""
    table = LEXICON if lang == "de" else FR
    return " ".join(table[w] for w in reversed(words)) + " ."


def looks_like(text: str, lang: str) -> float:
    """Share of a translation's words that belong to the toy ``lang`` ("de": ...x, "fr": ...q)."""
    words = [w for w in text.split() if w != "."]
    vocab = set(LEXICON.values()) if lang == "de" else set(FR.values())
    return sum(w in vocab for w in words) / max(len(words), 1)


def sentence(words: List[str], lang: str) -> str:
    """The toy sentence of ``words`` in ``lang``."""
    if lang == "en":
        return " ".join(words).capitalize() + "."
    return toy_target(words, lang)


def write_multiway_corpus(root: Path, sizes: Dict[str, int] | None = None, langs: Sequence[str] = LANGS,
                          seed: int = 0) -> Path:
    """Write ``{split}.{lang}`` for every split and language into ``root``; returns ``root``."""
    sizes = sizes or {"train": 2000, "val": 60, "test": 60}
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in sizes.items():
        rows = [[rng.choice(SRC_WORDS) for _ in range(rng.randint(2, 7))] for _ in range(n)]
        for lang in langs:
            (root / f"{split}.{lang}").write_text("".join(sentence(w, lang) + "\n" for w in rows), encoding="utf-8")
    return root


def multiway_overrides(root: Path, cache_dir: Path, *extra: str) -> List[str]:
    """rosettamt-train overrides for a fast multilingual toy run on :func:`write_multiway_corpus`'s files
    (directions come from ``extra``: data.langs=[...] or data.pairs=[...])."""
    return [
        "data=files",
        *(f"data.files.{split}=['{root}/{split}.{{src}}','{root}/{split}.{{tgt}}']"  # quoted: { } in a value
          for split in ("train", "val", "test")),
        "data.src_lang=en",
        "data.tgt_lang=de",
        *toy_run(cache_dir, 200, *extra),
    ]
