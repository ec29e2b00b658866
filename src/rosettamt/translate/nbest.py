"""The Translator's results per input line: Candidate(text, score), and how the hypotheses of a
line that was split into segments become one n-best list."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, List, NamedTuple, Sequence

if TYPE_CHECKING:  # importing rosettamt.search brings torch; this module and Candidate do not need it
    import numpy as np

    from rosettamt.search.hypothesis import Hypothesis


class Candidate(NamedTuple):
    """One of the n best translations of a sentence."""

    text: str
    score: float  # the search's ranking score (length-normalised log-prob); higher is better


class AttendedCandidate(NamedTuple):
    """One of the n best translations of a line with where the decoder looked while producing it."""

    text: str
    score: float
    src_tokens: List[str]  # source pieces + "</s>"
    tgt_tokens: List[str]  # target pieces + "</s>"
    weights: "np.ndarray"  # (L, H, T_tgt, T_src): every decoder layer's cross-attention; rows sum to 1


def join_nbest(seg_hyps: Sequence[Sequence[Hypothesis]], nbest: int,
               detokenize: Callable[[List[int]], str]) -> List[Candidate]:
    """n-best of one line from the n-best lists of its segments, best first.

    The i-th candidate joins each segment's i-th hypothesis (its last, where a segment has
    fewer) and scores the segments' mean. A line without segments (empty) has one empty
    candidate; ``join_nbest(..., 1)[0].text`` is the line's translation.
    """
    if not seg_hyps:
        return [Candidate("", 0.0)]
    n = min(nbest, max(len(h) for h in seg_hyps))
    out = []
    for i in range(n):
        picks = [h[min(i, len(h) - 1)] for h in seg_hyps]
        text = " ".join(detokenize(p.tokens) for p in picks).strip()
        out.append(Candidate(text, float(sum(p.score for p in picks) / len(picks))))
    return out
