"""Translator: text in, text out, for people and for Python code.

It loads a checkpoint once and wraps the model, the tokenizer and the search
with everything a sentence typed or piped by a person needs: control characters
and odd whitespace are cleaned away, an empty line gives an empty translation,
and a line longer than the model's positions is split on sentence boundaries
(and, if one sentence is still too long, at word boundaries) with a one-line
warning instead of a crash. :meth:`Translator.attention` re-runs the decoder on
its own output to return the cross-attention weights for plots (viz.py).

The command line (interactive prompt and pipe mode) lives in prompt.py.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from rosettamt.config import DecodeConfig, Strategy, resolve_decode
from rosettamt.data.tokenizer import BOS_ID, EOS_ID
from rosettamt.errors import UserError
from rosettamt.device import resolve_device

if TYPE_CHECKING:
    from rosettamt.data.tokenizer import Tokenizer

log = logging.getLogger(__name__)

EOS_PIECE = "</s>"
# A sentence ends at . ! ? ; … followed by a space, or right after a CJK full stop.
_SENTENCE_END = re.compile(r"(?<=[.!?;…])\s+|(?<=[。！？])\s*")
# Removed from input: control (Cc), format (Cf: zero-width and bidi controls) and lone
# surrogates (Cs, which cannot even be encoded as UTF-8); but the zero-width (non-)joiners
# are spelling in Persian, Indic scripts and emoji sequences.
_DROP = frozenset({"Cc", "Cf", "Cs"})
_KEEP = frozenset({"\u200c", "\u200d"})


class Candidate(NamedTuple):
    """One of the n best translations of a sentence."""

    text: str
    score: float  # the search's ranking score (length-normalised log-prob); higher is better


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


class Translator:
    """A loaded model + tokenizer + decoding settings; ``translate`` maps sentences to sentences."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: "Tokenizer",
        decode: Optional[DecodeConfig] = None,
        device: Union[str, torch.device] = "cpu",
        checkpoint_path: Optional[Path] = None,
        checkpoint_info: Optional[Dict[str, Any]] = None,
    ) -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
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
        from rosettamt.checkpoint import find_best_checkpoint, load_for_inference

        path = Path(path).expanduser()
        if path.is_dir():
            path = find_best_checkpoint(path)
        elif not path.is_file():
            raise UserError(f"checkpoint={path}: no such file")
        dev = resolve_device(device)
        model, tok, ckpt = load_for_inference(path, dev, (decode or DecodeConfig()).precision)
        data_cfg = (ckpt.get("config") or {}).get("data") or {}
        info = {"src_lang": data_cfg.get("src_lang"), "tgt_lang": data_cfg.get("tgt_lang"),
                "step": ckpt.get("step"), "val_bleu": ckpt.get("val_bleu")}
        return cls(model, tok, decode=decode, device=dev, checkpoint_path=path, checkpoint_info=info)

    # ------------------------------------------------------------------ settings

    @property
    def n_decoder_layers(self) -> int:
        return int(self.model.cfg.decoder_layers)

    @property
    def n_heads(self) -> int:
        return int(self.model.cfg.n_heads)

    def decode_config(
        self,
        beam_size: Optional[int] = None,
        nbest: int = 1,
        strategy: Optional[Union[str, Strategy]] = None,
        **overrides: object,
    ) -> DecodeConfig:
        """This translator's DecodeConfig with per-call changes (see :func:`rosettamt.config.resolve_decode`)."""
        return resolve_decode(self.decode, beam_size, nbest, strategy, **overrides)

    def max_source_pieces(self, cfg: Optional[DecodeConfig] = None) -> int:
        """Longest source (in subword pieces) whose source and output both fit max_positions.

        The source takes pieces + EOS positions; the search may generate up to
        a * len + b tokens after BOS, which must fit as well.
        """
        cfg = cfg or self.decode
        positions = int(self.model.cfg.max_positions)
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
        """
        if isinstance(sentences, str):
            sentences = [sentences]
        cfg = self.decode_config(beam_size, nbest, strategy, **decode_overrides)
        texts = [clean_text(s) for s in sentences]
        segments, spans = self._segment(texts, cfg)
        hyps = self._search(segments, cfg, progress) if segments else []
        results: list = []
        for start, stop in spans:
            seg_hyps = hyps[start:stop]
            if nbest == 1:
                results.append(" ".join(self._detok(h[0].tokens) for h in seg_hyps).strip())
            else:
                results.append(self._join_nbest(seg_hyps, nbest))
        return results

    def __call__(self, sentence: str, **kwargs: object) -> str:
        """Translate one sentence to one string."""
        return self.translate([sentence], **kwargs)[0]  # type: ignore[return-value]

    def _search(self, segments: List[List[int]], cfg: DecodeConfig, progress: bool = False) -> list:
        from rosettamt.search import translate_ids

        with torch.inference_mode():
            return translate_ids(self.model, segments, cfg, self.device, progress=progress)

    def _detok(self, ids: List[int]) -> str:
        # one output line per input line, whatever the tokenizer produces
        return self.tokenizer.detokenize(ids)

    def _join_nbest(self, seg_hyps: list, nbest: int) -> List[Candidate]:
        """n-best of a line: the i-th candidate joins each segment's i-th hypothesis."""
        if not seg_hyps:
            return [Candidate("", 0.0)]
        n = min(nbest, max(len(h) for h in seg_hyps))
        out = []
        for i in range(n):
            picks = [h[min(i, len(h) - 1)] for h in seg_hyps]
            text = " ".join(self._detok(p.tokens) for p in picks).strip()
            out.append(Candidate(text, float(sum(p.score for p in picks) / len(picks))))
        return out

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
        n_layers = self.n_decoder_layers
        if not -n_layers <= layer < n_layers:
            raise UserError(
                f"attention_layer={layer}: the model has {n_layers} decoder layers "
                f"(use 0..{n_layers - 1} or -1 for the last)"
            )
        cfg = self.decode_config(**decode_kwargs)  # type: ignore[arg-type]
        cfg = dataclasses.replace(cfg, nbest=1)
        text = clean_text(sentence)
        segments, _ = self._segment([text], cfg)
        ids = segments[0] if segments else []
        shown = text
        if len(segments) > 1:  # the first segment is (a prefix of) the first sentence
            log.warning("attention: only the first of %d segments of this line is shown", len(segments))
            shown = split_sentences(text)[0]
        tokens = list(self._search([ids], cfg)[0][0].tokens)

        src = torch.tensor([ids + [EOS_ID]], dtype=torch.long, device=self.device)  # (1, S)
        src_mask = torch.ones_like(src, dtype=torch.bool)  # (1, S)
        tgt_in = torch.tensor([[BOS_ID] + tokens], dtype=torch.long, device=self.device)  # (1, T)
        with torch.inference_mode():
            memory = self.model.encode(src, src_mask)  # (1, S, D)
            cross = self.model.decode(tgt_in, memory, src_mask, need_weights=True).cross_attention
        weights = cross[layer][0].float().cpu().numpy()  # (1, H, T, S) -> (H, T, S)

        pieces = self.tokenizer.src_pieces(shown)[: len(ids)] if ids else []
        if len(pieces) != len(ids):  # should not happen; keep labels aligned with the weights
            pieces = [str(i) for i in ids]
        tgt_pieces = self.tokenizer.tgt_pieces(tokens) if tokens else []
        if len(tgt_pieces) != len(tokens):
            tgt_pieces = [str(i) for i in tokens]
        return self._detok(tokens), pieces + [EOS_PIECE], tgt_pieces + [EOS_PIECE], weights


if __name__ == "__main__":
    from rosettamt.cli.translate import main

    main()
