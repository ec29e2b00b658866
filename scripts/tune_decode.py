#!/usr/bin/env python
"""Pick a run's checkpoint-averaging window and beam length penalty on the validation split.

    python scripts/tune_decode.py outputs/multi30k_en_de_cpu [--last 1 3 5 7 10] \
        [--length-penalty 0.6 0.8 1.0 1.2 1.5] [--beam 5] [--split val] [--json tune.json]

First it averages the last k periodic checkpoints for every k in ``--last`` (k=1 is the last
checkpoint alone) and scores each average on ``--split`` with beam search at length penalty 1.0;
then, for the best k, it scores every ``--length-penalty``. Only the validation split is ever
decoded here, so the choice does not peek at the test sets. It prints both tables and the
commands that build and evaluate the chosen model (``rosettamt-average`` + ``rosettamt-evaluate``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List


def run_data_config(run_dir: Path) -> Any:
    """The corpus of this run, from the config.yaml its trainer wrote (a checkpoint's own stored
    data config is not obeyed by rosettamt-evaluate); None when the run has no config.yaml."""
    from omegaconf import OmegaConf

    from rosettamt.config import DataConfig, from_dict

    path = run_dir / "config.yaml"
    if not path.is_file():
        return None
    data = from_dict(DataConfig, OmegaConf.to_container(OmegaConf.load(path).data))
    data.download = False
    return data


def score_on_split(ckpt: Path, split: str, beam: int, lp: float, data: Any, data_dir: str | None,
                   out_dir: Path, threads: int) -> Dict[str, Any]:
    from rosettamt.config import DecodeConfig, MetricConfig, Strategy
    from rosettamt.evaluate import evaluate

    decode = DecodeConfig(strategy=Strategy.beam if beam > 1 else Strategy.greedy, beam_size=beam,
                          length_penalty=lp)
    (result,) = evaluate(ckpt, splits=[split], decode=decode, metric=MetricConfig(paper_protocol=True),
                         data=data, data_dir=data_dir, output_dir=out_dir, device="auto",
                         progress=False)
    return {"bleu": result.bleu, "paper_bleu": result.paper_bleu, "chrf": result.chrf}


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--last", type=int, nargs="+", default=[1, 3, 5, 7, 10])
    parser.add_argument("--length-penalty", type=float, nargs="+", default=[0.6, 0.8, 1.0, 1.2, 1.5])
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--split", default="val")
    parser.add_argument("--data-dir", default=None, help="the corpus folder, if it moved since training")
    parser.add_argument("--threads", type=int, default=0, help="torch threads on CPU (0: PyTorch's default)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    import torch

    from rosettamt.checkpoint import save_checkpoint
    from rosettamt.errors import UserError
    from rosettamt.train.average import average_checkpoints, select_checkpoints

    if args.threads:
        torch.set_num_threads(args.threads)
    windows: Dict[int, Dict[str, Any]] = {}
    data = run_data_config(args.run_dir)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        for k in sorted(set(args.last)):
            try:
                paths = select_checkpoints(args.run_dir, last=k)
            except UserError as err:
                print(f"last={k}: skipped ({err})", file=sys.stderr)
                continue
            ckpt = tmp_dir / f"last{k}.pt"
            save_checkpoint(average_checkpoints(paths), ckpt)
            windows[k] = score_on_split(ckpt, args.split, args.beam, 1.0, data, args.data_dir, tmp_dir,
                                        args.threads)
            windows[k]["checkpoints"] = [p.name for p in paths]
            print(f"last={k:<3d} {args.split} BLEU {windows[k]['bleu']:.2f}", file=sys.stderr, flush=True)
        if not windows:
            print(f"error: no periodic checkpoints to average in {args.run_dir}", file=sys.stderr)
            return 1
        best_k = max(windows, key=lambda k: windows[k]["bleu"])
        penalties: Dict[float, Dict[str, Any]] = {}
        for lp in sorted(set(args.length_penalty)):
            penalties[lp] = (windows[best_k] if lp == 1.0 else
                             score_on_split(tmp_dir / f"last{best_k}.pt", args.split, args.beam, lp,
                                            data, args.data_dir, tmp_dir, args.threads))
            print(f"length_penalty={lp:<4} {args.split} BLEU {penalties[lp]['bleu']:.2f}", file=sys.stderr,
                  flush=True)
    best_lp = max(penalties, key=lambda lp: penalties[lp]["bleu"])

    print(f"\n{args.split} split, beam {args.beam}, length penalty 1.0, sacreBLEU:\n")
    print("| checkpoints averaged | BLEU | paper protocol BLEU | chrF |\n|---|---|---|---|")
    for k, r in windows.items():
        print(f"| last {k} | {r['bleu']:.2f} | {r['paper_bleu']:.2f} | {r['chrf']:.2f} |")
    print(f"\n{args.split} split, beam {args.beam}, average of the last {best_k}:\n")
    print("| length penalty | BLEU | paper protocol BLEU | chrF |\n|---|---|---|---|")
    for lp, r in penalties.items():
        print(f"| {lp} | {r['bleu']:.2f} | {r['paper_bleu']:.2f} | {r['chrf']:.2f} |")
    out = args.run_dir / "checkpoints" / f"average_last{best_k}.pt"
    print(f"\nchosen: last={best_k}, length_penalty={best_lp}\n\n"
          f"rosettamt-average run_dir={args.run_dir} last={best_k} output={out}\n"
          f"rosettamt-evaluate checkpoint={out} split=[test_2016_flickr,test_2017_flickr] "
          f"decode=beam decode.beam_size={args.beam} decode.length_penalty={best_lp} metric.paper_protocol=true")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "run_dir": str(args.run_dir), "split": args.split, "beam": args.beam,
            "windows": {str(k): v for k, v in windows.items()},
            "length_penalties": {str(k): v for k, v in penalties.items()},
            "chosen": {"last": best_k, "length_penalty": best_lp}}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
