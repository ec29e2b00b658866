"""Adam/AdamW and the learning-rate schedule: linear warmup, then inverse-sqrt, cosine or constant."""

from __future__ import annotations

import logging
import math
from typing import Callable

import torch
from torch import nn

from rosettamt.config import OptimConfig, OptimName, Schedule
from rosettamt.errors import UserError

log = logging.getLogger(__name__)


def build_optimizer(model: nn.Module, cfg: OptimConfig, device: torch.device) -> torch.optim.Optimizer:
    """Adam or AdamW; weight decay only on matrices (not biases or norm gains); fused kernels if possible."""
    if len(cfg.betas) != 2:
        raise UserError(f"optim.betas must have two values, got {list(cfg.betas)}")
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    cls = torch.optim.AdamW if cfg.name == OptimName.adamw else torch.optim.Adam
    kwargs = dict(lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)
    want_fused = cfg.fused if cfg.fused is not None else device.type in ("cuda", "cpu")
    if want_fused:
        try:
            return cls(groups, fused=True, **kwargs)
        except (RuntimeError, TypeError, ValueError) as err:
            if cfg.fused:
                raise UserError(f"optim.fused=true is not supported here: {err}") from None
            log.debug("fused %s unavailable (%s); using foreach", cls.__name__, err)
    return cls(groups, foreach=True, **kwargs)


def lr_factor(cfg: OptimConfig, max_steps: int) -> Callable[[int], float]:
    """Multiplier of ``cfg.lr`` for the optimizer step with index ``s`` (0-based), for LambdaLR.

    Step s is the (s+1)-th update, so warmup climbs (s+1)/warmup and the first update
    already has a non-zero learning rate; the peak is reached at step warmup_steps.
    """
    warmup = max(0, cfg.warmup_steps)
    if cfg.schedule == Schedule.cosine and max_steps <= 0:
        raise UserError("optim.schedule=cosine decays to optim.min_lr at trainer.max_steps; set trainer.max_steps")
    floor = cfg.min_lr / cfg.lr if cfg.lr > 0 else 0.0

    def factor(s: int) -> float:
        n = s + 1
        if n < warmup:
            return n / warmup
        if cfg.schedule == Schedule.inverse_sqrt:
            return math.sqrt(max(warmup, 1) / n)
        if cfg.schedule == Schedule.cosine:
            progress = min(1.0, (n - warmup) / max(1, max_steps - warmup))
            return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0  # constant

    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig,
                    max_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """LambdaLR over :func:`lr_factor`; its state_dict is plain data (the function is not stored)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg, max_steps))
