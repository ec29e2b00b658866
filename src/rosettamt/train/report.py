"""The end of a run: average, pick the best checkpoint, score it on the test splits, write results.json."""

from __future__ import annotations

import importlib.util
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch

from rosettamt.atomic import atomic_write_text
from rosettamt.checkpoint import LAST, find_best_checkpoint
from rosettamt.config import TrainConfig
from rosettamt.train.average import ScoreFn
from rosettamt.train.outputs import RunOutputs
from rosettamt.train.select import audit, build_candidates, select
from rosettamt.train.state import TrainState

log = logging.getLogger("rosettamt.train")


def format_table(results: Dict[str, Dict[str, Any]]) -> str:
    """split | BLEU | chrF | [paper BLEU |] signature, as a Markdown table (readable in a terminal and in a
    README); the paper-protocol column (metric.paper_protocol) whenever it was computed."""
    paper = any(r.get("paper_bleu") is not None for r in results.values())
    rows = [("split", "BLEU", "chrF") + (("paper BLEU",) if paper else ()) + ("signature",)]
    for split, r in results.items():
        cells = (split, f"{r['bleu']:.2f}", f"{r['chrf']:.2f}")
        if paper:
            cells += ("-" if r.get("paper_bleu") is None else f"{r['paper_bleu']:.2f}",)
        rows.append(cells + (str(r.get("bleu_signature", "")),))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def metric_for_tests(cfg: TrainConfig) -> Tuple[TrainConfig, str]:
    """The config to score the test splits with, and a one-line note: without sacremoses the paper
    protocol is left out (the run's end does not fail after hours of training) and the note says so."""
    if cfg.metric.paper_protocol and importlib.util.find_spec("sacremoses") is None:
        return (replace(cfg, metric=replace(cfg.metric, paper_protocol=False)),
                "paper-protocol BLEU not computed: metric.paper_protocol=true needs sacremoses "
                "(pip install sacremoses)")
    return cfg, ""


def evaluate_test_splits(checkpoint: Path, cfg: TrainConfig, run_dir: Path,
                         device: torch.device) -> Dict[str, Dict[str, Any]]:
    """Decode and score ``cfg.data.test_splits`` with the ``decode`` config; print + save the scores."""
    from rosettamt.evaluate import evaluate_splits
    from rosettamt.train.progress import wants_bar

    cfg, note = metric_for_tests(cfg)  # without sacremoses: no paper protocol (and a warning), not a crash
    if note:
        log.warning(note)
    if cfg.data.langs or cfg.data.pairs:  # multilingual: a table per direction (train/directions.py)
        from rosettamt.train.directions import evaluate_test_directions

        return evaluate_test_directions(checkpoint, cfg, run_dir, device)

    results = evaluate_splits(checkpoint, cfg.data, cfg.data.test_splits, cfg.decode, cfg.metric, device,
                              output_dir=Path(run_dir) / "test", progress=wants_bar(cfg.trainer))
    if not results:
        log.warning("none of the test splits %s exists for this corpus; nothing evaluated", cfg.data.test_splits)
        return {}
    payload = {"checkpoint": str(checkpoint), "decode": cfg.decode.strategy.value, "splits": results}
    atomic_write_text(Path(run_dir) / "results.json", json.dumps(payload, indent=1))
    table = format_table(results)
    print(f"\ntest scores of {checkpoint.name} ({cfg.decode.strategy.value} decoding):\n{table}"
          + (f"\n{note}" if note else ""), flush=True)
    log.info("test scores of %s: %s", checkpoint,  # the table went to stdout; one line for train.log
             ", ".join(f"{k} BLEU {r['bleu']:.2f} chrF {r['chrf']:.2f}" for k, r in results.items()))
    return results


def finish_run(cfg: TrainConfig, outputs: RunOutputs, state: TrainState, score: ScoreFn,
               device: torch.device) -> Tuple[Optional[Path], Dict[str, Dict[str, Any]]]:
    """Rank 0, after the last checkpoint: the averages (trainer.average_last / average_best), the final curves,
    the checkpoint trainer.select picks and, with trainer.evaluate_at_end, its test scores (and every other
    candidate's, into results.json). Returns (picked checkpoint, its scores)."""
    tc, run_dir = cfg.trainer, outputs.run_dir
    candidates, records = build_candidates(cfg, outputs.saver, state, score, device)  # train/select.py
    for record in records:
        outputs.write(record)
    outputs.close()
    if not (outputs.saver.dir / LAST).is_file():
        return None, {}
    chosen = select(cfg, outputs.saver, candidates)
    best = find_best_checkpoint(run_dir)  # the pick of trainer.select when there was one
    log.info("best checkpoint: %s", best)
    if not (tc.evaluate_at_end and cfg.data.test_splits):
        return best, {}
    results = evaluate_test_splits(best, cfg, run_dir, device)
    if chosen is not None and results:
        audit(metric_for_tests(cfg)[0], run_dir, outputs.saver, candidates, chosen, results, device)
    return best, results
