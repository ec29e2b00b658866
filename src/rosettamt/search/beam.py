"""Batched beam search with length normalisation, min/max length and n-best output.

Every sentence of the working batch keeps k live hypotheses (rows b*k .. b*k+k-1). One step:
log-probs of all B*k rows -> each sentence's best 2k extensions (one topk over k*V) ->
EOS extensions among the best k become finished hypotheses (the only Python loop, over finished
hypotheses) -> the best k non-EOS extensions become the new live beams (the self-attention cache
is reordered with one index_select per layer; the cross-attention K/V stay once per sentence).

When is a sentence done? The standard rule (fairseq's): once it has beam_size finished
hypotheses, or it reaches max_len (then every live beam is forced to end). On top, a safe early
stop: once nbest hypotheses are finished and no live beam can reach a better normalised score
than the nbest-th of them, whatever it does until max_len; this never changes the output, it
only stops earlier (mostly with length_norm=none, where scores can only fall).
Finished sentences leave the working batch (Beams.keep, cache.select_sentences), as in CTranslate2, so one
long straggler does not keep the other sentences' rows busy.

Scores (L = hypothesis length counting EOS, log_prob = sum of token log-probs incl. EOS):
    none:    log_prob
    average: log_prob / L
    gnmt:    log_prob / ((5 + L) / 6) ** alpha          (Wu et al. 2016; alpha = length_penalty)
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import List, Union

import torch
from torch import Tensor, nn

from rosettamt.config import LengthNorm
from rosettamt.data.tokenizer import BOS_ID, EOS_ID
from rosettamt.search.hypothesis import Hypothesis
from rosettamt.search.stepper import NEG_INF, Stepper, constrain, length_limits


def length_divisor(length: Union[Tensor, int], length_norm: str, alpha: float) -> Tensor:
    """What a hypothesis's log-prob is divided by (the formulas above); length counts EOS.

    The one place the length penalty is written: ranking finished hypotheses and bounding what a
    live beam can still reach both use it. Takes a length or a tensor of lengths; float64 out.
    """
    length = torch.as_tensor(length, dtype=torch.float64)
    if length_norm == LengthNorm.none:
        return torch.ones_like(length)
    if length_norm == LengthNorm.average:
        return length
    if length_norm == LengthNorm.gnmt:
        return ((5.0 + length) / 6.0) ** alpha
    raise ValueError(f"unknown length_norm {length_norm!r} (gnmt, average or none)")


@dataclass
class Beams:
    """The working batch of beam search: B' unfinished sentences with kk live beams each.

    Per sentence (B',): ``sentence`` (its index in the input batch), ``max_len``/``min_len``
    (CPU, for :func:`constrain`; ``max_len_dev`` on the device), ``n_finished`` and ``nth_best`` (the nbest-th best finished
    score, -inf until there are nbest). Per beam, sentence-major (row = b * kk + j): ``prefix``
    (B'*kk, t+1) = BOS + tokens and ``scores`` (B', kk) cumulative log-probs.
    """

    sentence: Tensor  # (B',) CPU
    max_len: Tensor  # (B',) CPU
    min_len: Tensor  # (B',) CPU
    max_len_dev: Tensor  # (B',) the same max_len on the device, copied once rather than every step
    n_finished: Tensor  # (B',) device
    nth_best: Tensor  # (B',) device, float
    prefix: Tensor  # (B'*kk, t+1) device
    scores: Tensor  # (B', kk) device

    @classmethod
    def start(cls, max_len: Tensor, min_len: Tensor, device: torch.device) -> "Beams":
        """One beam per sentence holding BOS: the first step fans it out into k."""
        B = max_len.shape[0]
        return cls(sentence=torch.arange(B), max_len=max_len, min_len=min_len, max_len_dev=max_len.to(device),
                   n_finished=torch.zeros(B, dtype=torch.long, device=device),
                   nth_best=torch.full((B,), NEG_INF, device=device, dtype=torch.float64),
                   prefix=torch.full((B, 1), BOS_ID, dtype=torch.long, device=device),
                   scores=torch.zeros(B, 1, device=device))

    def keep(self, keep: Tensor) -> None:
        """Keep only the sentences ``keep`` (B'',) CPU, in that order, with all their beams."""
        Bw, kk = self.scores.shape
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "prefix":  # (B'*kk, t+1) -> (B', kk, t+1) -> (B''*kk, t+1)
                value = value.view(Bw, kk, -1)
            value = value[keep.to(value.device)]
            setattr(self, f.name, value.view(keep.numel() * kk, -1) if f.name == "prefix" else value)


@torch.inference_mode()
def beam_search(
    model: nn.Module,
    src: Tensor,
    src_mask: Tensor,
    beam_size: int,
    length_penalty: float = 1.0,
    length_norm: str = LengthNorm.gnmt,
    max_len_a: float = 1.5,
    max_len_b: int = 10,
    min_len: int = 1,
    nbest: int = 1,
    use_cache: bool = True,
) -> List[List[Hypothesis]]:
    """Beam-decode src (B, S) / src_mask (B, S) -> per sentence, up to nbest hypotheses, best first."""
    if beam_size < 1 or nbest < 1:
        raise ValueError(f"beam_size={beam_size} and nbest={nbest} must be >= 1")
    length_divisor(1, length_norm, length_penalty)  # an unknown length_norm fails here, not mid-search
    k, nbest = beam_size, min(nbest, beam_size)
    B, device = src.shape[0], src.device
    memory = model.encode(src, src_mask)  # (B, S, D)
    max_len, min_lens = length_limits(model, src_mask, max_len_a, max_len_b, min_len)  # (B,) CPU
    stepper = Stepper(model, memory, src_mask, use_cache=use_cache)
    beams = Beams.start(max_len, min_lens, device)
    finished: List[List[Hypothesis]] = [[] for _ in range(B)]

    for t in range(int(max_len.max()) + 1 if B else 0):
        Bw, kk = beams.scores.shape  # kk beams per sentence: 1 at the first step, then k
        lp = stepper.log_probs(beams.prefix).view(Bw, kk, -1)  # (B'*kk, V) -> (B', kk, V)
        V = lp.shape[-1]
        constrain(lp, t, beams.max_len, beams.min_len)
        cand = lp.add_(beams.scores[:, :, None]).view(Bw, kk * V)  # cumulative log-probs, (B', kk*V)
        top_scores, top_idx = cand.topk(min(2 * k, kk * V), dim=1)  # (B', 2k), best first
        if top_idx.shape[1] < k:  # a vocabulary smaller than the beam: pad with impossible candidates
            pad = k - top_idx.shape[1]
            top_scores = torch.cat([top_scores, top_scores.new_full((Bw, pad), NEG_INF)], dim=1)
            top_idx = torch.cat([top_idx, top_idx.new_full((Bw, pad), BOS_ID)], dim=1)  # beam 0, token BOS
        top_beam, top_tok = top_idx // V, top_idx % V  # (B', 2k): parent beam within the sentence, token
        is_eos = top_tok == EOS_ID

        # 1. EOS among the best k candidates: finished hypotheses (the only Python loop).
        ended = is_eos[:, :k] & torch.isfinite(top_scores[:, :k])  # (B', k)
        if ended.any():
            _finish(beams, finished, ended, top_scores, top_beam, kk, t, nbest,
                    float(length_divisor(t + 1, length_norm, length_penalty)))

        # 2. The best k non-EOS candidates continue (EOS ones pushed behind by their position key).
        position = torch.arange(is_eos.shape[1], device=device)
        order = (position + is_eos.long() * is_eos.shape[1]).argsort(dim=1)[:, :k]  # (B', k)
        new_scores = top_scores.gather(1, order)  # (B', k)
        new_beam, new_tok = top_beam.gather(1, order), top_tok.gather(1, order)  # (B', k)
        new_scores = new_scores.masked_fill(new_tok == EOS_ID, NEG_INF)  # fewer than k non-EOS left

        # 3. Done sentences: k finished, max_len reached, or no live beam can still enter the n-best.
        max_len_dev = beams.max_len_dev
        future = torch.stack([torch.full_like(max_len_dev, t + 2), max_len_dev + 1])  # (2, B') lengths with EOS
        divisor = length_divisor(future, length_norm, length_penalty).max(dim=0).values  # (B',)
        best_live = new_scores.max(dim=1).values  # (B',) <= 0: a larger divisor is the best case
        hopeless = best_live.double() / divisor < beams.nth_best
        done = ((beams.n_finished >= k) | (max_len_dev <= t) | hopeless).cpu()  # (B',)
        if done.all():
            break
        if done.any():
            keep = (~done).nonzero().squeeze(1)  # (B'',) CPU
            keep_dev = keep.to(device)
            beams.keep(keep)
            stepper.select_sentences(keep_dev)
            new_scores, new_beam, new_tok = new_scores[keep_dev], new_beam[keep_dev], new_tok[keep_dev]
        rows = (torch.arange(new_beam.shape[0], device=device)[:, None] * kk + new_beam).view(-1)  # (B''*k,)
        stepper.reorder(rows, k)
        beams.prefix = torch.cat([beams.prefix.index_select(0, rows), new_tok.view(-1, 1)], dim=1)  # (B''*k, t+2)
        beams.scores = new_scores

    results = []
    for hyps in finished:
        hyps.sort(key=lambda h: h.score, reverse=True)
        results.append(hyps[:nbest] or [Hypothesis([], NEG_INF, NEG_INF)])
    return results


def _finish(beams: Beams, finished: List[List[Hypothesis]], ended: Tensor, top_scores: Tensor,
            top_beam: Tensor, kk: int, t: int, nbest: int, divisor: float) -> None:
    """Record the hypotheses that end with EOS at step t (length t + 1, EOS counted) and update
    each touched sentence's finished count and nbest-th best score."""
    bs, js = ended.nonzero(as_tuple=True)  # (F,), (F,)
    rows = bs * kk + top_beam[bs, js]  # parent beam rows
    token_lists = beams.prefix.index_select(0, rows)[:, 1:].tolist()  # (F, t) without BOS
    touched = set()
    for b, tokens, lp_sum in zip(bs.tolist(), token_lists, top_scores[bs, js].tolist()):
        finished[int(beams.sentence[b])].append(Hypothesis(tokens, lp_sum / divisor, lp_sum))
        touched.add(b)
    beams.n_finished += ended.sum(dim=1)
    for b in touched:
        ranked = sorted((h.score for h in finished[int(beams.sentence[b])]), reverse=True)
        if len(ranked) >= nbest:
            beams.nth_best[b] = ranked[nbest - 1]
