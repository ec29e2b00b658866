"""rosettamt-train (Hydra app; config: configs/train.yaml).

    rosettamt-train data=multi30k model=small trainer.max_steps=20000
    rosettamt-train hydra.run.dir=outputs/myrun trainer.resume=true     # continue that run exactly
    torchrun --nproc_per_node=2 -m rosettamt.train hydra.run.dir=outputs/ddp ...
"""

from __future__ import annotations

from pathlib import Path

from rosettamt.cli._app import hydra_command
from rosettamt.config import TrainConfig


@hydra_command("train")
def main(cfg: TrainConfig, run_dir: Path) -> None:
    from rosettamt.device import setup_allocator
    from rosettamt.train.loop import train

    setup_allocator(cfg.trainer.keep_freed_memory, cfg.trainer.device)
    train(cfg, run_dir)


if __name__ == "__main__":
    main()
