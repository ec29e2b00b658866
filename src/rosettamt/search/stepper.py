"""The decoder side of a search: one step at a time, with the cache or by recomputation.

Greedy and beam search share this: they hold a working batch of B sentences x k rows (rows
sentence-major, row = b * k + j) and ask for the next-token log-probs of every row. With
``use_cache`` the encoder output is turned into a :class:`DecoderCache` once (cross-attention
K/V per sentence) and each step feeds only the newest token; without it every step re-runs the
decoder on the whole prefix, which is the baseline the tests and the benchmark compare against.
"""

from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor, nn

from rosettamt.data.tokenizer import BOS_ID, EOS_ID, PAD_ID

NEG_INF = float("-inf")


class Stepper:
    """Next-token log-probs for a shrinking, reorderable working batch."""

    def __init__(self, model: nn.Module, memory: Tensor, src_mask: Tensor, beam_size: int, use_cache: bool) -> None:
        self.model, self.k, self.use_cache = model, beam_size, use_cache
        if use_cache:
            self.memory, self.src_mask = memory, src_mask  # (B, S, D), (B, S): one copy per sentence
            self.cache = model.new_cache(memory, src_mask, beam_size=beam_size)
        else:  # the uncached decoder takes one memory row per hypothesis row
            self.memory = memory.repeat_interleave(beam_size, dim=0)  # (B*k, S, D)
            self.src_mask = src_mask.repeat_interleave(beam_size, dim=0)  # (B*k, S)
            self.cache = None

    def log_probs(self, prefix: Tensor) -> Tensor:
        """prefix (B*k, t) = BOS + tokens so far -> next-token log-probs (B*k, V), float32."""
        if self.cache is not None:
            logits = self.model.decode_step(prefix[:, -1:], self.cache).logits  # (B*k, 1, V)
        else:
            logits = self.model.decode(prefix, self.memory, self.src_mask).logits  # (B*k, t, V)
        lp = torch.log_softmax(logits[:, -1].float(), dim=-1)  # (B*k, V)
        lp[:, PAD_ID] = NEG_INF  # never produced in training targets
        lp[:, BOS_ID] = NEG_INF
        return lp

    def reorder(self, rows: Tensor, beam_size: int) -> None:
        """New hypothesis row i continues old row rows[i] of the same sentence; only the
        self-attention cache moves. beam_size may grow (1 -> k after beam search's first step,
        when every sentence has one distinct prefix): rows (B*beam_size,) then index B*old rows."""
        if self.cache is not None:
            self.cache.beam_size = beam_size  # plain data: the rows below are laid out for it
            self.cache.reorder(rows)
        elif beam_size != self.k:  # recomputation keeps a memory row per hypothesis
            self.memory = self.memory.index_select(0, rows)  # (B*k, S, D)
            self.src_mask = self.src_mask.index_select(0, rows)  # (B*k, S)
        self.k = beam_size

    def select_sentences(self, keep: Tensor) -> None:
        """Drop finished sentences: keep these working-batch sentence indices (B',) with their k rows."""
        if self.cache is not None:
            self.cache.select_sentences(keep)
            self.memory = self.memory.index_select(0, keep)  # (B', S, D)
            self.src_mask = self.src_mask.index_select(0, keep)  # (B', S)
        else:
            rows = sentence_rows(keep, self.k)
            self.memory = self.memory.index_select(0, rows)  # (B'*k, S, D)
            self.src_mask = self.src_mask.index_select(0, rows)  # (B'*k, S)


def sentence_rows(keep: Tensor, k: int) -> Tensor:
    """Sentence indices (B',) -> their hypothesis rows (B'*k,), sentence-major."""
    offsets = torch.arange(k, device=keep.device)
    return (keep[:, None] * k + offsets).reshape(-1)  # (B', k) -> (B'*k,)


def length_limits(model: nn.Module, src_mask: Tensor, max_len_a: float, max_len_b: int,
                  min_len: int) -> Tuple[Tensor, Tensor]:
    """Per sentence (B,) on the CPU: the most tokens a hypothesis may have (EOS not counted),
    max_len = floor(a * src_len + b), src_len counting the source EOS, capped so that the decoder
    positions fit the model; and the fewest, min_len, capped at max_len so a sentence can always end.
    """
    src_len = src_mask.sum(dim=1).cpu().double()  # (B,)
    max_len = torch.floor(max_len_a * src_len + max_len_b).long().clamp(min=0)
    max_positions = getattr(getattr(model, "cfg", None), "max_positions", None)
    if max_positions:
        max_len = max_len.clamp(max=max_positions - 1)  # decoder input BOS + max_len tokens
    return max_len, torch.minimum(torch.full_like(max_len, max(min_len, 0)), max_len)


def constrain(lp: Tensor, t: int, max_len: Tensor, min_len: Tensor) -> None:
    """In place on log-probs lp (B, k, V) at step t (t tokens generated so far):
    EOS is forbidden while t < min_len and is the only choice once t == max_len.
    max_len / min_len are (B,) CPU tensors."""
    forbid = (t < min_len).nonzero().squeeze(1)
    if forbid.numel():
        lp[forbid.to(lp.device), :, EOS_ID] = NEG_INF
    force = (t >= max_len).nonzero().squeeze(1)
    if force.numel():
        rows = force.to(lp.device)
        eos = lp[rows, :, EOS_ID]  # (F, k) (advanced indexing copies)
        lp[rows] = NEG_INF
        lp[rows, :, EOS_ID] = eos
