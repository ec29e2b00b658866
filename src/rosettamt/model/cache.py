"""The decoding cache: plain tensors that let each decoder step see only the new position.

Per decoder layer it keeps
  * the cross-attention keys/values, projected from the encoder output ("memory") once per
    sentence, (B, H, S, d). The k beams of a sentence share them: the decoder folds a sentence's
    beam rows into one query block instead of copying K/V per beam (fairseq's "beamable"
    attention, CTranslate2);
  * the self-attention keys/values of the positions decoded so far, (B*k, H, t, d), one row
    per hypothesis (sentence-major: row = b * k + j), growing by one position a step.

Search code reorders the hypothesis rows with :meth:`DecoderCache.reorder` and drops finished
sentences with :meth:`DecoderCache.select_sentences`; the model itself only appends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

import torch
from torch import Tensor


def sentence_rows(keep: Tensor, k: int) -> Tensor:
    """Sentence indices (B',) -> their hypothesis rows (B'*k,), sentence-major (row = b * k + j)."""
    offsets = torch.arange(k, device=keep.device)
    return (keep[:, None] * k + offsets).reshape(-1)  # (B', k) -> (B'*k,)


@dataclass
class LayerCache:
    """One decoder layer's keys and values."""

    cross_k: Tensor  # (B, H, S, d_k), fixed for the whole search
    cross_v: Tensor  # (B, H, S, d_v)
    self_k: Tensor  # (B*k, H, t, d_k), t = positions decoded so far
    self_v: Tensor  # (B*k, H, t, d_v)


@dataclass
class DecoderCache:
    """Everything :meth:`Seq2SeqTransformer.decode` needs to continue a batch of prefixes."""

    beam_size: int
    length: int  # target positions already decoded (the next position's index)
    layers: List[LayerCache] = field(default_factory=list)
    src_mask: Tensor = field(default_factory=lambda: torch.ones(0, 0, dtype=torch.bool))  # (B, S)

    @property
    def batch_size(self) -> int:
        """Sentences still in the cache (B); the decoder takes B * beam_size rows."""
        return self.src_mask.shape[0]

    def reorder(self, rows: Tensor) -> None:
        """Row i of the self-attention cache becomes old row ``rows[i]`` (beam search).

        ``rows`` (B*k,) must keep every row within its sentence (``rows[b*k + j] // k == b``),
        because the cross-attention K/V, which are stored once per sentence, are not touched.
        """
        for layer in self.layers:
            layer.self_k = layer.self_k.index_select(0, rows)  # (B*k, H, t, d_k)
            layer.self_v = layer.self_v.index_select(0, rows)  # (B*k, H, t, d_v)

    def select_sentences(self, keep: Tensor) -> None:
        """Keep only the sentences ``keep`` (B',), in that order, with their k beam rows each."""
        rows = sentence_rows(keep, self.beam_size)  # (B'*k,)
        for layer in self.layers:
            layer.cross_k = layer.cross_k.index_select(0, keep)  # (B', H, S, d_k)
            layer.cross_v = layer.cross_v.index_select(0, keep)  # (B', H, S, d_v)
            layer.self_k = layer.self_k.index_select(0, rows)  # (B'*k, H, t, d_k)
            layer.self_v = layer.self_v.index_select(0, rows)  # (B'*k, H, t, d_v)
        self.src_mask = self.src_mask.index_select(0, keep)  # (B', S)
