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
Finished sentences leave the working batch (cache.select_sentences), as in CTranslate2, so one
long straggler does not keep the other sentences' rows busy.

Scores (L = hypothesis length counting EOS, log_prob = sum of token log-probs incl. EOS):
    none:    log_prob
    average: log_prob / L
    gnmt:    log_prob / ((5 + L) / 6) ** alpha          (Wu et al. 2016; alpha = length_penalty)
"""

from __future__ import annotations

from typing import List

import torch
from torch import Tensor, nn

from rosettamt.config import LengthNorm
from rosettamt.data.tokenizer import BOS_ID, EOS_ID
from rosettamt.search.hypothesis import Hypothesis
from rosettamt.search.stepper import NEG_INF, Stepper, constrain, length_limits


def length_penalty_divisor(length: Tensor, length_norm: str, alpha: float) -> Tensor:
    """What a hypothesis's log-prob is divided by; length counts EOS. Works on tensors of lengths."""
    length = length.double()
    if length_norm == LengthNorm.none:
        return torch.ones_like(length)
    if length_norm == LengthNorm.average:
        return length
    if length_norm == LengthNorm.gnmt:
        return ((5.0 + length) / 6.0) ** alpha
    raise ValueError(f"unknown length_norm {length_norm!r} (gnmt, average or none)")


