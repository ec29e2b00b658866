"""Label-smoothed cross-entropy that ignores padding, summed over target tokens.

The sum (not the mean) is returned so that the caller can normalise once per optimizer
step by the number of target tokens of all micro-batches and ranks together: every
token then weighs the same whatever batch it landed in.

With a large vocabulary the loss is a good share of a CPU training step, so its gradient
is written out by hand (softmax minus the smoothed target) instead of letting autograd
chain log_softmax, gather and mean: a few passes over the (tokens, vocab) logits fewer.
"""

from __future__ import annotations

from typing import Any, Callable, Tuple

import torch

# (logits (..., V), target (...), smoothing, pad id) -> (summed loss, summed NLL): what the trainer calls
LossFn = Callable[[torch.Tensor, torch.Tensor, float, int], Tuple[torch.Tensor, torch.Tensor]]


class _SmoothedCrossEntropy(torch.autograd.Function):
    """(loss sum, NLL sum) over kept rows; d loss_i / d z_ij = p_ij - (1 - eps) [j = t_i] - eps / V."""

    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, target: torch.Tensor, keep: torch.Tensor,
                eps: float) -> Tuple[torch.Tensor, torch.Tensor]:
        logp = torch.log_softmax(logits, dim=-1)  # (N, V): one fused pass (logsumexp + sub is three)
        nll = -logp.gather(1, target.unsqueeze(1)).squeeze(1)  # (N,) -log p(target)
        uniform = -logp.mean(dim=-1)  # (N,) -mean_j log p_j: cross-entropy to the uniform target
        loss = (1.0 - eps) * nll + eps * uniform
        ctx.save_for_backward(logp, target, keep)
        ctx.eps = eps
        zero = torch.zeros((), dtype=loss.dtype, device=loss.device)
        return torch.where(keep, loss, zero).sum(), torch.where(keep, nll, zero).sum()

    @staticmethod
    def backward(ctx: Any, g_loss: torch.Tensor, g_nll: torch.Tensor) -> Tuple[Any, ...]:
        logp, target, keep = ctx.saved_tensors
        eps, V = ctx.eps, logp.size(-1)
        w = keep.to(logp.dtype)  # (N,) padding rows get no gradient
        grad = logp.exp()  # (N, V) softmax; out of place so the graph can be backpropagated twice
        grad.mul_(((g_loss + g_nll) * w).unsqueeze(1)).sub_((g_loss * eps / V) * w.unsqueeze(1))
        on_target = -(g_loss * (1.0 - eps) + g_nll) * w  # (N,)
        grad.scatter_add_(1, target.unsqueeze(1), on_target.unsqueeze(1))
        return grad, None, None, None


def label_smoothed_loss(logits: torch.Tensor, target: torch.Tensor, smoothing: float,
                        pad_id: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """(smoothed loss sum, plain NLL sum) over the non-padding positions of ``target``.

    logits: (B, T, V) and target (B, T), or already flat: (K, V) and (K,). The smoothed target
    puts 1 - eps on the label and eps / V on every class (as torch's ``label_smoothing``); the
    NLL sum is what perplexity is computed from. Half-precision logits (autocast) are scored in
    float32.
    """
    V = logits.size(-1)
    flat = logits.reshape(-1, V)  # (B*T, V)
    if flat.dtype in (torch.float16, torch.bfloat16):
        flat = flat.float()
    target = target.reshape(-1)  # (B*T,)
    return _SmoothedCrossEntropy.apply(flat, target, target != pad_id, float(smoothing))


def symmetric_kl(logits_a: torch.Tensor, logits_b: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Sum over kept rows of KL(P_a || P_b) + KL(P_b || P_a), the R-Drop consistency term.

    logits_a, logits_b: (N, V) from two dropout masks of the same batch; keep: (N,) bool. Uses
    KL(p||q) + KL(q||p) = sum_j (p_j - q_j) (log p_j - log q_j): one product instead of two
    KLs. Half-precision logits are scored in float32; autograd differentiates it.
    """
    if logits_a.dtype in (torch.float16, torch.bfloat16):
        logits_a, logits_b = logits_a.float(), logits_b.float()
    logp_a, logp_b = torch.log_softmax(logits_a, dim=-1), torch.log_softmax(logits_b, dim=-1)  # (N, V)
    per_row = ((logp_a.exp() - logp_b.exp()) * (logp_a - logp_b)).sum(-1)  # (N,)
    return torch.where(keep, per_row, torch.zeros_like(per_row)).sum()
