"""rosettamt-prepare (Hydra app; config: configs/prepare.yaml).

Loads and validates the corpus, trains (or reuses) the tokenizer and caches the
token ids, then prints what it did per split. Run it again: it is a cache hit.
"""

from __future__ import annotations

from pathlib import Path

from rosettamt.cli._app import hydra_command
from rosettamt.config import PrepareConfig


@hydra_command("prepare")
def main(cfg: PrepareConfig, run_dir: Path) -> None:
    from rosettamt.data.pipeline import prepare_data  # heavy imports only once the config is valid

    prepared = prepare_data(cfg.data, cfg.tokenizer, cfg.seed)
    data = cfg.data
    pair = (", ".join(f"{s}->{t}" for s, t in prepared.directions) if prepared.directions is not None
            else f"{data.src_lang}->{data.tgt_lang}")
    print(f"data: {data.source} {pair}, cache {Path(data.cache_dir)}")
    for line in prepared.summary():
        print(line)


if __name__ == "__main__":
    main()
