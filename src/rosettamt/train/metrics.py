"""What a run reports: ``metrics.jsonl`` (+ TensorBoard when installed) and ``curves.png``.

Every record carries ``step`` and ``time`` (wall-clock seconds of training so far, summed
over resumptions), so BLEU can be plotted against steps or against time.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
from pathlib import Path
from typing import Any, Dict, List, Optional

from rosettamt.atomic import atomic_open, atomic_write_text
from rosettamt.errors import UserError

log = logging.getLogger(__name__)


class MetricsLog:
    """Append-only JSON lines, one record per log interval (``kind: train``) and validation (``kind: val``)."""

    def __init__(self, run_dir: Path, tensorboard: bool = True) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))
            except ImportError:  # optional extra: pip install rosettamt[tensorboard]
                pass

    def truncate_after(self, step: int) -> None:
        """Drop records past ``step``: a resumed run redoes those steps and would log them twice."""
        if not self.path.is_file():
            return
        keep = [line for line in _lines(self.path) if line.strip() and _step_of(line) <= step]
        atomic_write_text(self.path, "".join(line + "\n" for line in keep))  # killed now: the old file stays

    def write(self, record: Dict[str, Any]) -> None:
        # never through a link or into a FIFO: the run folder may be someone else's
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(self.path, flags, 0o666)
        except OSError as err:
            link = " (a symbolic link is refused)" if err.errno == errno.ELOOP else ""
            raise UserError(f"cannot append to {self.path}: {err.strerror}{link}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise UserError(f"cannot append to {self.path}: not a regular file")
        try:
            with os.fdopen(fd, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as err:  # a full disk
            raise UserError(f"cannot append to {self.path}: {err.strerror or err}") from None
        if self._tb is not None:
            kind = record.get("kind", "train")
            for key, value in record.items():
                if key not in ("kind", "step") and isinstance(value, (int, float)):
                    self._tb.add_scalar(f"{kind}/{key}", value, record["step"])
                elif key == "directions" and isinstance(value, dict):  # multilingual: val/en-de/bleu, ...
                    for name, scores in value.items():
                        for k, v in scores.items():
                            self._tb.add_scalar(f"{kind}/{name}/{k}", v, record["step"])

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def _lines(path: Path) -> List[str]:
    """The file's lines; bytes that are not UTF-8 (a torn or damaged line) become U+FFFD."""
    return Path(path).read_bytes().decode("utf-8", errors="replace").splitlines()


def _step_of(line: str) -> float:
    try:
        return _step_of_record(json.loads(line))
    except ValueError:
        return float("inf")  # unreadable (half-written or damaged) line: dropped


def _step_of_record(record: Any) -> float:
    step = record.get("step", 0) if isinstance(record, dict) else None
    return float(step) if isinstance(step, (int, float)) and not isinstance(step, bool) else float("inf")


def read_metrics(path: Path) -> List[Dict[str, Any]]:
    """All readable records of a metrics.jsonl: JSON objects with a numeric step (a torn or
    damaged line is skipped)."""
    records = []
    for line in _lines(path):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if _step_of_record(record) != float("inf"):
            records.append(record)
    return records


def plot_curves(metrics_path: Path, out_path: Path) -> Optional[Path]:
    """Training/validation loss and validation BLEU against steps, as a PNG (matplotlib Agg)."""
    if not Path(metrics_path).is_file():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    train = [r for r in records if r.get("kind") == "train" and _number(r.get("loss"))]
    val = [r for r in records if r.get("kind") == "val" and _number(r.get("loss")) and _number(r.get("bleu"))]
    fig, (ax_loss, ax_bleu) = plt.subplots(1, 2, figsize=(11, 4))
    if train:
        ax_loss.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss")
    if val:
        ax_loss.plot([r["step"] for r in val], [r["loss"] for r in val], "o-", label="val loss")
        ax_bleu.plot([r["step"] for r in val], [r["bleu"] for r in val], "o-", color="tab:green")
    ax_loss.set(xlabel="step", ylabel="loss (label-smoothed)", title="loss")
    ax_loss.legend(loc="upper right")
    ax_bleu.set(xlabel="step", ylabel="BLEU", title="validation BLEU")
    for ax in (ax_loss, ax_bleu):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        with atomic_open(Path(out_path)) as f:  # a reader never sees half a PNG
            fig.savefig(f, dpi=100, format="png")
    finally:
        plt.close(fig)
    return Path(out_path)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
