"""Which checkpoints a run keeps: ``last.pt``, the best k by validation BLEU, the last n for averaging.

A state is serialized once per step; the other names it must go by are hard links. The
index is rewritten (atomically) after the files exist and before old ones are deleted, so
a run killed at any moment leaves an index that points at complete files.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional

from rosettamt.checkpoint import LAST, link_checkpoint, read_index, save_checkpoint, write_index

log = logging.getLogger(__name__)


def best_name(step: int, bleu: float) -> str:
    return f"best-step{step:07d}-bleu{bleu:.2f}.pt"


def periodic_name(step: int) -> str:
    return f"step{step:07d}.pt"


class CheckpointSaver:
    """Writes checkpoints into one folder and keeps its index (see rosettamt.checkpoint)."""

    def __init__(self, ckpt_dir: Path, keep_best: int, keep_periodic: int = 0) -> None:
        self.dir = Path(ckpt_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.keep_best = keep_best
        self.keep_periodic = keep_periodic
        for tmp in self.dir.glob(".*.tmp"):  # left by a process killed while writing
            tmp.unlink(missing_ok=True)
        self.index = read_index(self.dir)
        self.index.setdefault("periodic", [])

    def forget_after(self, step: int) -> None:
        """On resume: files written after the resumed step belong to a future that will be redone."""
        for key in ("best", "periodic"):
            stale = [e for e in self.index[key] if e["step"] > step]
            self.index[key] = [e for e in self.index[key] if e["step"] <= step]
            self._remove(stale)
        self.index["selected"] = None  # the end-of-run pick belongs to the run that ended; it is redone
        write_index(self.dir, self.index)

    def is_best(self, bleu: float) -> bool:
        """Would a checkpoint with this BLEU enter the best k?"""
        best = self.index["best"]
        return self.keep_best > 0 and (len(best) < self.keep_best or bleu > min(e["bleu"] for e in best))

    def save(self, state: Dict[str, Any], step: int, last: bool, bleu: Optional[float] = None,
             periodic: bool = False) -> List[Path]:
        """Write ``state`` under every name it earns at this step; returns the paths written."""
        names: List[str] = []
        if bleu is not None and self.is_best(bleu):
            names.append(best_name(step, bleu))
        if periodic and self.keep_periodic > 0:
            names.append(periodic_name(step))
        if last:
            names.append(LAST)
        if not names:
            return []
        first = self.dir / names[0]
        save_checkpoint(state, first)
        for name in names[1:]:
            link_checkpoint(first, self.dir / name)
        stale: List[Dict[str, Any]] = []
        if bleu is not None and best_name(step, bleu) in names:
            entries = [e for e in self.index["best"] if e["step"] != step]
            entries.append({"file": best_name(step, bleu), "step": step, "bleu": bleu})
            entries.sort(key=lambda e: (-e["bleu"], e["step"]))
            self.index["best"], stale_best = entries[: self.keep_best], entries[self.keep_best:]
            stale += stale_best
        if periodic_name(step) in names:
            entries = [e for e in self.index["periodic"] if e["step"] != step]
            entries.append({"file": periodic_name(step), "step": step})
            self.index["periodic"] = entries[-self.keep_periodic:]
            stale += entries[: -self.keep_periodic]
        if last:
            self.index["last"] = {"file": LAST, "step": step}
        write_index(self.dir, self.index)
        self._remove(stale)
        return [self.dir / n for n in names]

    def set_averaged(self, file: str, step: int, bleu: Optional[float], sources: List[str],
                     key: str = "averaged") -> None:
        self.index[key] = {"file": file, "step": step, "bleu": bleu, "sources": sources}
        write_index(self.dir, self.index)

    def set_selected(self, entry: Optional[Dict[str, Any]]) -> None:
        """The run's model as the end-of-run rule picked it (train/select.py); None forgets it."""
        self.index["selected"] = entry
        write_index(self.dir, self.index)

    def _remove(self, entries: List[Dict[str, Any]]) -> None:
        keep = {e["file"] for k in ("best", "periodic") for e in self.index[k]}
        for entry in entries:
            if entry["file"] not in keep:
                (self.dir / entry["file"]).unlink(missing_ok=True)

    def periodic_paths(self) -> List[Path]:
        return [self.dir / e["file"] for e in self.index["periodic"]]

    def best_paths(self) -> List[Path]:
        return [self.dir / e["file"] for e in self.index["best"]]
