"""Mean, spread and every seed of recipe runs trained side by side (issue 19).

    python scripts/seed_table.py OUT_DIR [--steps 1500 3000 4500] [--minutes 2 4 6] [--out seeds.json]

OUT_DIR holds run directories named ``<group>_s<seed>`` (what ``scripts/run_seeds.sh`` makes):
``en_de_s1``, ``en_de_s2``, ``en_de_rdrop_s1`` ... Runs are grouped by the name without its
``_s<seed>`` suffix. For each run the table takes what ``rosettamt-train`` wrote: the test scores of
the checkpoint the run's rule picked (``results.json``), every candidate's validation and test
scores (``results.json``'s ``selection``), and from ``metrics.jsonl`` the steps and training time it
reached and its validation BLEU curve (greedy, the val split), read at fixed steps (``--steps``,
for comparisons at equal steps) and fixed training minutes (``--minutes``, at equal time). Each
group gets the mean, the sample standard deviation and the range over its seeds (a point that a
run did not reach is left out, and a point that no seed reached is shown as "-"). Nothing here is
chosen on the test sets: the picks are the runs' own.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

SEED = re.compile(r"^(?P<group>.+)_s(?P<seed>\d+)$")


def read_jsonl(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def val_at(curve: List[Dict[str, Any]], key: str, limit: float, reached: float) -> Optional[float]:
    """Validation BLEU of the last validation with ``key`` (step or time) at or below ``limit``;
    None when the run never got that far (``reached``: its last step or training second)."""
    seen = [r["bleu"] for r in curve if r[key] <= limit]
    return seen[-1] if seen and limit <= reached else None


def scores(splits: Dict[str, Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """BLEU, chrF and paper-protocol BLEU of each split in a results.json "splits" mapping."""
    return {name: {k: s.get(k) for k in ("bleu", "chrf", "paper_bleu")} for name, s in splits.items()}


def read_run(run_dir: Path, steps: List[int], minutes: List[float]) -> Dict[str, Any]:
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    records = read_jsonl(run_dir / "metrics.jsonl")
    trained = [r for r in records if r.get("kind") in ("train", "val")]
    curve = [r for r in records if r.get("kind") == "val"]
    last_step, last_time = max(r["step"] for r in trained), max(r["time"] for r in trained)
    selection = results.get("selection", {})
    return {
        "steps": last_step,
        "train_minutes": round(last_time / 60, 2),
        "validations": len(curve),
        "picked": selection.get("picked"),
        "test": scores(results["splits"]),
        "candidates": [{"name": c["name"], "file": c["file"], "val_bleu": c["val_bleu"], "test": scores(c["test"])}
                       for c in selection.get("candidates", [])],
        "val_bleu_at_step": {str(s): val_at(curve, "step", s, last_step) for s in steps},
        "val_bleu_at_minute": {str(m): val_at(curve, "time", m * 60, last_time) for m in minutes},
        "best_val_bleu": max((r["bleu"] for r in curve), default=None),
        "val_curve": [[r["step"], round(r["time"], 1), round(r["bleu"], 2)] for r in curve],  # step, seconds, BLEU
    }


def spread(values: List[Optional[float]]) -> Dict[str, Optional[float]]:
    vals = [v for v in values if v is not None]
    if not vals:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    return {"mean": statistics.fmean(vals), "std": statistics.stdev(vals) if len(vals) > 1 else None,
            "min": min(vals), "max": max(vals), "n": len(vals)}


def summarize(runs: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    """One entry per group: its seeds' runs and the spread of each score over them."""
    groups: Dict[str, Dict[str, Any]] = {}
    seed_of = lambda name: int(SEED.match(name)["seed"]) if SEED.match(name) else -1  # noqa: E731
    for name, run in sorted(runs.items(), key=lambda item: seed_of(item[0])):  # s2 before s10
        m = SEED.match(name)
        group, seed = (m["group"], str(int(m["seed"]))) if m else (name, "None")
        seeds = groups.setdefault(group, {"runs": {}})["runs"]
        if seed in seeds:
            raise SystemExit(f"seed_table: two runs of group {group!r} have seed {seed} ({name} is the second)")
        seeds[seed] = run
    for group in groups.values():
        seeds = list(group["runs"].values())
        splits = sorted({s for r in seeds for s in r["test"]})
        group["test"] = {split: {metric: spread([r["test"].get(split, {}).get(metric) for r in seeds])
                                 for metric in ("bleu", "paper_bleu", "chrf")} for split in splits}
        group["steps"] = spread([r["steps"] for r in seeds])
        group["val_bleu_at_step"] = {k: spread([r["val_bleu_at_step"][k] for r in seeds])
                                     for k in seeds[0]["val_bleu_at_step"]}
        group["val_bleu_at_minute"] = {k: spread([r["val_bleu_at_minute"][k] for r in seeds])
                                       for k in seeds[0]["val_bleu_at_minute"]}
    return groups


