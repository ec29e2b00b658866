"""rosettamt-evaluate (Hydra app; config: configs/evaluate.yaml).

    rosettamt-evaluate checkpoint=PATH split=[test_2016_flickr,test_2017_flickr] decode=beam
    rosettamt-evaluate run_dir=outputs/myrun decode=greedy data_dir=../shared/data/multi30k
    rosettamt-evaluate checkpoint=PATH src_file=test.en ref_file=test.de decode.beam_size=8
"""

from __future__ import annotations

import sys
from pathlib import Path

from rosettamt.cli._app import hydra_command
from rosettamt.config import EvaluateConfig


@hydra_command("evaluate", rejected={"data.": "the data config comes from the checkpoint; "
                                               "point at a moved corpus with data_dir=PATH"})
def main(cfg: EvaluateConfig, run_dir: Path) -> None:
    from rosettamt.device import setup_allocator
    from rosettamt.evaluate import evaluate

    setup_allocator(cfg.decode.keep_freed_memory, cfg.device)
    results = evaluate(
        cfg.checkpoint, run_dir=cfg.run_dir, splits=cfg.split, src_file=cfg.src_file, ref_file=cfg.ref_file,
        data=cfg.data, data_dir=cfg.data_dir, decode=cfg.decode, metric=cfg.metric, output_dir=cfg.output_dir, device=cfg.device,
        backend=cfg.backend, model_dir=cfg.model_dir, ct2=cfg.ct2,
        progress=sys.stderr.isatty(),
    )
    for result in results:
        print(result.report())


if __name__ == "__main__":
    main()
