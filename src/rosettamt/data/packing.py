"""The one batch packer: examples in a given order, cut into batches by a token budget.

A batch of B examples whose longest costs L tokens is padded to B * L tokens; packing keeps
B * L <= max_tokens (an example longer than the budget gets a batch of its own). Training
packs length-sorted, shuffled buckets (data/batching.py); validation and decoding pack
longest first (:func:`longest_first`), so running out of memory happens at once, not at the end.
"""

from __future__ import annotations

from typing import List, Sequence

import numpy as np


def pack_by_tokens(order: Sequence[int], cost: Sequence[int], max_tokens: int) -> List[np.ndarray]:
    """Consecutive indices of ``order`` while (batch size) * (largest cost in it) <= max_tokens."""
    order, cost = np.asarray(order, dtype=np.int64), np.asarray(cost, dtype=np.int64)
    batches, start, longest = [], 0, 0
    for pos, idx in enumerate(order):
        longest_with = max(longest, int(cost[idx]))
        if pos > start and (pos - start + 1) * longest_with > max_tokens:
            batches.append(order[start:pos])
            start, longest_with = pos, int(cost[idx])
        longest = longest_with
    if start < len(order):
        batches.append(order[start:])
    return batches


def longest_first(cost: Sequence[int], max_tokens: int) -> List[List[int]]:
    """Indices into ``cost``, longest first (ties in index order), packed by :func:`pack_by_tokens`."""
    cost = np.asarray(cost, dtype=np.int64)
    order = np.argsort(-cost, kind="stable")
    return [b.tolist() for b in pack_by_tokens(order, cost, max_tokens)]
