"""Batched greedy search: the most probable next token at every step.

The encoder runs once; each step feeds only the newest token to the decoder (cached K/V), and
a sentence leaves the working batch as soon as it produces EOS, so short sentences stop costing
anything while long ones finish.
"""

from __future__ import annotations

from typing import List

import torch
from torch import Tensor, nn

from rosettamt.data.tokenizer import BOS_ID, EOS_ID
from rosettamt.search.hypothesis import Hypothesis
from rosettamt.search.stepper import Stepper, constrain, length_limits


@torch.inference_mode()
def greedy_search(
    model: nn.Module,
    src: Tensor,
    src_mask: Tensor,
    max_len_a: float,
    max_len_b: int,
    min_len: int = 1,
    use_cache: bool = True,
) -> List[List[Hypothesis]]:
    """Greedy-decode src (B, S) / src_mask (B, S, True = real) -> one [Hypothesis] per sentence, batch order."""
    B, device = src.shape[0], src.device
    memory = model.encode(src, src_mask)  # (B, S, D)
    max_len, min_lens = length_limits(model, src_mask, max_len_a, max_len_b, min_len)  # (B,) CPU
    stepper = Stepper(model, memory, src_mask, use_cache=use_cache)
    alive = torch.arange(B)  # original sentence index of each working row (CPU)
    prefix = torch.full((B, 1), BOS_ID, dtype=torch.long, device=device)  # (B', t+1)
    log_prob = torch.zeros(B, device=device)  # (B',)
    results: List[List[Hypothesis]] = [[] for _ in range(B)]
    for t in range(int(max_len.max()) + 1 if B else 0):
        lp = stepper.log_probs(prefix)  # (B', V)
        constrain(lp[:, None, :], t, max_len, min_lens)  # view (B', 1, V): edits lp in place
        best, token = lp.max(dim=-1)  # (B',), (B',)
        if t >= int(max_len.min()):  # EOS is the only choice at max_len, even at probability 0
            token = token.masked_fill((t >= max_len).to(device), EOS_ID)
        log_prob += best
        prefix = torch.cat([prefix, token[:, None]], dim=1)  # (B', t+2)
        done = (token == EOS_ID).cpu()  # (B',)
        if not done.any():
            continue
        ended = done.nonzero().squeeze(1)  # (F,) CPU
        ended_dev = ended.to(device)
        token_lists = prefix.index_select(0, ended_dev)[:, 1:-1].tolist()  # without BOS and EOS
        for sent, tokens, lp_sum in zip(alive[ended].tolist(), token_lists, log_prob[ended_dev].tolist()):
            results[sent] = [Hypothesis(tokens, lp_sum, lp_sum)]
        keep = (~done).nonzero().squeeze(1)  # (B'',) CPU
        if keep.numel() == 0:
            break
        keep_dev = keep.to(device)
        stepper.select_sentences(keep_dev)
        prefix, log_prob = prefix.index_select(0, keep_dev), log_prob.index_select(0, keep_dev)
        alive, max_len, min_lens = alive[keep], max_len[keep], min_lens[keep]
    return results
