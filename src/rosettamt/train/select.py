"""The end-of-run checkpoint rule: candidates, the pick by a rule fixed in the config, and the audit trail.

At the end of a run the candidates are the best single checkpoint by validation BLEU
(``best``), the average of the last ``trainer.average_last`` periodic checkpoints
(``average_last``) and the average of the best ``trainer.average_best`` (``average_best``),
each scored on the same validation set. ``trainer.select`` is the rule, stated before the run:
``val_bleu`` takes the highest validation BLEU (ties go to the simplest, in the order above),
a candidate's name always takes that one. The pick goes into the checkpoint index
(``selected``, which ``run_dir=`` then resolves to) and every candidate's validation and test
scores into ``results.json`` (``selection``), so that the choice can be audited.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from rosettamt.atomic import atomic_write_text
from rosettamt.config import Select, TrainConfig
from rosettamt.train.average import ScoreFn, average_at_end
from rosettamt.train.saver import CheckpointSaver
from rosettamt.train.state import TrainState

log = logging.getLogger("rosettamt.train")

CANDIDATES = ("best", "average_last", "average_best")  # simplest first: a tie goes to the earlier


@dataclass
class Candidate:
    """One model the run could end with: a file of checkpoints/ and its scores."""

    name: str  # one of CANDIDATES
    file: str  # in the checkpoint folder
    val_bleu: float  # what the rule compares: the validation BLEU of training (same val set for all)
    sources: List[str] = field(default_factory=list)  # the checkpoints it averages (itself when single)
    val: Dict[str, Any] = field(default_factory=dict)  # all validation scores, when computed at the end
    test: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # split -> scores (trainer.evaluate_at_end)


def pick(candidates: Sequence[Candidate], rule: Select) -> Tuple[Candidate, str]:
    """(the candidate ``rule`` picks, why in words). A fixed pick that was not built falls back to val_bleu."""
    if not candidates:
        raise ValueError("no candidates to pick from")
    if rule != Select.val_bleu:
        named = [c for c in candidates if c.name == rule.value]
        if named:
            return named[0], f"trainer.select={rule.value}"
        fallback = f"trainer.select={rule.value} was not built; highest val BLEU instead"
    else:
        fallback = "trainer.select=val_bleu: highest val BLEU, ties to the simplest"
    order = {name: i for i, name in enumerate(CANDIDATES)}
    return max(candidates, key=lambda c: (c.val_bleu, -order[c.name])), fallback


def build_candidates(cfg: TrainConfig, saver: CheckpointSaver, state: TrainState, score: ScoreFn,
                     device: torch.device) -> Tuple[List[Candidate], List[Dict[str, Any]]]:
    """Average as the config asks (averaged.pt, averaged-best.pt), score on val; (candidates, metrics records)."""
    tc = cfg.trainer
    candidates: List[Candidate] = []
    records: List[Dict[str, Any]] = []
    if saver.index["best"] and (saver.dir / saver.index["best"][0]["file"]).is_file():
        top = saver.index["best"][0]
        candidates.append(Candidate("best", top["file"], float(top["bleu"]), [top["file"]]))
    for name, n, best in (("average_last", tc.average_last, False), ("average_best", tc.average_best, True)):
        if n > 0:
            record = average_at_end(saver, n, cfg.model, device, score, state, best=best)
            if record is not None:
                records.append(record)
                file = saver.index["averaged_best" if best else "averaged"]["file"]
                val = {k: v for k, v in record.items() if k not in ("kind", "step", "time", "sources")}
                candidates.append(Candidate(name, file, float(record["bleu"]), list(record["sources"]), val))
    return candidates, records


def select(cfg: TrainConfig, saver: CheckpointSaver, candidates: Sequence[Candidate]) -> Optional[Candidate]:
    """Apply trainer.select, note the pick in the index (None, and nothing noted, without candidates)."""
    if not candidates:
        saver.set_selected(None)
        return None
    chosen, why = pick(candidates, cfg.trainer.select)
    saver.set_selected({"file": chosen.file, "candidate": chosen.name, "rule": cfg.trainer.select.value,
                        "why": why, "val_bleu": chosen.val_bleu})
    log.info("end-of-run candidates (val BLEU): %s; picked %s (%s)",
             ", ".join(f"{c.name} {c.val_bleu:.2f}" for c in candidates), chosen.name, why)
    return chosen


def audit(cfg: TrainConfig, run_dir: Path, saver: CheckpointSaver, candidates: Sequence[Candidate],
          chosen: Candidate, chosen_test: Dict[str, Dict[str, Any]], device: torch.device) -> None:
    """Score the candidates not picked on the test splits too; add ``selection`` to results.json.

    The test scores are for auditing only: nothing here changes the pick. A multilingual run
    (data.langs / data.pairs) scores its test splits per direction; there the other candidates
    keep their validation scores only.
    """
    from rosettamt.evaluate import evaluate_splits

    multilingual = bool(getattr(cfg.data, "langs", None) or getattr(cfg.data, "pairs", None))
    for c in candidates:
        if c is chosen:
            c.test = chosen_test
        elif cfg.data.test_splits and not multilingual:
            c.test = evaluate_splits(saver.dir / c.file, cfg.data, cfg.data.test_splits, cfg.decode, cfg.metric,
                                     device, output_dir=Path(run_dir) / "test")
    path = Path(run_dir) / "results.json"
    payload = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    payload["selection"] = {"rule": cfg.trainer.select.value, "picked": chosen.name,
                            "candidates": [asdict(c) for c in candidates]}
    atomic_write_text(path, json.dumps(payload, indent=1))
    print(format_candidates(candidates, chosen, cfg.trainer.select.value), flush=True)


def format_candidates(candidates: Sequence[Candidate], chosen: Candidate, rule: str) -> str:
    """One line per candidate: val BLEU, then test BLEU (paper protocol in brackets when computed)."""
    lines = [f"end-of-run candidates (* = the pick of trainer.select={rule}):"]
    for c in candidates:
        tests = ", ".join(f"{split} {r['bleu']:.2f}" + (f" [paper {r['paper_bleu']:.2f}]"
                                                          if r.get("paper_bleu") is not None else "")
                          for split, r in c.test.items() if isinstance(r, dict) and "bleu" in r)
        mark = "*" if c is chosen else " "
        lines.append(f" {mark} {c.name:<12} val BLEU {c.val_bleu:6.2f}" + (f" | test BLEU {tests}" if tests else "")
                     + f"  ({c.file})")
    return "\n".join(lines)
