"""The directions a loaded model translates, and the target tag that asks for each.

A bilingual checkpoint (its stored ``data`` has neither ``langs`` nor ``pairs``) knows one
direction, ``data.src_lang -> data.tgt_lang``, and reads sources as they are. A multilingual one
knows ``langs.directions(data.langs, data.pairs)``; every source it reads starts with the id of
the target language's tag (``<2fr>``), prepended here at the id level: text a user types is never
searched for tags, so typing ``<2fr>`` does not switch the language. The default direction
(what a call without ``tgt_lang`` gets) is ``data.src_lang -> data.tgt_lang`` when the model
knows it. The stored config is someone else's file: whatever is wrong with it is a UserError.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

from rosettamt import langs
from rosettamt.errors import UserError

Direction = Tuple[str, str]


def _code(value: Any) -> Optional[str]:
    """A stored language code if it is a sane one (it may reach a screen or an API), else None."""
    return value if isinstance(value, str) and value.isprintable() and 0 < len(value) <= 32 else None


class Directions:
    """What a model knows: its directions, its default one, and (multilingual) each tag's id."""

    def __init__(self, directions: Optional[Sequence[Direction]], default: Direction,
                 tag_ids: Optional[Dict[str, int]] = None) -> None:
        self.multilingual = directions is not None
        self.all: List[Direction] = [tuple(d) for d in directions] if directions is not None else [tuple(default)]
        self.default: Direction = tuple(default)  # type: ignore[assignment]
        self.tag_ids: Dict[str, int] = dict(tag_ids or {})  # target language -> id of its tag piece

    @classmethod
    def bilingual(cls, src_lang: Optional[str], tgt_lang: Optional[str]) -> "Directions":
        return cls(None, (src_lang or "src", tgt_lang or "tgt"))

    @classmethod
    def from_stored(cls, config: Any, src_model: bytes, where: str, fallback: Direction = ("src", "tgt"),
                    baked: Any = None) -> "Directions":
        """From a checkpoint's (or an export's) stored run config and its source SentencePiece model.

        ``baked`` is an export's one direction whose tag the exported model adds itself (an Argos
        package): it then behaves as a bilingual model of that direction.
        """
        data = config.get("data") if isinstance(config, dict) else None
        data = data if isinstance(data, dict) else {}
        default = (_code(data.get("src_lang")) or fallback[0], _code(data.get("tgt_lang")) or fallback[1])
        if baked is not None:
            return cls.bilingual(*langs.parse_pair(baked, f"{where}: direction"))
        raw_langs, raw_pairs = data.get("langs"), data.get("pairs")
        for name, value in (("langs", raw_langs), ("pairs", raw_pairs)):
            if value is not None and not (isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)):
                raise UserError(f"{where}: the stored data.{name} is not a list of strings")
        try:
            dirs = langs.directions(raw_langs, raw_pairs)
        except UserError as err:
            raise UserError(f"{where}: stored {err}") from None
        if dirs is None:
            return cls(None, default)
        if default not in dirs:  # as the trainer does: the first direction is then the default
            default = dirs[0]
        return cls(dirs, default, tag_ids(src_model, dirs, where))

    @property
    def languages(self) -> List[str]:
        return langs.languages(self.all)

    def pick(self, src_lang: Optional[str] = None, tgt_lang: Optional[str] = None) -> Direction:
        """The direction to translate in: the default without arguments; a direction the model was
        not trained on is a one-line UserError (for a bilingual model: anything but its one pair)."""
        for name, value in (("src_lang", src_lang), ("tgt_lang", tgt_lang)):
            if value is not None and not isinstance(value, str):
                raise UserError(f"{name}={value!r} is not a language code")
        if not self.multilingual:
            src, tgt = self.default
            if (src_lang is not None and src_lang != src) or (tgt_lang is not None and tgt_lang != tgt):
                asked = f"{src_lang or src}-{tgt_lang or tgt}"
                raise UserError(f"this model translates only {src}-{tgt}, not {asked} "
                                "(src_lang= / tgt_lang= must match it or be left out)")
            return self.default
        return langs.pick_direction(self.all, src_lang, tgt_lang, self.default)

    def prefix(self, direction: Direction) -> List[int]:
        """The ids every source of ``direction`` starts with: [] (bilingual) or [the target tag's id]."""
        return [self.tag_ids[direction[1]]] if self.multilingual else []

    def prefix_pieces(self, direction: Direction) -> List[str]:
        """The same as pieces, for attention labels: [] or ["<2fr>"] (the tag is shown, never hidden)."""
        return [langs.tag(direction[1])] if self.multilingual else []


def tag_ids(src_model: bytes, dirs: Sequence[Direction], where: str) -> Dict[str, int]:
    """Target language -> id of its tag in the source SentencePiece model, which must hold each tag as
    one piece (a tokenizer trained without them cannot ask for a language)."""
    import sentencepiece as spm

    proc = spm.SentencePieceProcessor(model_proto=src_model)
    out: Dict[str, int] = {}
    for _, tgt in dirs:
        piece = langs.tag(tgt)
        index = proc.piece_to_id(piece)
        if proc.id_to_piece(index) != piece:
            raise UserError(f"{where}: the tokenizer has no piece {piece} for the target language {tgt}; "
                            "a multilingual model needs one piece per target tag")
        out[tgt] = index
    return out
