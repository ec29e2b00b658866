"""What a search returns for a sentence: a list of hypotheses, best first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List


@dataclass
class Hypothesis:
    """One translation: target ids without BOS/EOS, its ranking score and its total log-prob."""

    tokens: List[int]
    score: float  # what the search ranked by: beam = length-normalised log-prob, greedy = log_prob
    log_prob: float  # sum of the token log-probs, EOS included
