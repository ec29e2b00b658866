"""Loss and throughput over one log interval (what each ``kind: train`` record of metrics.jsonl reports)."""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any, Dict, Iterator, Optional, Union

import torch

from rosettamt.train import distributed as D


class ThroughputMeter:
    """Running sums of one log interval.

    Losses stay tensors on the training device so that no step waits for a ``.item()``;
    :meth:`summary` reads them once per interval (a collective under DDP: every rank calls it).
    """

    loss: torch.Tensor  # summed label-smoothed loss of the interval (float64)
    nll: torch.Tensor  # summed NLL
    kl: Optional[torch.Tensor]  # summed R-Drop consistency term (trainer.rdrop_alpha > 0), else None
    grad_norm: Optional[torch.Tensor]  # of the latest step, when clipping computed it
    src_tokens: int
    tgt_tokens: int
    steps: int
    start: float  # perf_counter at the start of the interval, moved on by paused time

    def __init__(self, device: Union[str, torch.device] = "cpu", world_size: int = 1) -> None:
        self.device = torch.device(device)
        self.world_size = world_size
        self.reset()

    def reset(self) -> None:
        """Start a new interval now."""
        self.loss = torch.zeros((), dtype=torch.float64, device=self.device)
        self.nll = torch.zeros((), dtype=torch.float64, device=self.device)
        self.kl = None
        self.grad_norm = None
        self.src_tokens = self.tgt_tokens = self.steps = 0
        self.start = time.perf_counter()

    def add(self, loss: torch.Tensor, nll: torch.Tensor, src_tokens: int, tgt_tokens: int,
            kl: Optional[torch.Tensor] = None) -> None:
        """One micro-batch: its summed loss and NLL (and R-Drop KL), and its non-padding token counts."""
        self.loss += loss.detach()
        self.nll += nll.detach()
        if kl is not None:
            self.kl = kl.detach().double() if self.kl is None else self.kl + kl.detach()
        self.src_tokens += src_tokens
        self.tgt_tokens += tgt_tokens

    def end_step(self, grad_norm: Optional[torch.Tensor] = None) -> None:
        """One optimizer step done; ``grad_norm`` (before clipping) is reported for the interval's last step."""
        self.steps += 1
        if grad_norm is not None:
            self.grad_norm = grad_norm

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Time spent inside (validation, checkpoints) does not count: tokens/s is of training only."""
        t = time.perf_counter()
        try:
            yield
        finally:
            self.start += time.perf_counter() - t

    def summary(self) -> Dict[str, Any]:
        """Per-token loss / NLL / perplexity over all ranks, the grad norm, tokens/s and steps/s."""
        parts = [self.loss, self.nll, torch.tensor(float(self.tgt_tokens), dtype=torch.float64, device=self.device)]
        if self.kl is not None:  # every rank has one or none: trainer.rdrop_alpha is the same everywhere
            parts.append(self.kl)
        loss, nll, tokens, *kl = D.all_reduce_sum(torch.stack(parts)).tolist()
        seconds = max(time.perf_counter() - self.start, 1e-9)
        tokens = max(tokens, 1.0)
        out = {
            "loss": loss / tokens,
            "nll": nll / tokens,
            "ppl": math.exp(min(nll / tokens, 50.0)),
            "grad_norm": float(self.grad_norm) if self.grad_norm is not None else None,
            "tgt_tok_per_s": tokens / seconds,
            "src_tok_per_s": self.src_tokens * self.world_size / seconds,  # every rank takes as many
            "steps_per_s": self.steps / seconds,
        }
        if kl:  # R-Drop: per target token, before alpha; "loss"/"nll"/"ppl" stay the CE of alpha = 0
            out["rdrop_kl"] = kl[0] / tokens
        return out
