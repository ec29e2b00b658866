"""The counters of a training run: what a checkpoint's ``step``, ``epoch`` and ``trainer`` entries hold;
and :class:`TrainResult`, what a finished run returns.

Kept apart from the Trainer so that resuming is one ``load_state_dict`` and the checkpoint
format is written in one place (old checkpoints must keep resuming).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

from torch import nn


@dataclass
class TrainState:
    """Where a run stands; everything here but the last three fields is saved in checkpoints."""

    step: int = 0  # optimizer steps taken
    epoch: int = 0  # finished epochs
    best_bleu: Optional[float] = None  # best validation BLEU so far
    bad_validations: int = 0  # validations in a row without a better BLEU (early stopping)
    elapsed_before: float = 0.0  # training seconds of earlier sessions of this run
    val_step: int = -1  # step of the latest validation
    # this session only:
    saved_step: int = -1  # step whose state last.pt holds, as far as this session knows
    last_val: Optional[Dict[str, float]] = None  # scores of the latest validation (rank 0)
    started: Optional[float] = field(default=None, repr=False, compare=False)  # perf_counter of start_clock

    def start_clock(self) -> None:
        """Training time counts from here (setup, data preparation and compilation excluded)."""
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        """Training seconds of the whole run: earlier sessions plus this one since :meth:`start_clock`."""
        now = 0.0 if self.started is None else time.perf_counter() - self.started
        return self.elapsed_before + now

    def record_validation(self, scores: Dict[str, float]) -> bool:
        """Note a validation's scores (rank 0); True when its BLEU is the best so far."""
        bleu = scores["bleu"]
        improved = self.best_bleu is None or bleu > self.best_bleu
        if improved:
            self.best_bleu, self.bad_validations = bleu, 0
        else:
            self.bad_validations += 1
        self.last_val = scores
        return improved

    def val_bleu(self) -> Optional[float]:
        """BLEU of a validation made at this very step, else None (what a checkpoint records)."""
        return self.last_val["bleu"] if self.last_val and self.val_step == self.step else None

    def state_dict(self) -> Dict[str, Any]:
        """The checkpoint entries ``step``, ``epoch`` and ``trainer`` (the format every checkpoint has)."""
        return {
            "step": self.step,
            "epoch": self.epoch,
            "trainer": {"best_bleu": self.best_bleu, "bad_validations": self.bad_validations,
                        "elapsed": self.elapsed(), "val_step": self.val_step},
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`; ``state`` may be a whole checkpoint."""
        t = state["trainer"]
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self.best_bleu = None if t["best_bleu"] is None else float(t["best_bleu"])
        self.bad_validations = int(t["bad_validations"])
        self.elapsed_before, self.val_step = float(t["elapsed"]), int(t["val_step"])
        self.started = None


@dataclass
class TrainResult:
    model: nn.Module  # the trained weights (plain module, not DDP / compiled)
    step: int
    epoch: int
    stop_reason: str
    best_checkpoint: Optional[Path] = None
    results: Dict[str, Any] = field(default_factory=dict)  # test split -> scores (rank 0)