def fmt(s: Dict[str, Optional[float]]) -> str:
    if s["mean"] is None:
        return "-"
    return f"{s['mean']:.2f} ± {s['std']:.2f}" if s["n"] > 1 else f"{s['mean']:.2f}"


def paper_scores(run: Dict[str, Any], splits: List[str]) -> str:
    """One run's paper-protocol BLEU per split, "a / b" ("-" where it was not computed)."""
    scores = [run["test"].get(split, {}).get("paper_bleu") for split in splits]
    return " / ".join("-" if v is None else f"{v:.2f}" for v in scores)


def markdown(groups: Dict[str, Any]) -> str:
    """A test table (mean ± std, then every seed) and the validation curves at fixed steps / minutes."""
    splits = sorted({s for g in groups.values() for s in g["test"]})
    head = ["group", "seeds", "steps"] + [f"{s} {m}" for s in splits for m in ("BLEU", "paper")]
    head.append("each seed (paper, " + ", ".join(splits) + ")")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, g in groups.items():
        cells = [name, str(len(g["runs"])), f"{g['steps']['mean']:,.0f}"]
        cells += [fmt(g["test"].get(s, {}).get(m, spread([]))) for s in splits for m in ("bleu", "paper_bleu")]
        cells.append("; ".join(f"s{seed}: {paper_scores(r, splits)}" for seed, r in g["runs"].items()))
        lines.append("| " + " | ".join(cells) + " |")
    for key, label in (("val_bleu_at_step", "val BLEU at step"), ("val_bleu_at_minute", "val BLEU after minute")):
        points = list(next(iter(groups.values()))[key])
        if not points:
            continue
        lines += ["", "| group | " + " | ".join(f"{label} {p}" for p in points) + " |", "|---|" + "---|" * len(points)]
        lines += ["| " + name + " | " + " | ".join(fmt(g[key][p]) for p in points) + " |" for name, g in groups.items()]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out_dir", type=Path, help="directory of <group>_s<seed> run directories")
    p.add_argument("--steps", type=int, nargs="*", default=[], help="read each run's val BLEU at these steps")
    p.add_argument("--minutes", type=float, nargs="*", default=[], help="... and after these training minutes")
    p.add_argument("--out", type=Path, help="write the runs and the group spreads here (JSON)")
    args = p.parse_args(argv)
    dirs = sorted(d for d in args.out_dir.iterdir()
                  if (d / "results.json").is_file() and (d / "metrics.jsonl").is_file())
    if not dirs:
        print(f"seed_table: no run directory with results.json and metrics.jsonl under {args.out_dir}", file=sys.stderr)
        return 2
    groups = summarize({d.name: read_run(d, args.steps, args.minutes) for d in dirs})
    print(markdown(groups))
    if args.out:
        args.out.write_text(json.dumps(groups, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
