"""A multilingual run's test evaluation: every direction on each test split it has, a table per direction.

``results.json`` holds ``directions`` ({"en-de": {split: scores}}) and ``mean`` ({split: mean BLEU
and chrF over the directions that have the split}); the printed table has one row per direction
and split, then the means. Bilingual runs never come here (train/report.py).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict

import torch

from rosettamt.atomic import atomic_write_text
from rosettamt.config import TrainConfig

log = logging.getLogger("rosettamt.train")


def mean_scores(results: Dict[str, Dict[str, Dict[str, Any]]]) -> Dict[str, Dict[str, Any]]:
    """{split: {"bleu", "chrf", "directions"}}: each split's mean over the directions scored on it."""
    out: Dict[str, Dict[str, Any]] = {}
    splits = list(dict.fromkeys(s for per in results.values() for s in per))
    for split in splits:
        rows = [per[split] for per in results.values() if split in per]
        out[split] = {"bleu": sum(r["bleu"] for r in rows) / len(rows),
                      "chrf": sum(r["chrf"] for r in rows) / len(rows), "directions": len(rows)}
    return out


def format_direction_table(results: Dict[str, Dict[str, Dict[str, Any]]]) -> str:
    """direction | split | BLEU | chrF | signature (Markdown), then one ``mean`` row per split."""
    rows = [("direction", "split", "BLEU", "chrF", "signature")]
    for pair, per in results.items():
        for split, r in per.items():
            rows.append((pair, split, f"{r['bleu']:.2f}", f"{r['chrf']:.2f}", str(r.get("bleu_signature", ""))))
    for split, m in mean_scores(results).items():
        rows.append((f"mean of {m['directions']}", split, f"{m['bleu']:.2f}", f"{m['chrf']:.2f}", ""))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def evaluate_test_directions(checkpoint: Path, cfg: TrainConfig, run_dir: Path,
                             device: torch.device) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """Decode and score every direction on ``cfg.data.test_splits``; print + save the per-direction tables."""
    from rosettamt.evaluate import evaluate_directions
    from rosettamt.train.progress import wants_bar

    results = evaluate_directions(checkpoint, cfg.data, cfg.data.test_splits, cfg.decode, cfg.metric, device,
                                  output_dir=Path(run_dir) / "test", progress=wants_bar(cfg.trainer))
    if not results:
        log.warning("none of the test splits %s exists for this corpus; nothing evaluated", cfg.data.test_splits)
        return {}
    payload = {"checkpoint": str(checkpoint), "decode": cfg.decode.strategy.value, "directions": results,
               "mean": mean_scores(results)}
    atomic_write_text(Path(run_dir) / "results.json", json.dumps(payload, indent=1))
    table = format_direction_table(results)
    print(f"\ntest scores of {checkpoint.name} ({cfg.decode.strategy.value} decoding), per direction:\n{table}",
          flush=True)
    log.info("test scores of %s: %s", checkpoint, ", ".join(
        f"{pair} {split} BLEU {r['bleu']:.2f} chrF {r['chrf']:.2f}" for pair, per in results.items()
        for split, r in per.items()))
    return results
