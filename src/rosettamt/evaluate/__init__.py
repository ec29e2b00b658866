"""Decode a split (or any file pair) and score it with sacreBLEU: rosettamt-evaluate's library.

The scores are sacreBLEU's own (BLEU cased with the 13a tokenizer, chrF, and lowercased BLEU),
reported with their signatures, computed on exactly the lines written to the hypothesis and
reference files, so ``sacrebleu REF -i HYP`` on those files gives the same numbers. With
``metric.paper_protocol`` the Multi30k papers' BLEU is added, clearly labelled.

Modules: scoring.py (sacreBLEU and the paper protocol: lines in, scores out), inputs.py (the
sentences to score: a file pair or corpus splits), pipeline.py (a checkpoint's evaluation:
decode, write the files, score; ``evaluate`` and the trainer's ``evaluate_splits``).
``python -m rosettamt.evaluate`` runs rosettamt-evaluate.
"""

from rosettamt.evaluate.inputs import read_lines, split_texts
from rosettamt.evaluate.pipeline import (EvalResult, decode_tag, evaluate, evaluate_directions, evaluate_splits,
                                         evaluate_texts,
                                         translate_texts)
from rosettamt.evaluate.scoring import PAPER_LABEL, paper_tokenize, score


__all__ = ["EvalResult", "PAPER_LABEL", "decode_tag", "evaluate", "evaluate_directions", "evaluate_splits", "evaluate_texts",
           "paper_tokenize", "read_lines", "score", "split_texts", "translate_texts"]
