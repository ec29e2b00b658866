"""Greedy and beam search over Seq2SeqTransformer.encode() once + decode(..., cache) per step.

    greedy_search(model, src, src_mask, max_len_a, max_len_b, min_len=1, use_cache=True)
        -> list[list[Hypothesis]]        one list (length 1) per sentence, batch order
    beam_search(model, src, src_mask, beam_size, length_penalty, length_norm, max_len_a, max_len_b,
                min_len=1, nbest=1, use_cache=True) -> list[list[Hypothesis]]   best first
    translate_ids(model, src_ids, cfg: DecodeConfig, device, progress=False) -> list[list[Hypothesis]]
        source ids are pieces without EOS; sorted by length into batches of cfg.max_tokens source
        tokens, results in INPUT order; an empty source gives [Hypothesis([], 0.0, 0.0)].
    search_batch(model, src, src_mask, cfg) -> list[list[Hypothesis]]   the search cfg names, one batch

Hypothesis(tokens, score, log_prob): target ids without BOS/EOS; score is what the search ranked
by (beam: length-normalised log-prob, see beam.py; greedy: log_prob); log_prob includes EOS.
decode.use_cache=false recomputes every prefix from scratch: the baseline for tests and benchmarks.
"""

from __future__ import annotations

import logging
import sys
from typing import List, Sequence

import torch
from torch import nn
from tqdm import tqdm

from rosettamt.config import DecodeConfig, Strategy
from rosettamt.data.tokenizer import EOS_ID
from rosettamt.errors import UserError
from rosettamt.search.batching import length_sorted_batches, pad_sources, restore_order
from rosettamt.search.beam import beam_search
from rosettamt.search.greedy import Hypothesis, greedy_search

__all__ = ["Hypothesis", "greedy_search", "beam_search", "translate_ids", "search_batch", "check_decode_config"]

log = logging.getLogger(__name__)


def search_batch(model: nn.Module, src: torch.Tensor, src_mask: torch.Tensor,
                 cfg: DecodeConfig) -> List[List[Hypothesis]]:
    """Run the search cfg.strategy names on one padded batch (sentences in batch order)."""
    if cfg.strategy == Strategy.greedy:
        return greedy_search(model, src, src_mask, cfg.max_len_a, cfg.max_len_b, cfg.min_len, cfg.use_cache)
    return beam_search(
        model, src, src_mask, cfg.beam_size, cfg.length_penalty, cfg.length_norm,
        cfg.max_len_a, cfg.max_len_b, cfg.min_len, cfg.nbest, cfg.use_cache,
    )


def check_decode_config(cfg: DecodeConfig) -> None:
    """Reject settings no search can run with, naming the option (they come from the command line)."""
    for name, value, low in (("beam_size", cfg.beam_size, 1), ("nbest", cfg.nbest, 1),
                             ("max_tokens", cfg.max_tokens, 1), ("min_len", cfg.min_len, 0),
                             ("max_len_a", cfg.max_len_a, 0), ("max_len_b", cfg.max_len_b, 0)):
        if value < low:
            raise UserError(f"decode.{name}={value} must be >= {low}")


def translate_ids(
    model: nn.Module, src_ids: Sequence[Sequence[int]], cfg: DecodeConfig, device, progress: bool = False
) -> List[List[Hypothesis]]:
    """Decode many sources (piece ids, no EOS): length-sorted batches, hypotheses in input order."""
    check_decode_config(cfg)
    max_positions = getattr(getattr(model, "cfg", None), "max_positions", None)
    sources: List[List[int]] = []
    for i, ids in enumerate(src_ids):
        seq = list(ids) + [EOS_ID]  # same convention as training: source = pieces + [EOS]
        if max_positions and len(seq) > max_positions:
            log.warning("source %d has %d tokens, cut to model.max_positions=%d", i, len(seq), max_positions)
            seq = seq[: max_positions - 1] + [EOS_ID]
        sources.append(seq)
    nonempty = [i for i, ids in enumerate(src_ids) if len(ids) > 0]
    batches = length_sorted_batches([len(sources[i]) for i in nonempty], cfg.max_tokens)
    batches = [[nonempty[j] for j in batch] for batch in batches]  # positions in src_ids

    was_training = model.training
    model.eval()
    outputs: List[List[List[Hypothesis]]] = []
    try:
        with torch.inference_mode(), tqdm(
            total=len(nonempty), desc="decoding", unit="sent", file=sys.stderr,
            disable=not progress, dynamic_ncols=True,
        ) as bar:
            for batch in batches:
                src, src_mask = pad_sources([sources[i] for i in batch], device)  # (B, S) each
                outputs.append(search_batch(model, src, src_mask, cfg))
                bar.update(len(batch))
    finally:
        model.train(was_training)
    empty = [i for i, ids in enumerate(src_ids) if len(ids) == 0]
    batches.append(empty)
    outputs.append([[Hypothesis([], 0.0, 0.0)] for _ in empty])
    return restore_order(batches, outputs, len(src_ids))
