"""Rank 0's files of a run: config.yaml, metrics.jsonl, curves.png, the checkpoint folder; and its val set."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Dict, Optional

from omegaconf import OmegaConf

from rosettamt import config as C
from rosettamt.atomic import atomic_write_text, writable_dir
from rosettamt.train.metrics import MetricsLog, plot_curves
from rosettamt.train.saver import CheckpointSaver
from rosettamt.train.state import TrainState
from rosettamt.train.validate import ValSet, build_valset

log = logging.getLogger("rosettamt.train")

PLOT_EVERY_S = 120.0  # curves.png is redrawn at a validation at most this often, and at the end


class RunOutputs:
    """What rank 0 writes and validates with; the other ranks have none.

    A run resumed at ``step`` forgets the records and checkpoints of later steps: it redoes them.
    """

    def __init__(self, cfg: C.TrainConfig, run_dir: Path, ckpt_dir: Path, data: Any, step: int) -> None:
        self.run_dir = writable_dir(Path(run_dir), "hydra.run.dir")
        atomic_write_text(self.run_dir / "config.yaml", OmegaConf.to_yaml(C.to_dict(cfg)))
        self.metrics = MetricsLog(self.run_dir)
        self.saver = CheckpointSaver(ckpt_dir, cfg.trainer.keep_best, cfg.trainer.average_last)
        if step > 0:
            self.metrics.truncate_after(step)
            self.saver.forget_after(step)
        val_split = cfg.data.val_split
        # multilingual: one val set per direction that has the val split (trainer.val_max_sentences each)
        self.valset: Optional[ValSet] = None
        self.valsets: Optional[Dict[str, ValSet]] = None
        if getattr(data, "directions", None) is not None:
            self.valsets = {name: build_valset(ids[val_split], data.dir_corpus[name][val_split],
                                               cfg.trainer.max_tokens, cfg.trainer.val_max_sentences)
                            for name, ids in data.dir_ids.items() if val_split in ids}
        else:
            self.valset = build_valset(data.ids[val_split], data.corpus[val_split], cfg.trainer.max_tokens,
                                       cfg.trainer.val_max_sentences)
        self.last_plot = 0.0  # perf_counter of the latest curves.png

    def val_sentences(self) -> int:
        """Sentences each validation decodes for BLEU (all directions together)."""
        if self.valsets is not None:
            return sum(len(v.src_ids) for v in self.valsets.values())
        return len(self.valset.src_ids)

    def write(self, record: Dict[str, Any]) -> None:
        self.metrics.write(record)

    def plot(self, force: bool = True) -> None:
        """Redraw curves.png; unless ``force``, at most every PLOT_EVERY_S (matplotlib is slow)."""
        if force or time.perf_counter() - self.last_plot > PLOT_EVERY_S:
            plot_curves(self.metrics.path, self.run_dir / "curves.png")
            self.last_plot = time.perf_counter()

    def validation(self, scores: Dict[str, Any], state: TrainState, epoch: float, seconds: float,
                   improved: bool) -> None:
        """A validation's ``kind: val`` record: into metrics.jsonl, as a log line, now and then onto the curves."""
        self.write({"kind": "val", "step": state.step, "epoch": epoch, **scores, "best_bleu": state.best_bleu,
                    "val_seconds": seconds, "time": state.elapsed()})
        per_direction = ""
        if "directions" in scores:  # multilingual: BLEU/chrF are the directions' mean; each one follows
            per_direction = " | " + ", ".join(f"{name} {d['bleu']:.2f}/{d['chrf']:.2f}"
                                              for name, d in scores["directions"].items())
        log.info("validation step %d: loss %.3f | ppl %.2f | BLEU %.2f | chrF %.2f | best %.2f%s "
                 "(%d sentences, %.1fs)%s", state.step, scores["loss"], scores["ppl"], scores["bleu"],
                 scores["chrf"], state.best_bleu, "" if improved else f" | no gain x{state.bad_validations}",
                 scores["sentences"], seconds, per_direction)
        self.plot(force=False)

    def close(self) -> None:
        """The final curves.png; then metrics.jsonl (and TensorBoard) is closed."""
        self.plot()
        self.metrics.close()
