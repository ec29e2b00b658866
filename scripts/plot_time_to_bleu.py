#!/usr/bin/env python
"""Validation BLEU against wall-clock training time, for one or more runs.

    python scripts/plot_time_to_bleu.py outputs/multi30k_en_de_cpu --out time_to_bleu.png
    python scripts/plot_time_to_bleu.py outputs/runA outputs/runB --label "small" --label "multi30k_tiny" \\
        --ref 41.02 --ref-label "Wu et al. 2021 (paper protocol)" --target 35 --out cmp.png

Each argument is a run directory (or its metrics.jsonl) written by rosettamt-train. Its ``kind: val``
records give the validation BLEU and ``time``, the run's training wall-clock seconds at the end of
that validation (validation time included, summed over resumptions); ``kind: averaged`` records
(trainer.average_last) are drawn as stars. A run still in progress can be read: a half-written last
line is skipped. Saves a PNG (matplotlib Agg) with one line per run, and prints a Markdown table:
the BLEU of the last validation at or before 15/30/60/90 minutes (``--at``; — when the run has not
trained that long), the best BLEU and when it was reached, and with ``--target X`` the first validation with BLEU >= X.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

Point = Tuple[float, float, int]  # (minutes, BLEU, step)


def load_run(path: Path) -> Tuple[List[Point], List[Point]]:
    """(validations, averaged checkpoints) of one run, in time order."""
    from rosettamt.train.metrics import read_metrics

    metrics = path / "metrics.jsonl" if path.is_dir() else path
    if not metrics.is_file():
        sys.exit(f"plot_time_to_bleu: no metrics.jsonl at {metrics}")
    records = read_metrics(metrics)

    def points(kind: str) -> List[Point]:
        return sorted((r["time"] / 60.0, float(r["bleu"]), int(r["step"])) for r in records
                      if r.get("kind") == kind and "bleu" in r and "time" in r)

    return points("val"), points("averaged")


def bleu_at(val: List[Point], minutes: float) -> Optional[float]:
    """BLEU of the last validation at or before ``minutes`` (what stopping there would give)."""
    before = [b for t, b, _ in val if t <= minutes]
    return before[-1] if before else None


def first_reaching(val: List[Point], target: float) -> Optional[Point]:
    return next((p for p in val if p[1] >= target), None)


def table(runs: List[Dict[str, Any]], at: List[float], target: Optional[float]) -> str:
    head = (["run", "validations", "trained (min)"] + [f"BLEU @{m:g} min" for m in at]
            + ["best BLEU", "best at (min / step)"] + ([f"first BLEU >= {target:g} (min / step)"] if target else []))
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run in runs:
        val = run["val"]
        if not val:
            lines.append(f"| {run['label']} | 0 | | " + " | ".join("—" for _ in head[3:]) + " |")
            continue
        last_time = val[-1][0]
        cells = [run["label"], str(len(val)), f"{last_time:.1f}"]
        for m in at:  # —: no validation yet by then, or the run (so far) ends before m
            b = bleu_at(val, m)
            cells.append("—" if b is None or last_time < m else f"{b:.2f}")
        best = max(val, key=lambda p: (p[1], -p[0]))
        cells += [f"{best[1]:.2f}", f"{best[0]:.1f} / {best[2]}"]
        if target:
            hit = first_reaching(val, target)
            cells.append(f"{hit[0]:.1f} / {hit[2]}" if hit else "not reached")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(runs: List[Dict[str, Any]], out: Path, ref: Optional[float], ref_label: str,
         target: Optional[float], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for run in runs:
        if run["val"]:
            xs, ys, _ = zip(*run["val"])
            line, = ax.plot(xs, ys, "o-", markersize=3, label=run["label"])
            best = max(run["val"], key=lambda p: (p[1], -p[0]))
            ax.annotate(f"{best[1]:.1f}", (best[0], best[1]), textcoords="offset points", xytext=(0, 6),
                        ha="center", fontsize=8, color=line.get_color())
            for t, b, _ in run["averaged"]:
                ax.plot([t], [b], "*", markersize=11, color=line.get_color())
    if ref is not None:
        ax.axhline(ref, color="gray", linestyle="--", linewidth=1, label=ref_label or f"reference {ref:g}")
    if target is not None:
        ax.axhline(target, color="tab:red", linestyle=":", linewidth=1, label=f"target {target:g}")
    ax.set(xlabel="wall-clock training time (minutes)", ylabel="validation BLEU", title=title)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="run directories (or metrics.jsonl files)")
    p.add_argument("--label", action="append", default=[], help="legend label, once per run, in order "
                   "(default: the run directory's name)")
    p.add_argument("--out", type=Path, default=Path("time_to_bleu.png"), help="PNG to write")
    p.add_argument("--ref", type=float, help="horizontal reference line at this BLEU")
    p.add_argument("--ref-label", default="", help="its legend label")
    p.add_argument("--target", type=float, help="report when BLEU first reached this value")
    p.add_argument("--at", default="15,30,60,90", help="minutes at which to read off BLEU (comma-separated)")
    p.add_argument("--title", default="Validation BLEU vs training time")
    args = p.parse_args()
    if len(args.label) > len(args.runs):
        p.error(f"{len(args.label)} labels for {len(args.runs)} runs")
    at = [float(m) for m in args.at.split(",") if m.strip()]

    runs = []
    for i, path in enumerate(args.runs):
        val, averaged = load_run(path)
        name = path.name if path.is_dir() else path.parent.name
        runs.append({"label": args.label[i] if i < len(args.label) else name, "val": val, "averaged": averaged})
        if not val:
            print(f"plot_time_to_bleu: {path} has no validation records yet", file=sys.stderr)
        for t, b, step in averaged:
            print(f"{runs[-1]['label']}: averaged checkpoint BLEU {b:.2f} at {t:.1f} min (step {step})")
    print(table(runs, at, args.target))
    plot(runs, args.out, args.ref, args.ref_label, args.target, args.title)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
