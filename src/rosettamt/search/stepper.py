"""The decoder side of a search: one step at a time, with the cache or by recomputation.

Greedy and beam search share this: they hold a working batch of B sentences x k rows (rows
sentence-major, row = b * k + j) and ask for the next-token log-probs of every row. With
``use_cache`` the encoder output is turned into a :class:`DecoderCache` once (cross-attention
K/V per sentence) and each step feeds only the newest token; without it every step re-runs the
decoder on the whole prefix, which is the baseline the tests and the benchmark compare against.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from torch import Tensor, nn

from rosettamt import speed
from rosettamt.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from rosettamt.model.cache import DecoderCache, sentence_rows

NEG_INF = float("-inf")
NO_POSITION_LIMIT = 1 << 31  # the length cap for a model that states no max_positions


class Stepper:
    """Next-token log-probs for a shrinking, reorderable working batch of hypothesis rows.

    Starts with one row per sentence (BOS); beam search widens it to k rows with ``reorder``.
    With the cache, the encoder side lives in the cache (once per sentence); without it, every
    row keeps its own copy of its sentence's memory and the whole prefix is recomputed.
    """

    def __init__(self, model: nn.Module, memory: Tensor, src_mask: Tensor, use_cache: bool) -> None:
        self.model, self.k = model, 1
        self.cache: Optional[DecoderCache] = model.new_cache(memory, src_mask) if use_cache else None
        self.memory: Optional[Tensor] = None if use_cache else memory  # (B*k, S, D) uncached only
        self.src_mask: Optional[Tensor] = None if use_cache else src_mask  # (B*k, S) uncached only

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
        """New hypothesis row i continues old row rows[i] of the same sentence. beam_size may grow
        (1 -> k after beam search's first step): rows (B*beam_size,) then index the B*old rows."""
        if self.cache is not None:
            self.cache.beam_size = beam_size  # plain data: the rows below are laid out for it
            unmoved = beam_size == self.k and speed.on("skip_reorder") and bool(
                torch.equal(rows, torch.arange(rows.numel(), device=rows.device)))
            if not unmoved:  # when no beam moved, the cache is already in order
                self.cache.reorder(rows)
        elif beam_size != self.k:  # the rows of a sentence share its memory: only widening moves it
            self.memory = self.memory.index_select(0, rows)  # (B*k, S, D)
            self.src_mask = self.src_mask.index_select(0, rows)  # (B*k, S)
        self.k = beam_size

    def select_sentences(self, keep: Tensor) -> None:
        """Drop finished sentences: keep these working-batch sentence indices (B',) with their k rows."""
        if self.cache is not None:
            self.cache.select_sentences(keep)
        else:
            rows = sentence_rows(keep, self.k)  # (B'*k,)
            self.memory = self.memory.index_select(0, rows)  # (B'*k, S, D)
            self.src_mask = self.src_mask.index_select(0, rows)  # (B'*k, S)


def length_limits(model: nn.Module, src_mask: Tensor, max_len_a: float, max_len_b: int,
                  min_len: int) -> Tuple[Tensor, Tensor]:
    """Per sentence (B,) on the CPU: the most tokens a hypothesis may have (EOS not counted),
    max_len = floor(a * src_len + b), src_len counting the source EOS, capped so that the decoder
    positions fit the model; and the fewest, min_len, capped at max_len so a sentence can always end.

    The cap is applied in Python numbers, before the limits become int64: a huge a or b means
    "as long as the model allows", not an overflow (or a wrapped-around limit of 0).
    """
    max_positions = getattr(getattr(model, "cfg", None), "max_positions", None)
    cap = max_positions - 1 if max_positions else NO_POSITION_LIMIT  # decoder input BOS + max_len tokens
    b = min(max_len_b, cap)  # an int of any size compares exactly; a * src_len below is a float (or inf)
    limits = [max(0, math.floor(min(max_len_a * n + b, cap))) for n in src_mask.sum(dim=1).tolist()]
    max_len = torch.tensor(limits, dtype=torch.long)
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
