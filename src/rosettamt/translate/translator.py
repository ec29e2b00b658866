"""Translator: text in, text out, for people and for Python code; the one inference path.

It loads a checkpoint once and wraps the model, the tokenizer and the search with everything
a sentence typed or piped by a person needs: control characters and odd whitespace are
cleaned away (rosettamt.text), an empty line gives an empty translation, and a line longer
than the model's positions is split on sentence boundaries (and, if one sentence is still too
long, at word boundaries) with a one-line warning instead of a crash. n-best lists come from
nbest.py; :meth:`Translator.attention` re-runs the decoder on its own output to return the
cross-attention weights for plots (attention.py, viz.py).

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
from rosettamt.text import check_texts, clean_text, split_sentences
from rosettamt.translate.attention import check_attention_layer, cross_attention, token_labels
from rosettamt.translate.nbest import AttendedCandidate, Candidate, join_nbest

if TYPE_CHECKING:
    from rosettamt.data.tokenizer import Tokenizer
    from rosettamt.engine import Engine

log = logging.getLogger("rosettamt.translate")  # the name log lines carried before the split


class Translator:
    """A loaded model + tokenizer + decoding settings; ``translate`` maps sentences to sentences."""

    def __init__(
        self,
        model: Optional[torch.nn.Module],
        tokenizer: "Tokenizer",
        decode: Optional[DecodeConfig] = None,
        device: Union[str, torch.device] = "cpu",
        checkpoint_path: Optional[Path] = None,
        checkpoint_info: Optional[Dict[str, Any]] = None,
        engine: Optional["Engine"] = None,
    ) -> None:
        """``engine`` searches (rosettamt.engine); by default rosettamt's own search on ``model``.
        An engine without a model (backend=ctranslate2) translates but has no attention to show."""
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
        return cls(model, tok, decode=decode, device=dev, checkpoint_path=path, checkpoint_info=info)

    @classmethod
    def from_export(cls, folder: Union[str, Path], device: str = "auto", decode: Optional[DecodeConfig] = None,
                    compute_type: str = "default", threads: int = 0) -> "Translator":
        """A CTranslate2 export (rosettamt-export format=ctranslate2) searched by CTranslate2, behind the
        same cleaning, segmenting and detokenizing as a checkpoint."""
        from rosettamt.engine.ct2 import CT2Engine

        engine, tok, meta = CT2Engine.load(Path(folder), device, compute_type, threads)
        info = {k: meta.get(k) for k in ("src_lang", "tgt_lang", "step", "val_bleu")}
        return cls(None, tok, decode=decode, device="cpu", checkpoint_path=Path(folder), checkpoint_info=info,
                   engine=engine)

    # ------------------------------------------------------------------ settings

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
        **decode_overrides: object,
    ) -> Union[List[str], List[List[Candidate]]]:
        """Translate sentences; one result per input, in input order.

        A single string counts as a list of one. With nbest == 1 the result is a list of
        strings; with nbest > 1 a list of n-best lists of ``Candidate(text, score)``, best
        first. Other keyword arguments override DecodeConfig fields (length_penalty, ...).
        An item that is not a string (a number, bytes, None) is a TypeError naming its index.
        """
        lines = self.translate_nbest(sentences, beam_size, nbest, strategy, progress, **decode_overrides)
        return [cands[0].text for cands in lines] if nbest == 1 else lines

    def translate_nbest(
        self,
        sentences: Union[str, Sequence[str]],
        beam_size: Optional[int] = None,
        nbest: int = 1,
        strategy: Optional[Union[str, Strategy]] = None,
        progress: bool = False,
        **decode_overrides: object,
    ) -> List[List[Candidate]]:
        """:meth:`translate` as n-best lists of ``Candidate(text, score)`` whatever ``nbest`` is (a
        list of one with nbest == 1): for callers that show the score of the 1-best too (the server)."""
        if isinstance(sentences, str):
            sentences = [sentences]
        sentences = check_texts(sentences)
        cfg = self.decode_config(beam_size, nbest, strategy, **decode_overrides)
        texts = [clean_text(s) for s in sentences]
        segments, spans = self._segment(texts, cfg)
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

    def _segment(self, texts: List[str], cfg: DecodeConfig) -> Tuple[List[List[int]], List[Tuple[int, int]]]:
        """Source ids to search (no EOS), and for each text the [start, stop) of its segments.

        An empty text has no segments; a text longer than the model allows becomes several.
        """
        limit = self.max_source_pieces(cfg)
        nonempty = [t for t in texts if t]
        encoded = iter(self.tokenizer.encode_src(nonempty) if nonempty else [])
        segments: List[List[int]] = []
        spans: List[Tuple[int, int]] = []
        for text in texts:
            start = len(segments)
            if text:
                ids = next(encoded)
                if len(ids) <= limit:
                    segments.append(ids)
                else:
                    parts = self._split_long(text, limit)
                    log.warning(
                        "line %r: %d subword tokens, more than the model allows (%d): "
                        "translated as %d segments", text[:30] + "...", len(ids), limit, len(parts),
                    )
                    segments.extend(parts)
            spans.append((start, len(segments)))
        return segments, spans

    def _split_long(self, text: str, limit: int) -> List[List[int]]:
        """Ids of sentence-sized segments of at most ``limit`` pieces each."""
        sentences = split_sentences(text)
        out: List[List[int]] = []
        for sent, ids in zip(sentences, self.tokenizer.encode_src(sentences)):
            if len(ids) <= limit:
                out.append(ids)
                continue
            pieces = self.tokenizer.src_pieces(sent)
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

    # ------------------------------------------------------------------ attention

    def attention(
        self, sentence: str, layer: int = -1, **decode_kwargs: object
    ) -> Tuple[List[str], List[str], np.ndarray]:
        """Translate one sentence and return where the decoder looked.

        Returns (src_tokens, tgt_tokens, weights): the source subword pieces + "</s>",
        the generated target pieces + "</s>", and the cross-attention of decoder layer
        ``layer`` as an array (H, T_tgt, T_src). Row t is the attention while the decoder
        produced target token t; each row sums to 1 over the source.
        """
        _, src_tokens, tgt_tokens, weights = self.translate_with_attention(sentence, layer, **decode_kwargs)
        return src_tokens, tgt_tokens, weights

    def translate_with_attention(
        self, sentence: str, layer: int = -1, **decode_kwargs: object
    ) -> Tuple[str, List[str], List[str], np.ndarray]:
        """Like :meth:`attention`, also returning the translation (the tgt tokens detokenized)."""
        check_attention_layer(layer, self.n_decoder_layers)
        cfg = dataclasses.replace(self.decode_config(**decode_kwargs), nbest=1)  # type: ignore[arg-type]
        ids, shown = self._first_segment(sentence, cfg)
        tokens = list(self._search([ids], cfg)[0][0].tokens)
        weights = cross_attention(self._attention_model(), ids, tokens, layer, self.device)
        src_pieces = self.tokenizer.src_pieces(shown)[: len(ids)] if ids else []
        tgt_pieces = self.tokenizer.tgt_pieces(tokens) if tokens else []
        return (self.tokenizer.detokenize(tokens), token_labels(src_pieces, ids), token_labels(tgt_pieces, tokens),
                weights)

    def nbest_with_attention(self, sentence: str, nbest: int = 1, **decode_kwargs: object) -> List[AttendedCandidate]:
        """The n best translations of one line, each with every decoder layer's cross-attention behind it
        (weights (L, H, T_tgt, T_src)): what the server's page draws for the alternative a reader picks.
        Texts and scores are those of :meth:`translate`; an empty line gives one empty candidate."""
        cfg = self.decode_config(nbest=nbest, **decode_kwargs)  # type: ignore[arg-type]
        ids, shown = self._first_segment(sentence, cfg)
        if not ids:
            return [AttendedCandidate("", 0.0, token_labels([], []), token_labels([], []),
                                      cross_attention(self._attention_model(), [], [], None, self.device))]
        src_tokens = token_labels(self.tokenizer.src_pieces(shown)[: len(ids)], ids)
        out = []
        for hyp in self._search([ids], cfg)[0][:nbest]:
            tokens = list(hyp.tokens)
            tgt_tokens = token_labels(self.tokenizer.tgt_pieces(tokens) if tokens else [], tokens)
            weights = cross_attention(self._attention_model(), ids, tokens, None, self.device)
            out.append(AttendedCandidate(self.tokenizer.detokenize(tokens).strip(), float(hyp.score),
                                         src_tokens, tgt_tokens, weights))
        return out

    def _first_segment(self, sentence: str, cfg: DecodeConfig) -> Tuple[List[int], str]:
        """Source ids of a line's first segment and the text they come from: attention shows one segment."""
        text = clean_text(sentence)
        segments, _ = self._segment([text], cfg)
        if len(segments) > 1:  # the first segment is (a prefix of) the first sentence
            log.warning("attention: only the first of %d segments of this line is shown", len(segments))
            return segments[0], split_sentences(text)[0]
        return (segments[0] if segments else []), text
