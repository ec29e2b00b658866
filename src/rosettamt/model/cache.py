"""The decoding cache: plain tensors that let each decoder step see only the new position.

Per decoder layer it keeps
  * the cross-attention keys/values, projected from the encoder output ("memory") once per
    sentence, (B, H, S, d). The k beams of a sentence share them: the decoder folds a sentence's
    beam rows into one query block instead of copying K/V per beam (fairseq's "beamable"
    attention, CTranslate2);
  * the self-attention keys/values of the positions decoded so far, (B*k, H, t, d), one row
    per hypothesis (sentence-major: row = b * k + j), growing by one position a step.

Search code reorders the hypothesis rows with :meth:`DecoderCache.reorder` and drops finished
sentences with :meth:`DecoderCache.select_sentences`; the model itself only appends
(:meth:`LayerCache.append`). With the ``kv_buffers`` speed switch (rosettamt.speed) a reorder
copies the t decoded positions into tensors one position longer, and the next step writes its
keys and values into that last slot in place: one copy of the history per beam-search step
instead of two (index_select, then torch.cat). The numbers are the same either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

import torch
from torch import Tensor

from rosettamt import speed


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
    # kv_buffers: after a reorder, (B*k, H, t+1, d) tensors whose first t positions self_k / self_v
    # view and whose last one waits for the next step's keys / values; empty otherwise
    k_buf: Tensor = field(default_factory=lambda: torch.empty(0))
    v_buf: Tensor = field(default_factory=lambda: torch.empty(0))

    def append(self, k: Tensor, v: Tensor) -> None:
        """Add the new positions' keys k (N, H, T, d_k) and values v (N, H, T, d_v)."""
        t, T = self.self_k.shape[2], k.shape[2]
        if speed.on("kv_buffers") and self._room_for(t + T):  # the slot the reorder left: fill it in place
            self.k_buf[:, :, t:] = k
            self.v_buf[:, :, t:] = v
            self.self_k, self.self_v = self.k_buf, self.v_buf  # (N, H, t+T, d), contiguous
        else:
            self.self_k = torch.cat([self.self_k, k], dim=2)  # (N, H, t+T, d_k)
            self.self_v = torch.cat([self.self_v, v], dim=2)  # (N, H, t+T, d_v)
        self.k_buf = self.v_buf = _EMPTY

    def take_rows(self, rows: Tensor) -> None:
        """Row i of the self-attention K/V becomes old row rows[i] (reorder or drop rows)."""
        if not speed.on("kv_buffers") or self.self_k.shape[2] != self.self_v.shape[2]:
            self.self_k = self.self_k.index_select(0, rows)  # (N', H, t, d_k)
            self.self_v = self.self_v.index_select(0, rows)  # (N', H, t, d_v)
            return
        # copy the t positions into tensors one position longer: the next append writes there
        # instead of concatenating (a second copy of the whole history)
        N, (_, H, t, d_k), d_v = rows.numel(), self.self_k.shape, self.self_v.shape[3]
        k_buf, v_buf = self.self_k.new_empty((N, H, t + 1, d_k)), self.self_v.new_empty((N, H, t + 1, d_v))
        self.self_k = torch.index_select(self.self_k, 0, rows, out=k_buf[:, :, :t])  # (N', H, t, d_k) view
        self.self_v = torch.index_select(self.self_v, 0, rows, out=v_buf[:, :, :t])  # (N', H, t, d_v) view
        self.k_buf, self.v_buf = k_buf, v_buf

    def _room_for(self, length: int) -> bool:
        """Is self_k / self_v the front of a buffer of exactly ``length`` positions (left by take_rows)?"""
        return (self.k_buf.dim() == 4 and self.k_buf.shape[2] == length
                and self.self_k.data_ptr() == self.k_buf.data_ptr() and self.self_v.data_ptr() == self.v_buf.data_ptr()
                and self.self_k.shape[0] == self.k_buf.shape[0])


_EMPTY = torch.empty(0)


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
            layer.take_rows(rows)  # self K/V (B*k, H, t, d)

    def select_sentences(self, keep: Tensor) -> None:
        """Keep only the sentences ``keep`` (B',), in that order, with their k beam rows each."""
        rows = sentence_rows(keep, self.beam_size)  # (B'*k,)
        for layer in self.layers:
            layer.cross_k = layer.cross_k.index_select(0, keep)  # (B', H, S, d_k)
            layer.cross_v = layer.cross_v.index_select(0, keep)  # (B', H, S, d_v)
            layer.take_rows(rows)  # self K/V (B'*k, H, t, d)
        self.src_mask = self.src_mask.index_select(0, keep)  # (B', S)
