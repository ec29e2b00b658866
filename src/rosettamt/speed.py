"""Decoding speed switches (issue 18): each one can be turned off alone to measure what it buys.

Every switch keeps translations as they were: the search and the model compute the same numbers
in fewer or cheaper operations (output_t up to the summation order of one matmul). They are module-level flags, not config keys, because they are
for measuring and testing, not for users: ``scripts/bench_decode.py --speed-off NAME`` and the
tests flip them with :func:`switched`.

    kv_buffers     a reorder of the self-attention K/V leaves a free slot that the next step's
                   K/V are written into in place, instead of torch.cat of the whole history
                   (model/cache.py); measured: a growing buffer with views lost (strided
                   index_select and attention over a strided view cost more than the cat)
    skip_reorder   beam search reorders the self-attention K/V only when some beam moved
                   (an identity permutation is a copy of the whole cache for nothing)
    output_t       a decoding step's output projection multiplies by a transposed copy of the
                   weight (D, V) instead of F.linear's view of it: about twice as fast for the few
                   rows of a batch-1 step on the CPU (model/transformer.py); the same for large
                   batches. Its GEMM may sum in another order: last-bit differences in the logits
    no_pad_mask    a decoding step over sentences without padding (every batch-1 step) passes no
                   mask to cross-attention instead of an all-True one (which the attention kernel
                   turns into an additive float mask every call, in every layer)

Measured and not kept (2-core shared CPU, interleaved micro-benchmarks): top-k per beam with a
log-sum-exp instead of log_softmax over k x V (torch.logsumexp costs more than log_softmax: the
exp pass dominates either way); a two-stage top-k / argmax through block maxima (2x slower than
torch.topk / max(dim) at batch 1 to 100).
"""

from __future__ import annotations

import contextlib
from typing import Dict, Iterator

SWITCHES: Dict[str, bool] = {"kv_buffers": True, "skip_reorder": True, "output_t": True, "no_pad_mask": True}


def on(name: str) -> bool:
    """Is the speed switch ``name`` on?"""
    return SWITCHES[name]


def set_switches(off: str) -> None:
    """Turn off the comma-separated switches in ``off`` (the benchmark's --speed-off); 'all' = every one."""
    names = list(SWITCHES) if off.strip() == "all" else [n.strip() for n in off.split(",") if n.strip()]
    unknown = [n for n in names if n not in SWITCHES]
    if unknown:
        raise ValueError(f"unknown speed switch(es) {', '.join(unknown)}; known: {', '.join(SWITCHES)}")
    for name in names:
        SWITCHES[name] = False


@contextlib.contextmanager
def switched(**values: bool) -> Iterator[None]:
    """Set switches for a block (tests), then restore them."""
    unknown = set(values) - set(SWITCHES)
    if unknown:
        raise ValueError(f"unknown speed switch(es) {', '.join(sorted(unknown))}")
    saved = dict(SWITCHES)
    SWITCHES.update(values)
    try:
        yield
    finally:
        SWITCHES.clear()
        SWITCHES.update(saved)
