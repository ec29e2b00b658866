"""Translation directions and target-language tags for multilingual models.

A bilingual model (neither ``data.langs`` nor ``data.pairs`` set) knows one direction and has
no tags. A multilingual model knows a list of directions; every source it reads starts with
the tag of the language to translate into (``<2de>``), one SentencePiece piece of its own.
This module is the one place that spells tags and checks directions; it imports nothing
heavier than the error type, so the data side, the trainer and every inference front share it.
"""

from __future__ import annotations

import re
from typing import Iterable, List, Optional, Sequence, Tuple

from rosettamt.errors import UserError

Direction = Tuple[str, str]

_LANG = re.compile(r"^[a-z]{2,3}(?:[_-][A-Za-z0-9]{2,8})?$")


def tag(lang: str) -> str:
    """The piece a source starts with to ask for ``lang``: ``<2de>``."""
    return f"<2{lang}>"


def check_lang(lang: object, option: str) -> str:
    """``lang`` as a language code (``de``, ``pt_BR``), or a one-line error naming ``option``."""
    if not isinstance(lang, str) or not _LANG.match(lang):
        raise UserError(f"{option}: {lang!r} is not a language code (like en, de, pt_BR)")
    return lang


def parse_pair(text: object, option: str = "data.pairs") -> Direction:
    """``"en-de"`` -> ``("en", "de")``; a one-line error naming ``option`` otherwise."""
    parts = text.split("-") if isinstance(text, str) else []
    if len(parts) != 2:
        raise UserError(f"{option}: {text!r} is not a direction written src-tgt (like en-de)")
    src, tgt = (check_lang(p.strip(), option) for p in parts)
    if src == tgt:
        raise UserError(f"{option}: {text!r} translates a language into itself")
    return src, tgt


def directions(langs: Optional[Sequence[str]], pairs: Optional[Sequence[str]]) -> Optional[List[Direction]]:
    """The directions ``data.langs`` / ``data.pairs`` ask for, or None for a bilingual setup.

    ``langs`` means every ordered pair among them; ``pairs`` lists directions one by one.
    Setting both, fewer than two languages, or a repeated direction is an error.
    """
    if langs and pairs:
        raise UserError("set data.langs or data.pairs, not both")
    if langs:
        seen = [check_lang(lang, "data.langs") for lang in langs]
        if len(set(seen)) != len(seen):
            raise UserError(f"data.langs repeats a language: {list(langs)}")
        if len(seen) < 2:
            raise UserError(f"data.langs needs at least two languages, got {list(langs)}")
        return [(s, t) for s in seen for t in seen if s != t]
    if pairs:
        found = [parse_pair(p) for p in pairs]
        if len(set(found)) != len(found):
            raise UserError(f"data.pairs repeats a direction: {list(pairs)}")
        return found
    return None


def pair_name(direction: Direction) -> str:
    """``("en", "de")`` -> ``"en-de"``, the key of per-direction results."""
    return f"{direction[0]}-{direction[1]}"


def languages(dirs: Iterable[Direction]) -> List[str]:
    """Every language that appears in ``dirs``, in first-seen order."""
    out: List[str] = []
    for pair in dirs:
        for lang in pair:
            if lang not in out:
                out.append(lang)
    return out


def target_tags(dirs: Iterable[Direction]) -> List[str]:
    """The tags a multilingual tokenizer must keep whole: one per target language, sorted."""
    return sorted({tag(tgt) for _, tgt in dirs})


def pick_direction(
    dirs: Sequence[Direction],
    src_lang: Optional[str],
    tgt_lang: Optional[str],
    default: Optional[Direction] = None,
) -> Direction:
    """The direction to translate in, checked against what the model was trained on.

    ``tgt_lang`` picks the tag; ``src_lang`` (optional) is checked when given. With neither,
    ``default`` is used when the model knows it; otherwise the error lists what it knows.
    """
    known = ", ".join(pair_name(d) for d in dirs)
    if tgt_lang is None and src_lang is None:
        if default is not None and tuple(default) in dirs:
            return tuple(default)  # type: ignore[return-value]
        raise UserError(f"this model translates several directions ({known}); choose one with tgt_lang=")
    if tgt_lang is None:
        targets = sorted({t for s, t in dirs if s == src_lang})
        if default is not None and tuple(default) in dirs and default[0] == src_lang:
            return tuple(default)  # type: ignore[return-value]
        if len(targets) == 1:
            return (src_lang, targets[0])  # type: ignore[return-value]
        raise UserError(f"src_lang={src_lang} needs tgt_lang= for this model (it knows {known})")
    if src_lang is not None:
        if (src_lang, tgt_lang) not in dirs:
            raise UserError(f"this model was not trained to translate {src_lang}-{tgt_lang} (it knows {known})")
        return (src_lang, tgt_lang)
    sources = [s for s, t in dirs if t == tgt_lang]
    if not sources:
        raise UserError(f"this model does not translate into {tgt_lang!r} (it knows {known})")
    src = default[0] if default is not None and (default[0], tgt_lang) in dirs else sources[0]
    return (src, tgt_lang)
