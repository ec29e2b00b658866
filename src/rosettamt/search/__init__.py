"""Greedy and beam search over Seq2SeqTransformer.encode() once + decode_step(new token, cache) per step.

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
Files: stepper.py (one decoder step, cached or not), greedy.py, beam.py, translate_ids.py (many
sentences: length-sorted batches, input order restored), hypothesis.py.
"""

from rosettamt.search.beam import beam_search
from rosettamt.search.greedy import greedy_search
from rosettamt.search.hypothesis import Hypothesis
from rosettamt.search.translate_ids import search_batch, translate_ids

__all__ = ["Hypothesis", "greedy_search", "beam_search", "translate_ids", "search_batch"]
