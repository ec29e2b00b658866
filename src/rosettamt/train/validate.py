"""Validation during training: loss and perplexity on the val split, BLEU/chrF from greedy decoding."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Dict, List

import sacrebleu
import torch

from rosettamt.config import DecodeConfig, Strategy
from rosettamt.data.batching import Batch, collate_rows, make_batches
from rosettamt.search import translate_ids
from rosettamt.device import autocast
from rosettamt.train.loss import label_smoothed_loss


@dataclass
class ValSet:
    """The val split, ready to score: loss batches (whole split) and a fixed subset for BLEU."""

    batches: List[Batch]
    src_ids: List[List[int]]  # BLEU subset: pieces, no EOS (translate_ids appends it)
    refs: List[str]


def build_valset(ids: Any, texts: Any, max_tokens: int, max_sentences: int = 0) -> ValSet:
    """Collate the val split once; BLEU uses its first ``max_sentences`` rows (0 = all of it)."""
    batches = [collate_rows(ids, rows) for rows in make_batches(ids, max_tokens)]
    n = len(ids) if max_sentences <= 0 else min(max_sentences, len(ids))
    subset = ids[:n]
    return ValSet(batches=batches, src_ids=subset["src_ids"], refs=texts[:n]["tgt"])


def greedy_config(decode: DecodeConfig) -> DecodeConfig:
    """Validation always decodes greedily (fast), with the length limits of the configured search."""
    return replace(decode, strategy=Strategy.greedy, beam_size=1, nbest=1)


@torch.inference_mode()
def validate(model: torch.nn.Module, val: ValSet, tokenizer: Any, decode: DecodeConfig,
             device: torch.device, amp_dtype: torch.dtype | None, smoothing: float,
             pad_id: int = 0) -> Dict[str, float]:
    """{"loss", "nll", "ppl", "bleu", "chrf", "sentences"} of ``model`` (left in the mode it came in)."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    nll_sum = torch.zeros((), dtype=torch.float64, device=device)
    tokens = 0
    try:
        for batch in val.batches:
            b = batch.to(device)
            with autocast(device, amp_dtype):
                logits = model(b.src, b.src_mask, b.tgt_in)  # (B, T, V)
            loss, nll = label_smoothed_loss(logits, b.tgt_out, smoothing, pad_id)
            loss_sum += loss
            nll_sum += nll
            tokens += b.n_tgt_tokens
        hyps = translate_ids(model, val.src_ids, greedy_config(decode), device) if val.src_ids else []
    finally:
        model.train(was_training)
    texts = [tokenizer.detokenize(h[0].tokens) for h in hyps]  # as evaluate/pipeline.py writes them
    tokens = max(tokens, 1)
    nll = nll_sum.item() / tokens
    out = {"loss": loss_sum.item() / tokens, "nll": nll, "ppl": math.exp(min(nll, 50.0)),
           "bleu": 0.0, "chrf": 0.0, "sentences": len(texts)}
    if texts:
        out["bleu"] = sacrebleu.corpus_bleu(texts, [val.refs]).score
        out["chrf"] = sacrebleu.corpus_chrf(texts, [val.refs]).score
    return out


def validate_directions(model: torch.nn.Module, valsets: Dict[str, ValSet], tokenizer: Any, decode: DecodeConfig,
                        device: torch.device, amp_dtype: torch.dtype | None, smoothing: float,
                        pad_id: int = 0) -> Dict[str, Any]:
    """A multilingual model's validation: :func:`validate` on each direction's val set (its sources
    start with the target tag), then the mean over directions of loss, BLEU and chrF (the mean BLEU
    is the ``bleu`` that picks the best checkpoint and drives early stopping). ``directions`` holds
    each direction's own {"loss", "ppl", "bleu", "chrf", "sentences"}."""
    per: Dict[str, Dict[str, float]] = {}
    for name, val in valsets.items():
        per[name] = validate(model, val, tokenizer, decode, device, amp_dtype, smoothing, pad_id)
    n = max(len(per), 1)
    nll = sum(s["nll"] for s in per.values()) / n
    return {"loss": sum(s["loss"] for s in per.values()) / n, "nll": nll, "ppl": math.exp(min(nll, 50.0)),
            "bleu": sum(s["bleu"] for s in per.values()) / n, "chrf": sum(s["chrf"] for s in per.values()) / n,
            "sentences": sum(int(s["sentences"]) for s in per.values()),
            "directions": {name: {k: s[k] for k in ("loss", "ppl", "bleu", "chrf", "sentences")}
                           for name, s in per.items()}}
