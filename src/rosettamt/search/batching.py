"""Decoding batches: sentences sorted by length, cut by a token budget, results put back in order.

Sorting keeps padding low (sentences of similar length share a batch) and puts the longest batch
first, so running out of memory happens at once rather than at the end.
"""

from __future__ import annotations

from typing import List, Sequence, TypeVar

import torch
from torch import Tensor

from rosettamt.data.tokenizer import PAD_ID

T = TypeVar("T")


def length_sorted_batches(lengths: Sequence[int], max_tokens: int) -> List[List[int]]:
    """Indices into ``lengths``, longest first, in batches whose padded size (rows x longest)
    stays within max_tokens; a sentence longer than max_tokens gets a batch of its own."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: List[List[int]] = []
    current: List[int] = []
    for i in order:
        longest = lengths[current[0]] if current else lengths[i]  # sorted: the first is the longest
        if current and (len(current) + 1) * longest > max_tokens:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


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
