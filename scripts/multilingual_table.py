"""Per-direction test BLEU of a multilingual checkpoint beside bilingual baselines (issue 20).

Scores one multilingual checkpoint in every direction it knows and one bilingual checkpoint per
direction on the same Multi30k test splits (beam 5, sacreBLEU and the papers' protocol), and
writes a JSON and a Markdown table:

    python scripts/multilingual_table.py --multi outputs/ml/multi4/checkpoints/step0001200.pt \\
        --bilingual en-de=outputs/en_de_s1/checkpoints/step0001200.pt en-fr=... \\
        --data-dir ../shared/data/multi30k --out scripts/results/multilingual_multi30k.json

Hypothesis files go to a scratch folder (``--work-dir``), never next to the checkpoints.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional

SPLITS = ["test_2016_flickr", "test_2017_flickr"]


def score(checkpoint: str, data_dir: str, work: Path, src: Optional[str], tgt: Optional[str],
          threads: int) -> Dict[str, Dict[str, dict]]:
    """{direction: {split: scores}} for one checkpoint (a bilingual one in its own direction)."""
    import torch

    from rosettamt.config import DecodeConfig, MetricConfig
    from rosettamt.evaluate.pipeline import evaluate

    torch.set_num_threads(threads)
    work.mkdir(parents=True, exist_ok=True)
    out: Dict[str, Dict[str, dict]] = {}
    for split in SPLITS:
        try:
            results = evaluate(checkpoint, splits=[split], data_dir=data_dir,
                               decode=DecodeConfig(beam_size=5), metric=MetricConfig(paper_protocol=True),
                               output_dir=work, device="cpu", progress=False, src_lang=src, tgt_lang=tgt)
        except Exception as err:  # Czech has no test_2017_flickr: that cell stays empty
            print(f"{checkpoint} {src}-{tgt} {split}: skipped ({err})", file=sys.stderr)
            continue
        for r in results:
            out.setdefault(r.direction or f"{src}-{tgt}", {})[split] = {
                "bleu": round(r.bleu, 2), "chrf": round(r.chrf, 2),
                "paper_bleu": None if r.paper_bleu is None else round(r.paper_bleu, 2), "sentences": r.sentences}
    return out


def table(multi: Dict[str, Dict[str, dict]], bilingual: Dict[str, Dict[str, dict]]) -> str:
    cell = lambda d, s, k: "" if s not in d or d[s].get(k) is None else f"{d[s][k]:.2f}"  # noqa: E731
    rows = ["| direction | split | multilingual BLEU | bilingual BLEU | multilingual paper | bilingual paper |",
            "|---|---|---|---|---|---|"]
    for direction in sorted(set(multi) | set(bilingual)):
        m, b = multi.get(direction, {}), bilingual.get(direction, {})
        for split in SPLITS:
            if split in m or split in b:
                rows.append(f"| {direction} | {split} | {cell(m, split, 'bleu')} | {cell(b, split, 'bleu')} | "
                            f"{cell(m, split, 'paper_bleu')} | {cell(b, split, 'paper_bleu')} |")
    return "\n".join(rows)


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--multi", required=True, help="the multilingual checkpoint")
    ap.add_argument("--bilingual", nargs="*", default=[], help="SRC-TGT=CHECKPOINT, one per baseline")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--work-dir", default="outputs/multilingual_table")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--note", default="", help="free text stored in the JSON (how the runs were trained)")
    ap.add_argument("--out", required=True, help="JSON to write (a .md with the table goes beside it)")
    args = ap.parse_args(argv)

    work = Path(args.work_dir)
    multi = score(args.multi, args.data_dir, work / "multi", None, None, args.threads)
    bilingual: Dict[str, Dict[str, dict]] = {}
    for item in args.bilingual:
        direction, _, path = item.partition("=")
        src, _, tgt = direction.partition("-")
        bilingual.update(score(path, args.data_dir, work / direction, src, tgt, args.threads))
    md = table(multi, bilingual)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"multilingual": {"checkpoint": args.multi, "scores": multi},
                               "bilingual": {"checkpoints": args.bilingual, "scores": bilingual},
                               "decode": "beam 5", "note": args.note}, indent=1) + "\n")
    out.with_suffix(".md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
