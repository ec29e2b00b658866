"""The end of a run: average, pick the best checkpoint, score it on the test splits, write results.json."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch

from rosettamt.atomic import atomic_write_text
from rosettamt.checkpoint import LAST, find_best_checkpoint
from rosettamt.config import TrainConfig
from rosettamt.train.average import ScoreFn, average_at_end
from rosettamt.train.outputs import RunOutputs
from rosettamt.train.state import TrainState

log = logging.getLogger("rosettamt.train")


def format_table(results: Dict[str, Dict[str, Any]]) -> str:
    """split | BLEU | chrF | signature, as a Markdown table (readable in a terminal and in a README)."""
    rows = [("split", "BLEU", "chrF", "signature")]
    for split, r in results.items():
        rows.append((split, f"{r['bleu']:.2f}", f"{r['chrf']:.2f}", str(r.get("bleu_signature", ""))))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def evaluate_test_splits(checkpoint: Path, cfg: TrainConfig, run_dir: Path,
                         device: torch.device) -> Dict[str, Dict[str, Any]]:
    """Decode and score ``cfg.data.test_splits`` with the ``decode`` config; print + save the scores."""
    from rosettamt.evaluate import evaluate_splits
    from rosettamt.train.progress import wants_bar

    results = evaluate_splits(checkpoint, cfg.data, cfg.data.test_splits, cfg.decode, cfg.metric, device,
                              output_dir=Path(run_dir) / "test", progress=wants_bar(cfg.trainer))
    if not results:
        log.warning("none of the test splits %s exists for this corpus; nothing evaluated", cfg.data.test_splits)
        return {}
    payload = {"checkpoint": str(checkpoint), "decode": cfg.decode.strategy.value, "splits": results}
    atomic_write_text(Path(run_dir) / "results.json", json.dumps(payload, indent=1))
    table = format_table(results)
    print(f"\ntest scores of {checkpoint.name} ({cfg.decode.strategy.value} decoding):\n{table}", flush=True)
    log.info("test scores of %s: %s", checkpoint,  # the table went to stdout; one line for train.log
             ", ".join(f"{k} BLEU {r['bleu']:.2f} chrF {r['chrf']:.2f}" for k, r in results.items()))
    return results


def finish_run(cfg: TrainConfig, outputs: RunOutputs, state: TrainState, score: ScoreFn,
               device: torch.device) -> Tuple[Optional[Path], Dict[str, Dict[str, Any]]]:
    """Rank 0, after the last checkpoint: averaged.pt (trainer.average_last), the final curves, the best
    checkpoint and, with trainer.evaluate_at_end, its test scores. Returns (best checkpoint, scores)."""
    tc, run_dir = cfg.trainer, outputs.run_dir
    if tc.average_last > 0:
        record = average_at_end(outputs.saver, tc.average_last, cfg.model, device, score, state)
        if record is not None:
            outputs.write(record)
    outputs.close()
    if not (outputs.saver.dir / LAST).is_file():
        return None, {}
    best = find_best_checkpoint(run_dir)
    log.info("best checkpoint: %s", best)
    if not (tc.evaluate_at_end and cfg.data.test_splits):
        return best, {}
    return best, evaluate_test_splits(best, cfg, run_dir, device)
