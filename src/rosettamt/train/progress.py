"""Progress: a tqdm bar on a terminal, plain log lines otherwise (files, pipes, CI)."""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Any, Dict, Optional

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from rosettamt.config import Progress as Mode
from rosettamt.config import TrainerConfig

log = logging.getLogger("rosettamt.train")


def hms(seconds: Optional[float]) -> str:
    if seconds is None:
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _si(x: float) -> str:
    return f"{x / 1000:.1f}k" if x >= 1000 else f"{x:.0f}"


def wants_bar(tc: TrainerConfig) -> bool:
    """trainer.progress=bar, or auto on a terminal."""
    return tc.progress == Mode.bar or (tc.progress == Mode.auto and sys.stderr.isatty())


class Progress:
    """Step counter shown as a bar (tc.progress=bar, or auto on a TTY) and as log lines per interval."""

    def __init__(self, tc: TrainerConfig, step: int, enabled: bool = True) -> None:
        self.enabled = enabled
        self.max_steps = tc.max_steps if tc.max_steps > 0 else None
        self.max_time = tc.max_time if tc.max_time > 0 else None
        self.use_bar = enabled and wants_bar(tc)
        self.start = step
        self.bar: Optional[tqdm] = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> "Progress":
        if self.use_bar:
            self.bar = self._stack.enter_context(
                tqdm(total=self.max_steps, initial=self.start, unit="step", desc="train", dynamic_ncols=True,
                     file=sys.stderr, smoothing=0.1))
            # log records print above the bar instead of breaking it
            self._stack.enter_context(logging_redirect_tqdm())
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stack.close()

    def update(self, step: int) -> None:
        if self.bar is not None:
            self.bar.update(step - self.bar.n)

    def remaining(self, r: Dict[str, Any]) -> Optional[float]:
        """Seconds left until the first stop condition we can foresee (steps or time), after record ``r``."""
        left = []
        if self.max_steps is not None and r["steps_per_s"] > 0:
            left.append((self.max_steps - r["step"]) / r["steps_per_s"])
        if self.max_time is not None:
            left.append(self.max_time - r["time"])
        return max(0.0, min(left)) if left else None

    def log(self, r: Dict[str, Any]) -> None:
        """One interval's numbers: on the bar's postfix, and as a log line (train.log keeps them)."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(f"ep {r['epoch']:.2f} loss {r['loss']:.3f} lr {r['lr']:.2e} "
                                     f"{_si(r['tgt_tok_per_s'] + r['src_tok_per_s'])} tok/s", refresh=False)
        total = f"/{self.max_steps}" if self.max_steps else ""
        log.info("step %d%s | epoch %.2f | loss %.3f | ppl %.2f | lr %.2e | %s tok/s | elapsed %s | "
                 "remaining %s", r["step"], total, r["epoch"], r["loss"], r["ppl"], r["lr"],
                 _si(r["tgt_tok_per_s"] + r["src_tok_per_s"]), hms(r["time"]), hms(self.remaining(r)))
        if "rdrop_kl" in r:  # trainer.rdrop_alpha > 0: loss/ppl above are the CE part; this is the KL part
            log.info("step %d: R-Drop KL %.4f per target token", r["step"], r["rdrop_kl"])
