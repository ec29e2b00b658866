"""Training configs on the toy language pair, shared by the training tests (unit and end-to-end)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Dict, List, Sequence


def toy_overrides(toy_files: Dict[str, List[str]], cache_dir: Path, *extra: str) -> List[str]:
    """Hydra overrides for a fast, deterministic toy run (the same for in-process and CLI runs)."""
    f = toy_files
    return [
        "data=files",
        f"data.files.train=[{f['train'][0]},{f['train'][1]}]",
        f"data.files.val=[{f['val'][0]},{f['val'][1]}]",
        f"data.files.test=[{f['test'][0]},{f['test'][1]}]",
        *toy_run(cache_dir, 100, *extra),
    ]


def toy_run(cache_dir: Path, vocab_size: int, *extra: str) -> List[str]:
    """The overrides every toy run shares whatever its corpus: a tiny model, few steps, one thread."""
    return [
        f"data.cache_dir={cache_dir}",
        f"tokenizer.vocab_size={vocab_size}",
        "model=tiny",
        "trainer=debug",
        "trainer.threads=1",
        "trainer.progress=log",
        "trainer.evaluate_at_end=false",
        "optim.warmup_steps=20",
        "optim.lr=0.003",
        *extra,
    ]


def compose_train(overrides: Sequence[str]):
    """The TrainConfig the CLI would build from these overrides."""
    from hydra import compose, initialize_config_dir

    from rosettamt import config as C
    from rosettamt.paths import config_dir

    C.register_schemas()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return C.to_object(compose(config_name="train", overrides=list(overrides)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_worker(rank: int, world: int, port: int, cfg, run_dir: str, out_dir: str) -> None:
    """One rank of a gloo run: train, then save the batches it saw and its final weights."""
    import torch

    from rosettamt.train.loop import train

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    seen: List[List[int]] = []
    result = train(cfg, Path(run_dir), on_batch=lambda step, b: seen.append(b.indices.tolist()))
    torch.save({"batches": seen, "model": result.model.state_dict(), "step": result.step},
               Path(out_dir) / f"rank{rank}.pt")


def ddp_signal_worker(rank: int, world: int, port: int, cfg, run_dir: str, out_dir: str, signal_rank: int,
                      signal_step: int) -> None:
    """One rank of a gloo run in which rank ``signal_rank`` alone gets SIGTERM during step ``signal_step``;
    saves the step it stopped after and its exit status."""
    import signal

    import torch

    from rosettamt.errors import Interrupted
    from rosettamt.train.loop import train

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))

    steps: List[int] = []

    def hook(step: int, batch) -> None:
        steps.append(step)
        if rank == signal_rank and step == signal_step:
            signal.raise_signal(signal.SIGTERM)

    try:
        train(cfg, Path(run_dir), on_batch=hook)
        status = 0
    except Interrupted as err:
        status = err.exit_status
    torch.save({"status": status, "last_step": max(steps)}, Path(out_dir) / f"rank{rank}.pt")
