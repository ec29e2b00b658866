"""The loss of one training micro-batch: label-smoothed CE, and R-Drop's consistency term.

With ``trainer.rdrop_alpha = 0`` (the default) this is one forward pass and the label-smoothed
cross-entropy, exactly as the loop always computed it. With alpha > 0 (R-Drop, Liang et al.
2021) the batch goes through the model twice with independent dropout masks (one forward over
the batch stacked on itself) and the loss is

    0.5 * (CE_1 + CE_2) + alpha * 0.25 * (KL(P_1 || P_2) + KL(P_2 || P_1))

summed over the non-padding target tokens: the paper's ``CE_1 + CE_2 + alpha/2 * (KL + KL)``
halved, so the CE part stays on the scale of a single pass (alpha = 0) and alpha means what it
means in the paper (and fairseq). The trainer divides by the batch's target tokens, counted once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from rosettamt.data.batching import Batch
from rosettamt.device import autocast
from rosettamt.train.loss import LossFn, label_smoothed_loss, symmetric_kl


@dataclass
class MicroLoss:
    """Sums over one micro-batch's target tokens: what to backpropagate and what to log."""

    loss: torch.Tensor  # the objective (CE, plus the R-Drop term when on)
    ce: torch.Tensor  # label-smoothed CE (mean of the two passes with R-Drop): comparable with alpha = 0
    nll: torch.Tensor  # NLL, same averaging: perplexity is computed from it
    kl: Optional[torch.Tensor] = None  # R-Drop: 0.5 * (KL(P_1||P_2) + KL(P_2||P_1)), before alpha


def rdrop_loss(logits_a: torch.Tensor, logits_b: torch.Tensor, target: torch.Tensor, smoothing: float,
               pad_id: int, alpha: float, loss_fn: LossFn = label_smoothed_loss) -> MicroLoss:
    """R-Drop's loss from the logits of two passes ((K, V) or (B, T, V) each) and their target."""
    ce_a, nll_a = loss_fn(logits_a, target, smoothing, pad_id)
    ce_b, nll_b = loss_fn(logits_b, target, smoothing, pad_id)
    V = logits_a.size(-1)
    flat_target = target.reshape(-1)
    kl = 0.5 * symmetric_kl(logits_a.reshape(-1, V), logits_b.reshape(-1, V), flat_target != pad_id)
    ce = 0.5 * (ce_a + ce_b)
    return MicroLoss(loss=ce + 0.5 * alpha * kl, ce=ce, nll=0.5 * (nll_a + nll_b), kl=kl)


def _stacked(b: Batch, rows: Optional[torch.Tensor]):
    """The batch on top of itself (2B rows) and the flat row indices of both copies."""
    src, src_mask, tgt_in = (torch.cat([t, t]) for t in (b.src, b.src_mask, b.tgt_in))  # (2B, ...)
    if rows is not None:
        rows = torch.cat([rows, rows + b.tgt_in.numel()])  # (2K,): the second copy starts at B*T
    return src, src_mask, tgt_in, rows


def micro_batch_loss(model: nn.Module, b: Batch, rows: Optional[torch.Tensor], target: torch.Tensor,
                     smoothing: float, pad_id: int, device: torch.device, amp: Optional[torch.dtype],
                     loss_fn: LossFn = label_smoothed_loss, rdrop_alpha: float = 0.0) -> MicroLoss:
    """Forward ``b`` (on the device) through ``model`` and score it against ``target``.

    ``rows``: the flat non-padding positions to project (None: all of them); ``target`` is
    ``tgt_out`` restricted the same way. The caller backpropagates ``loss`` (scaled).
    """
    if rdrop_alpha <= 0:
        with autocast(device, amp):
            logits = model(b.src, b.src_mask, b.tgt_in, rows)  # (K, V); (B, T, V) if rows is None
        loss, nll = loss_fn(logits, target, smoothing, pad_id)
        return MicroLoss(loss=loss, ce=loss, nll=nll)
    with autocast(device, amp):
        logits = model(*_stacked(b, rows))  # (2K, V); (2B, T, V) if rows is None
    first, second = logits.chunk(2, dim=0)  # the two dropout masks' passes
    return rdrop_loss(first, second, target, smoothing, pad_id, rdrop_alpha, loss_fn)
