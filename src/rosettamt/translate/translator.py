"""Translator: text in, text out, for people and for Python code; the one inference path.

It loads a checkpoint once and wraps the model, the tokenizer and the search with everything
a sentence typed or piped by a person needs: control characters and odd whitespace are
cleaned away (rosettamt.text), an empty line gives an empty translation, and a line longer
than the model's positions is split into segments with a one-line warning (segment.py).
n-best lists come from nbest.py; :meth:`Translator.attention` re-runs the decoder on its own
output to return the cross-attention weights for plots (attention.py, viz.py).

A multilingual model translates in several directions (:attr:`Translator.directions`):
``tgt_lang=`` (and ``src_lang=``) pick one, and its target tag id starts every source segment
(directions.py). A bilingual model takes them only when they name its one direction.

The command line (interactive prompt and pipe mode) lives in rosettamt.prompt.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from rosettamt.config import DecodeConfig, Strategy, resolve_decode
from rosettamt.device import resolve_device
from rosettamt.errors import UserError
from rosettamt.langid import LangId, read_langid, stored_langid
from rosettamt.text import check_texts, clean_text, split_sentences
from rosettamt.translate.attention import check_attention_layer, cross_attention, token_labels
from rosettamt.translate.directions import Direction, Directions
from rosettamt.translate.nbest import AttendedCandidate, Candidate, join_nbest
from rosettamt.translate.segment import segment

if TYPE_CHECKING:
    from rosettamt.data.tokenizer import Tokenizer
    from rosettamt.engine import Engine

log = logging.getLogger("rosettamt.translate")  # the name log lines carried before the split


class Translator:
    """A loaded model + tokenizer + decoding settings; ``translate`` maps sentences to sentences."""

    langid: Optional[LangId] = None  # the stored language profiles (/detect, source=auto), if any

    def __init__(
        self,
        model: Optional[torch.nn.Module],
        tokenizer: "Tokenizer",
        decode: Optional[DecodeConfig] = None,
        device: Union[str, torch.device] = "cpu",
        checkpoint_path: Optional[Path] = None,
        checkpoint_info: Optional[Dict[str, Any]] = None,
        engine: Optional["Engine"] = None,
        directions: Optional[Directions] = None,
    ) -> None:
        """``engine`` searches (rosettamt.engine); by default rosettamt's own search on ``model``.
        An engine without a model (backend=ctranslate2) translates but has no attention to show.
        ``directions``: what a multilingual model knows; by default the one pair of checkpoint_info."""
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval() if model is not None else None
        if engine is None:
            from rosettamt.engine.native import NativeEngine

            engine = NativeEngine(self.model, self.device)
        self.engine = engine
        self.tokenizer = tokenizer
        self.decode = decode or DecodeConfig()
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        # src_lang, tgt_lang, step, val_bleu of the checkpoint, where known (for banners)
        self.checkpoint_info: Dict[str, Any] = dict(checkpoint_info or {})
        self.dirs = directions or Directions.bilingual(
            self.checkpoint_info.get("src_lang") or getattr(tokenizer, "src_lang", None),
            self.checkpoint_info.get("tgt_lang") or getattr(tokenizer, "tgt_lang", None))

    @classmethod
    def from_checkpoint(
        cls,
        path: Union[str, Path],
        device: Union[str, torch.device] = "auto",
        decode: Optional[DecodeConfig] = None,
    ) -> "Translator":
        """Load a checkpoint file (or the best checkpoint of a run directory) once."""
        from rosettamt.checkpoint import load_for_inference, resolve_checkpoint
        from rosettamt.checkpoint.model_state import stored_info

        path = Path(path).expanduser()
        path = resolve_checkpoint(run_dir=path) if path.is_dir() else resolve_checkpoint(checkpoint=path)
        dev = resolve_device(device)
        model, tok, ckpt = load_for_inference(path, dev, (decode or DecodeConfig()).precision)
        info = stored_info(ckpt)  # only sane values: the file may come from anywhere
        dirs = Directions.from_stored(ckpt.get("config"), tok.state_dict()["src_model"], f"checkpoint {path}",
                                      (tok.src_lang, tok.tgt_lang))
        translator = cls(model, tok, decode=decode, device=dev, checkpoint_path=path, checkpoint_info=info,
                         directions=dirs)
        translator.langid = stored_langid(ckpt.get("langid"), f"checkpoint {path}", log)
        return translator

    @classmethod
    def from_export(cls, folder: Union[str, Path], device: str = "auto", decode: Optional[DecodeConfig] = None,
                    compute_type: str = "default", threads: int = 0) -> "Translator":
        """A CTranslate2 export (rosettamt-export format=ctranslate2) searched by CTranslate2, behind the
        same cleaning, segmenting and detokenizing as a checkpoint."""
        from rosettamt.engine.ct2 import CT2Engine

        engine, tok, meta = CT2Engine.load(Path(folder), device, compute_type, threads)
        info = {k: meta.get(k) for k in ("src_lang", "tgt_lang", "step", "val_bleu")}
        dirs = Directions.from_stored(meta.get("config"), tok.state_dict()["src_model"], f"model_dir={folder}",
                                      (tok.src_lang, tok.tgt_lang), meta.get("direction"))
        translator = cls(None, tok, decode=decode, device="cpu", checkpoint_path=Path(folder),
                         checkpoint_info=info, engine=engine, directions=dirs)
        translator.langid = read_langid(Path(folder), log)
        return translator

    # ------------------------------------------------------------------ settings

    @property
    def directions(self) -> List[Direction]:
        """Every (src_lang, tgt_lang) the model translates; one pair for a bilingual model."""
        return list(self.dirs.all)

    @property
    def multilingual(self) -> bool:
        return self.dirs.multilingual

    def pick_direction(self, src_lang: Optional[str] = None, tgt_lang: Optional[str] = None) -> Direction:
        """The direction a call with these arguments translates in, or a one-line UserError."""
        return self.dirs.pick(src_lang, tgt_lang)

    @property
    def n_decoder_layers(self) -> int:
        return int(self.engine.cfg.decoder_layers)

    @property
    def n_heads(self) -> int:
        return int(self.engine.cfg.n_heads)

    def decode_config(
        self,
        beam_size: Optional[int] = None,
        nbest: int = 1,
        strategy: Optional[Union[str, Strategy]] = None,
        **overrides: object,
    ) -> DecodeConfig:
        """This translator's DecodeConfig with per-call changes (see :func:`rosettamt.config.resolve_decode`),
        checked against this model too (a min_len it cannot generate is refused)."""
        from rosettamt.search.translate_ids import check_lengths

        cfg = resolve_decode(self.decode, beam_size, nbest, strategy, **overrides)
        check_lengths(cfg, int(self.engine.cfg.max_positions), prefix="")
        return cfg

    def max_source_pieces(self, cfg: Optional[DecodeConfig] = None) -> int:
        """Longest source (in subword pieces) whose source and output both fit max_positions.

        The source takes pieces + EOS positions; the search may generate up to
        a * len + b tokens after BOS, which must fit as well.
        """
        cfg = cfg or self.decode
        positions = int(self.engine.cfg.max_positions)
        limit = positions - 1
        if cfg.max_len_a > 0:
            limit = min(limit, math.floor((positions - 2 - cfg.max_len_b) / cfg.max_len_a) - 1)
        return max(limit, 1)

    # ------------------------------------------------------------------ translation

    def translate(
        self,
        sentences: Union[str, Sequence[str]],
        beam_size: Optional[int] = None,
        nbest: int = 1,
        strategy: Optional[Union[str, Strategy]] = None,
        progress: bool = False,
        tgt_lang: Optional[str] = None,
        src_lang: Optional[str] = None,
        **decode_overrides: object,
    ) -> Union[List[str], List[List[Candidate]]]:
        """Translate sentences; one result per input, in input order.

        A single string counts as a list of one. With nbest == 1 the result is a list of
        strings; with nbest > 1 a list of n-best lists of ``Candidate(text, score)``, best
        first. Other keyword arguments override DecodeConfig fields (length_penalty, ...).
        An item that is not a string (a number, bytes, None) is a TypeError naming its index.
        ``tgt_lang`` / ``src_lang`` choose the direction (see :meth:`pick_direction`).
        """
        lines = self.translate_nbest(sentences, beam_size, nbest, strategy, progress, tgt_lang, src_lang,
                                     **decode_overrides)
        return [cands[0].text for cands in lines] if nbest == 1 else lines

    def translate_nbest(
        self,
        sentences: Union[str, Sequence[str]],
        beam_size: Optional[int] = None,
        nbest: int = 1,
        strategy: Optional[Union[str, Strategy]] = None,
        progress: bool = False,
        tgt_lang: Optional[str] = None,
        src_lang: Optional[str] = None,
        **decode_overrides: object,
    ) -> List[List[Candidate]]:
        """:meth:`translate` as n-best lists of ``Candidate(text, score)`` whatever ``nbest`` is (a
        list of one with nbest == 1): for callers that show the score of the 1-best too (the server)."""
        if isinstance(sentences, str):
            sentences = [sentences]
        sentences = check_texts(sentences)
        prefix = self.dirs.prefix(self.pick_direction(src_lang, tgt_lang))
        cfg = self.decode_config(beam_size, nbest, strategy, **decode_overrides)
        texts = [clean_text(s) for s in sentences]
        segments, spans = segment(self.tokenizer, texts, self.max_source_pieces(cfg), prefix)
        hyps = self._search(segments, cfg, progress) if segments else []
        detokenize = self.tokenizer.detokenize
        return [join_nbest(hyps[start:stop], nbest, detokenize) for start, stop in spans]

    def __call__(self, sentence: str, **kwargs: object) -> str:
        """Translate one sentence to one string."""
        return self.translate([sentence], **kwargs)[0]  # type: ignore[return-value]

    def _search(self, segments: List[List[int]], cfg: DecodeConfig, progress: bool = False) -> list:
        return self.engine.search(segments, cfg, progress=progress)

    def _attention_model(self) -> torch.nn.Module:
        """The model the cross-attention is read from; an engine without one cannot show attention."""
        if self.model is None:
            raise UserError("attention needs rosettamt's own model (backend=rosettamt with a checkpoint); "
                            "a CTranslate2 export has no attention weights to show")
        return self.model

    # ------------------------------------------------------------------ attention

    def attention(
        self, sentence: str, layer: int = -1, **decode_kwargs: object
    ) -> Tuple[List[str], List[str], np.ndarray]:
        """Translate one sentence and return where the decoder looked.

        Returns (src_tokens, tgt_tokens, weights): the source subword pieces + "</s>",
        the generated target pieces + "</s>", and the cross-attention of decoder layer
        ``layer`` as an array (H, T_tgt, T_src). Row t is the attention while the decoder
        produced target token t; each row sums to 1 over the source. A multilingual model's
        target tag is a source position like any other: it is shown, first (``<2fr>``).
        ``tgt_lang=`` / ``src_lang=`` choose the direction, as in :meth:`translate`.
        """
        _, src_tokens, tgt_tokens, weights = self.translate_with_attention(sentence, layer, **decode_kwargs)
        return src_tokens, tgt_tokens, weights

    def translate_with_attention(
        self, sentence: str, layer: int = -1, tgt_lang: Optional[str] = None, src_lang: Optional[str] = None,
        **decode_kwargs: object
    ) -> Tuple[str, List[str], List[str], np.ndarray]:
        """Like :meth:`attention`, also returning the translation (the tgt tokens detokenized)."""
        check_attention_layer(layer, self.n_decoder_layers)
        direction = self.pick_direction(src_lang, tgt_lang)
        cfg = dataclasses.replace(self.decode_config(**decode_kwargs), nbest=1)  # type: ignore[arg-type]
        ids, src_tokens = self._first_segment(sentence, cfg, direction)
        tokens = list(self._search([ids], cfg)[0][0].tokens)
        weights = cross_attention(self._attention_model(), ids, tokens, layer, self.device)
        tgt_pieces = self.tokenizer.tgt_pieces(tokens) if tokens else []
        return self.tokenizer.detokenize(tokens), src_tokens, token_labels(tgt_pieces, tokens), weights

    def nbest_with_attention(self, sentence: str, nbest: int = 1, tgt_lang: Optional[str] = None,
                             src_lang: Optional[str] = None, **decode_kwargs: object) -> List[AttendedCandidate]:
        """The n best translations of one line, each with every decoder layer's cross-attention behind it
        (weights (L, H, T_tgt, T_src)): what the server's page draws for the alternative a reader picks.
        Texts and scores are those of :meth:`translate`; an empty line gives one empty candidate."""
        direction = self.pick_direction(src_lang, tgt_lang)
        cfg = self.decode_config(nbest=nbest, **decode_kwargs)  # type: ignore[arg-type]
        ids, src_tokens = self._first_segment(sentence, cfg, direction)
        if not ids:
            return [AttendedCandidate("", 0.0, token_labels([], []), token_labels([], []),
                                      cross_attention(self._attention_model(), [], [], None, self.device))]
        out = []
        for hyp in self._search([ids], cfg)[0][:nbest]:
            tokens = list(hyp.tokens)
            tgt_tokens = token_labels(self.tokenizer.tgt_pieces(tokens) if tokens else [], tokens)
            weights = cross_attention(self._attention_model(), ids, tokens, None, self.device)
            out.append(AttendedCandidate(self.tokenizer.detokenize(tokens).strip(), float(hyp.score),
                                         src_tokens, tgt_tokens, weights))
        return out

    def _first_segment(self, sentence: str, cfg: DecodeConfig, direction: Direction) -> Tuple[List[int], List[str]]:
        """Source ids of a line's first segment (the tag first, for a multilingual model) and their
        labels + "</s>": attention shows one segment."""
        text = clean_text(sentence)
        prefix = self.dirs.prefix(direction)
        segments, _ = segment(self.tokenizer, [text], self.max_source_pieces(cfg), prefix)
        if len(segments) > 1:  # the first segment is (a prefix of) the first sentence
            log.warning("attention: only the first of %d segments of this line is shown", len(segments))
            text = split_sentences(text)[0]
        ids = segments[0] if segments else []
        pieces = self.tokenizer.src_pieces(text)[: len(ids) - len(prefix)] if ids else []
        return ids, token_labels(self.dirs.prefix_pieces(direction) + pieces if ids else [], ids)
