"""rosettamt-translate (Hydra app; config: configs/translate.yaml).

    rosettamt-translate checkpoint=PATH            # a prompt on a terminal
    echo "A dog runs." | rosettamt-translate run_dir=outputs/RUN
    rosettamt-translate checkpoint=PATH input=in.txt output=out.txt decode=greedy nbest=1
    rosettamt-translate checkpoint=PATH show_attention=true attention_grid=true
"""

from __future__ import annotations

from pathlib import Path

from rosettamt.cli._app import hydra_command
from rosettamt.config import TranslateConfig


@hydra_command("translate")
def main(cfg: TranslateConfig, run_dir: Path) -> None:
    from rosettamt.prompt import run  # torch and the model load only after the config is valid

    run(cfg)  # sets decode.keep_freed_memory once its options are checked


if __name__ == "__main__":
    main()
