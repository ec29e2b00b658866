"""rosettamt-evaluate (Hydra app; config: configs/evaluate.yaml).

    rosettamt-evaluate checkpoint=PATH split=[test_2016_flickr,test_2017_flickr] decode=beam
    rosettamt-evaluate run_dir=outputs/myrun decode=greedy data_dir=../shared/data/multi30k
    rosettamt-evaluate checkpoint=PATH src_file=test.en ref_file=test.de decode.beam_size=8
    rosettamt-evaluate checkpoint=PATH split=[test] data.files.test=[test.src,test.tgt]
    rosettamt-evaluate run_dir=outputs/multi data_dir=DIR tgt_lang=fr   # a multilingual model: one direction

The checkpoint says which language pair and splits; where the corpus lies comes from the command
line only (data_dir= or data.dir=, data.files.SPLIT=[...], data.hub_name=), and nothing is
downloaded without data.download=true (see rosettamt/evaluate/corpus_config.py).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List

from rosettamt.cli._app import hydra_command
from rosettamt.config import EvaluateConfig


DATA_OVERRIDES: List[str] = []  # this command's data.KEY=VALUE arguments, without "data."


def take_data_overrides(argv: List[str]) -> List[str]:
    """Take ``data.KEY=VALUE`` out of the command line for :func:`rosettamt.evaluate.evaluate`, which
    applies them over what a checkpoint may decide (Hydra cannot: evaluate's ``data`` node is null)."""
    rest = []
    for arg in argv:
        key, eq, value = arg.partition("=")
        if eq and key.lstrip("+~").startswith("data."):
            DATA_OVERRIDES.append(f"{key.lstrip('+~')[len('data.'):]}={value}")
        else:
            rest.append(arg)
    return rest


@hydra_command("evaluate", argv_filter=take_data_overrides)
def main(cfg: EvaluateConfig, run_dir: Path) -> None:
    from rosettamt.device import setup_allocator
    from rosettamt.evaluate import evaluate

    setup_allocator(cfg.decode.keep_freed_memory, cfg.device)
    # downloads only when asked for here: data.download=true (a +data=... group says true by default)
    results = evaluate(
        cfg.checkpoint, run_dir=cfg.run_dir, splits=cfg.split, src_file=cfg.src_file, ref_file=cfg.ref_file,
        data=cfg.data, data_dir=cfg.data_dir, data_overrides=["download=false", *DATA_OVERRIDES], decode=cfg.decode, metric=cfg.metric, output_dir=cfg.output_dir, device=cfg.device,
        backend=cfg.backend, model_dir=cfg.model_dir, ct2=cfg.ct2, src_lang=cfg.src_lang, tgt_lang=cfg.tgt_lang,
        progress=sys.stderr.isatty(),
    )
    for result in results:
        print(result.report())


if __name__ == "__main__":
    main()
