"""rosettamt-train (Hydra app; config: configs/train.yaml).

    rosettamt-train data=multi30k model=small trainer.max_steps=20000
    rosettamt-train data.dir=DIR hydra.run.dir=outputs/myrun trainer.resume=true   # continue it, with its options
    torchrun --nproc_per_node=2 -m rosettamt.train hydra.run.dir=outputs/ddp ...
"""

from __future__ import annotations

from pathlib import Path

from rosettamt.cli._app import hydra_command
from rosettamt.config import TrainConfig


@hydra_command("train")
def main(cfg: TrainConfig, run_dir: Path) -> None:
    from rosettamt.device import setup_allocator
    from rosettamt.train.distributed import from_env
    from rosettamt.train.interrupt import cli_overrides
    from rosettamt.train.loop import train
    from rosettamt.train.resume_options import resumed_config

    # trainer.resume=true without a config group: the run's own options (but the data locations)
    cfg = resumed_config(cfg, run_dir, cli_overrides(), from_env().world_size)
    setup_allocator(cfg.trainer.keep_freed_memory, cfg.trainer.device)
    train(cfg, run_dir)


if __name__ == "__main__":
    main()
