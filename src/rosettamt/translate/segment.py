"""Lines as the source id sequences the search reads: a line longer than the model allows is split
on sentence boundaries (and, if one sentence is still too long, at word boundaries), with a one-line
warning instead of a crash.

A multilingual model's sources start with the target tag's id (``prefix``): every segment of a
split line gets it, and it counts toward the length limit.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, List, Sequence, Tuple

from rosettamt.text import split_sentences

if TYPE_CHECKING:
    from rosettamt.data.tokenizer import Tokenizer

log = logging.getLogger("rosettamt.translate")  # the name the Translator's warnings always had


def segment(tokenizer: "Tokenizer", texts: List[str], limit: int,
            prefix: Sequence[int] = ()) -> Tuple[List[List[int]], List[Tuple[int, int]]]:
    """Source ids to search (``prefix`` + pieces, no EOS), and for each text the [start, stop) of its
    segments. An empty text has no segments; a text longer than ``limit`` ids becomes several."""
    prefix = list(prefix)
    room = max(limit - len(prefix), 1)  # pieces a segment may hold besides its tag
    nonempty = [t for t in texts if t]
    encoded = iter(tokenizer.encode_src(nonempty) if nonempty else [])
    segments: List[List[int]] = []
    spans: List[Tuple[int, int]] = []
    for text in texts:
        start = len(segments)
        if text:
            ids = next(encoded)
            if len(ids) <= room:
                segments.append(prefix + ids)
            else:
                parts = split_long(tokenizer, text, room)
                log.warning(
                    "line %r: %d subword tokens, more than the model allows (%d): "
                    "translated as %d segments", text[:30] + "...", len(ids) + len(prefix), limit, len(parts),
                )
                segments.extend(prefix + part for part in parts)
        spans.append((start, len(segments)))
    return segments, spans


def split_long(tokenizer: "Tokenizer", text: str, limit: int) -> List[List[int]]:
    """Ids of sentence-sized segments of at most ``limit`` pieces each."""
    sentences = split_sentences(text)
    out: List[List[int]] = []
    for sent, ids in zip(sentences, tokenizer.encode_src(sentences)):
        if len(ids) <= limit:
            out.append(ids)
            continue
        pieces = tokenizer.src_pieces(sent)
        word_start = [p.startswith("▁") for p in pieces] if len(pieces) == len(ids) else None
        start = 0
        while start < len(ids):
            stop = min(start + limit, len(ids))
            if word_start is not None and stop < len(ids):
                # back off to the last word start inside the window, if there is one
                cut = next((i for i in range(stop, start, -1) if word_start[i]), stop)
                stop = cut
            out.append(ids[start:stop])
            start = stop
    return [ids for ids in out if ids]
