"""Ctrl-C and SIGTERM during training: finish the step, save last.pt, say how to resume, exit 130 / 143.

While the loop runs, SIGINT and SIGTERM only set a flag, which the loop reads after each step
(:meth:`StopSignals.poll`): the state saved is that of a finished step, so resuming from it is
exact. Under DDP the flag is all-reduced at every step boundary (on a CPU gloo group, so no GPU
sync), and every rank stops after the same step. A second signal aborts at once; the last
checkpoint on disk stays as it was (checkpoints are written atomically).
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any, Dict, List, Optional

import torch
import torch.distributed as dist

from rosettamt.errors import Interrupted
from rosettamt.train import distributed as D

log = logging.getLogger("rosettamt.train")

SIGNALS = (signal.SIGINT, signal.SIGTERM)
STOP_REASONS = {signal.Signals(s).name for s in SIGNALS}  # what fit's stop reason is then


class StopSignals:
    """A context manager: inside it SIGINT / SIGTERM ask the loop to stop; outside, they act as before."""

    def __init__(self, distributed: bool = False) -> None:
        self.signum: Optional[int] = None  # the first signal this process received
        self._previous: Dict[int, Any] = {}
        self._group = None
        if distributed and dist.is_initialized():
            # NCCL reduces on the GPU (a sync per step); a gloo group reduces on the CPU
            self._group = dist.new_group(backend="gloo") if dist.get_backend() != "gloo" else dist.group.WORLD

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        """Give SIGINT / SIGTERM their previous handlers back (again: no-op)."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: Optional[FrameType]) -> None:
        if self.signum is not None:  # the second one: abort now, whatever the loop is doing
            self.release()
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise Interrupted(signum, f"terminated ({signal.Signals(signum).name}, a second signal: aborted at once)")
        self.signum = signum
        log.warning("%s received: finishing this step, then saving last.pt (send it again to abort at once)",
                    signal.Signals(signum).name)

    def poll(self) -> Optional[int]:
        """The signal every rank stops for after this step, or None.

        Under DDP a collective: every rank calls it at every step boundary.
        """
        if self._group is None:
            return self.signum
        flag = torch.tensor([self.signum or 0], dtype=torch.int64)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self._group)
        return int(flag.item()) or None


def reason(signum: Optional[int]) -> str:
    """fit's stop reason for a signal ('' for none)."""
    return signal.Signals(signum).name if signum else ""


def interrupted(signum: int, state: Any, epoch: float, run_dir: Path, outputs: Any, world_size: int) -> Interrupted:
    """After the stop's checkpoint: rank 0 (the one with ``outputs``) closes its files and logs where the
    run stopped and the command that resumes it. Returns what ends the command (exit 128 + signum)."""
    name, saved = signal.Signals(signum).name, state.saved_step == state.step > 0
    if outputs is not None:
        outputs.close()  # the final curves.png; metrics.jsonl closed
        held = "checkpoints/last.pt holds it" if saved else "nothing saved (no step finished)"
        log.warning("%s: stopped after step %d (epoch %.2f); %s", name, state.step, epoch, held)
        if saved:
            log.warning("resume with: %s", resume_command(run_dir, world_size))
    D.barrier()
    verb = "interrupted" if signum == signal.SIGINT else "terminated"
    return Interrupted(signum, f"{verb} ({name}) after step {state.step}"
                               + ("; resume with trainer.resume=true (command above)" if saved else ""))


def resume_command(run_dir: Path, world_size: int = 1) -> str:
    """The command line that continues this run: its own options, the run directory, trainer.resume=true."""
    prog = "rosettamt-train" if world_size == 1 else f"torchrun --nproc_per_node={world_size} -m rosettamt.train"
    drop = ("hydra.run.dir", "trainer.resume", "trainer.resume_from")
    given = cli_overrides()
    args = ["<the same options>"] if given is None else [
        shlex.quote(a) for a in given if a.split("=", 1)[0].lstrip("+~") not in drop]
    rel = os.path.relpath(run_dir)
    where = rel if not rel.startswith("..") else str(run_dir)
    return " ".join([prog, *args, shlex.quote(f"hydra.run.dir={where}"), "trainer.resume=true"])


def cli_overrides() -> Optional[List[str]]:
    """The overrides this run was started with (Hydra's record); None outside the CLI."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else None
