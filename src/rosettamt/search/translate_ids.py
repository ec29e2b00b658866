"""Decoding many sentences: sort by length, pack by a token budget, search each batch, restore the order.

The one place where the searches meet a list of sentences; evaluation, validation, the
Translator and the benchmarks all call :func:`translate_ids`.
"""

from __future__ import annotations

import logging
import sys
from typing import List, Sequence, TypeVar

import torch
from torch import Tensor, nn
from tqdm import tqdm

from rosettamt.config import DecodeConfig, Strategy, check_decode
from rosettamt.data.packing import longest_first
from rosettamt.data.tokenizer import EOS_ID, PAD_ID
from rosettamt.errors import UserError
from rosettamt.search.beam import beam_search
from rosettamt.search.greedy import greedy_search
from rosettamt.search.hypothesis import Hypothesis

log = logging.getLogger(__name__)

T = TypeVar("T")


def search_batch(model: nn.Module, src: torch.Tensor, src_mask: torch.Tensor,
                 cfg: DecodeConfig) -> List[List[Hypothesis]]:
    """Run the search cfg.strategy names on one padded batch (sentences in batch order)."""
    if cfg.strategy == Strategy.greedy:
        return greedy_search(model, src, src_mask, cfg.max_len_a, cfg.max_len_b, cfg.min_len, cfg.use_cache)
    return beam_search(
        model, src, src_mask, cfg.beam_size, cfg.length_penalty, cfg.length_norm,
        cfg.max_len_a, cfg.max_len_b, cfg.min_len, cfg.nbest, cfg.use_cache,
    )


def check_lengths(cfg: DecodeConfig, max_positions: int, prefix: str = "decode.") -> None:
    """A min_len the model cannot generate (its decoder has max_positions positions, BOS
    included) is a mistake, not a request to run every sentence to its length limit."""
    if cfg.min_len >= max_positions:
        raise UserError(f"{prefix}min_len={cfg.min_len} must be below the model's max_positions={max_positions}")


def translate_ids(
    model: nn.Module, src_ids: Sequence[Sequence[int]], cfg: DecodeConfig, device, progress: bool = False
) -> List[List[Hypothesis]]:
    """Decode many sources (piece ids, no EOS): length-sorted batches, hypotheses in input order."""
    check_decode(cfg)
    max_positions = getattr(getattr(model, "cfg", None), "max_positions", None)
    if max_positions:
        check_lengths(cfg, max_positions)
    sources: List[List[int]] = []
    for i, ids in enumerate(src_ids):
        seq = list(ids) + [EOS_ID]  # same convention as training: source = pieces + [EOS]
        if max_positions and len(seq) > max_positions:
            log.warning("source %d has %d tokens, cut to model.max_positions=%d", i, len(seq), max_positions)
            seq = seq[: max_positions - 1] + [EOS_ID]
        sources.append(seq)
    nonempty = [i for i, ids in enumerate(src_ids) if len(ids) > 0]
    batches = longest_first([len(sources[i]) for i in nonempty], cfg.max_tokens)
    batches = [[nonempty[j] for j in batch] for batch in batches]  # positions in src_ids

    was_training = model.training
    if was_training:  # a call only when needed: eval() drops the model's output_t copy (rosettamt/speed.py)
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
        if was_training:
            model.train()
    empty = [i for i, ids in enumerate(src_ids) if len(ids) == 0]
    batches.append(empty)
    outputs.append([[Hypothesis([], 0.0, 0.0)] for _ in empty])
    return restore_order(batches, outputs, len(src_ids))


def restore_order(batches: Sequence[Sequence[int]], outputs: Sequence[Sequence[T]], n: int) -> List[T]:
    """Undo the sorting: outputs[b][j] belongs to input position batches[b][j]; returns n items."""
    result: List[T] = [None] * n  # type: ignore[list-item]
    filled = 0
    for indices, outs in zip(batches, outputs):
        if len(indices) != len(outs):
            raise ValueError(f"batch of {len(indices)} sentences produced {len(outs)} outputs")
        for i, out in zip(indices, outs):
            result[i] = out
            filled += 1
    if filled != n:
        raise ValueError(f"{filled} outputs for {n} inputs")
    return result


def pad_sources(seqs: Sequence[Sequence[int]], device) -> tuple[Tensor, Tensor]:
    """Ragged id lists -> src (B, S) padded with PAD_ID and src_mask (B, S), True at real tokens."""
    S = max(len(s) for s in seqs)
    src = torch.full((len(seqs), S), PAD_ID, dtype=torch.long)
    for row, seq in enumerate(seqs):
        src[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    lengths = torch.tensor([len(s) for s in seqs])
    src_mask = torch.arange(S)[None, :] < lengths[:, None]  # (B, S)
    return src.to(device), src_mask.to(device)
