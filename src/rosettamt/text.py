"""Text as people type or pipe it, made safe for the tokenizer: cleaning and sentence splitting.

Torch-free on purpose: the translate command looks at its input (and skips blank lines)
before it loads a model.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, List

# A sentence ends at . ! ? ; … followed by a space, or right after a CJK full stop.
_SENTENCE_END = re.compile(r"(?<=[.!?;…])\s+|(?<=[。！？])\s*")
# Removed from input: control (Cc), format (Cf: zero-width and bidi controls) and lone
# surrogates (Cs, which cannot even be encoded as UTF-8); but the zero-width (non-)joiners
# are spelling in Persian, Indic scripts and emoji sequences.
_DROP = frozenset({"Cc", "Cf", "Cs"})
_KEEP = frozenset({"\u200c", "\u200d"})


def clean_text(text: str) -> str:
    """Make any string safe for the tokenizer: drop control/format chars, collapse whitespace."""
    if not text or text.isspace():
        return ""
    out = []
    for ch in text:
        if ch.isspace():
            out.append(" ")
        elif ch in _KEEP or unicodedata.category(ch) not in _DROP:
            out.append(ch)
    return " ".join("".join(out).split())


def split_sentences(text: str) -> List[str]:
    """Split a (cleaned) line into sentences; together they hold all of the line's text."""
    return [s for s in (p.strip() for p in _SENTENCE_END.split(text)) if s]


def check_texts(items: Any) -> List[str]:
    """``items`` as a list of strings, or a TypeError naming the first item that is not one (its index
    and type): a number, bytes or None is a caller's mistake, not an empty line to translate."""
    if isinstance(items, (bytes, bytearray)) or not hasattr(items, "__iter__"):
        raise TypeError(f"expected a string or a sequence of strings, got {type(items).__name__}")
    texts = list(items)
    for i, item in enumerate(texts):
        if not isinstance(item, str):
            raise TypeError(f"item {i} is {type(item).__name__}, not str: translate takes strings "
                            "(decode bytes first; None is not an empty line)")
    return texts