def normalised_score(log_prob: float, length: int, length_norm: str, alpha: float) -> float:
    """The score beams are ranked by once finished (see the module docstring)."""
    if length_norm == LengthNorm.average:
        return log_prob / length
    if length_norm == LengthNorm.gnmt:
        return log_prob / ((5.0 + length) / 6.0) ** alpha
    return log_prob


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
    if length_norm not in (LengthNorm.gnmt, LengthNorm.average, LengthNorm.none):
        raise ValueError(f"unknown length_norm {length_norm!r} (gnmt, average or none)")
    k, nbest = beam_size, min(nbest, beam_size)
    B, device = src.shape[0], src.device
    memory = model.encode(src, src_mask)  # (B, S, D)
    max_len, min_lens = length_limits(model, src_mask, max_len_a, max_len_b, min_len)  # (B,) CPU
    max_len_dev = max_len.to(device)
    # Every sentence starts with one row (BOS); the first step fans it out into k beams.
    stepper = Stepper(model, memory, src_mask, beam_size=1, use_cache=use_cache)

    alive = torch.arange(B)  # original sentence index of each working sentence (CPU)
    prefix = torch.full((B, 1), BOS_ID, dtype=torch.long, device=device)  # (B'*kk, t+1)
    scores = torch.zeros(B, 1, device=device)  # (B', kk) cumulative log-probs of the live beams
    n_finished = torch.zeros(B, dtype=torch.long, device=device)  # (B',)
    nth_best = torch.full((B,), NEG_INF, device=device)  # (B',) nbest-th best finished score
    finished: List[List[Hypothesis]] = [[] for _ in range(B)]

    for t in range(int(max_len.max()) + 1 if B else 0):
        Bw, kk = scores.shape  # kk rows per sentence: 1 at the first step, then k
        lp = stepper.log_probs(prefix)  # (B'*kk, V)
        V = lp.shape[-1]
        lp = lp.view(Bw, kk, V)  # (B'*kk, V) -> (B', kk, V)
        constrain(lp, t, max_len, min_lens)
        cand = lp.add_(scores[:, :, None]).view(Bw, kk * V)  # cumulative log-probs, (B', kk*V)
        top_scores, top_idx = cand.topk(min(2 * k, kk * V), dim=1)  # (B', 2k), best first
        top_beam, top_tok = top_idx // V, top_idx % V  # (B', 2k): parent row within the sentence, token
        if top_idx.shape[1] < k:  # a vocabulary smaller than the beam: pad with impossible candidates
            pad = k - top_idx.shape[1]
            top_scores = torch.cat([top_scores, top_scores.new_full((Bw, pad), NEG_INF)], dim=1)
            top_beam = torch.cat([top_beam, top_beam.new_zeros(Bw, pad)], dim=1)
            top_tok = torch.cat([top_tok, top_tok.new_full((Bw, pad), BOS_ID)], dim=1)
        is_eos = top_tok == EOS_ID

        # 1. EOS among the best k candidates: a finished hypothesis (Python bookkeeping only here).
        ended = is_eos[:, :k] & torch.isfinite(top_scores[:, :k])  # (B', k)
        if ended.any():
            bs, js = ended.nonzero(as_tuple=True)
            rows = bs * kk + top_beam[bs, js]  # parent hypothesis rows
            token_lists = prefix.index_select(0, rows)[:, 1:].tolist()  # (F, t) without BOS
            lp_sums = top_scores[bs, js].tolist()
            touched = set()
            for b, tokens, lp_sum in zip(bs.tolist(), token_lists, lp_sums):
                sent = int(alive[b])
                score = normalised_score(lp_sum, len(tokens) + 1, length_norm, length_penalty)
                finished[sent].append(Hypothesis(tokens, score, lp_sum))
                touched.add(b)
            n_finished += ended.sum(dim=1)
            for b in touched:
                ranked = sorted((h.score for h in finished[int(alive[b])]), reverse=True)
                if len(ranked) >= nbest:
                    nth_best[b] = ranked[nbest - 1]

        # 2. The best k non-EOS candidates continue (EOS ones pushed behind by their position key).
        position = torch.arange(is_eos.shape[1], device=device)
        order = (position + is_eos.long() * is_eos.shape[1]).argsort(dim=1)[:, :k]  # (B', k)
        new_scores = top_scores.gather(1, order)  # (B', k)
        new_beam, new_tok = top_beam.gather(1, order), top_tok.gather(1, order)
        new_scores = new_scores.masked_fill(new_tok == EOS_ID, NEG_INF)  # fewer than k non-EOS left

        # 3. Done sentences: k finished, max_len reached, or no live beam can still enter the n-best.
        future = torch.stack([torch.full_like(max_len_dev, t + 2), max_len_dev + 1])  # (2, B') lengths with EOS
        divisor = length_penalty_divisor(future, length_norm, length_penalty).max(dim=0).values  # (B',)
        best_live = new_scores.max(dim=1).values  # (B',) <= 0: a larger divisor is the best case
        hopeless = best_live.double() / divisor < nth_best.double()
        done = ((n_finished >= k) | (max_len_dev <= t) | hopeless).cpu()  # (B',)
        if done.all():
            break
        keep = (~done).nonzero().squeeze(1)  # (B'',) CPU
        if done.any():
            keep_dev = keep.to(device)
            stepper.select_sentences(keep_dev)
            alive, max_len, min_lens = alive[keep], max_len[keep], min_lens[keep]
            max_len_dev, n_finished, nth_best = max_len_dev[keep_dev], n_finished[keep_dev], nth_best[keep_dev]
            new_scores, new_beam, new_tok = new_scores[keep_dev], new_beam[keep_dev], new_tok[keep_dev]
            prefix = prefix.view(Bw, kk, -1)[keep_dev].view(keep.numel() * kk, -1)  # (B'', kk, t+1) -> (B''*kk, t+1)
        rows = (torch.arange(new_beam.shape[0], device=device)[:, None] * kk + new_beam).view(-1)  # (B''*k,)
        stepper.reorder(rows, k)
        prefix = torch.cat([prefix.index_select(0, rows), new_tok.view(-1, 1)], dim=1)  # (B''*k, t+2)
        scores = new_scores

    results = []
    for hyps in finished:
        hyps.sort(key=lambda h: h.score, reverse=True)
        results.append(hyps[:nbest] or [Hypothesis([], NEG_INF, NEG_INF)])
    return results
