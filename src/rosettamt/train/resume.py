"""A training checkpoint, both ways: what a run saves (:func:`snapshot`) and how it continues (:func:`restore`).

Exact resumption: a checkpoint holds the weights, optimizer, scheduler, sampler position
inside the epoch, every RNG and the run's counters (:class:`TrainState`), and nothing
between two steps draws from an RNG; restored in the order a fresh run builds them, a
resumed run replays the uninterrupted one bit for bit on CPU.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, Optional

from torch import nn

from rosettamt import config as C
from rosettamt.checkpoint import LAST, TRAINING_KEYS, checkpoint_dir, config_mismatch, load_checkpoint, load_model_state
from rosettamt.data.batching import TokenBatchSampler
from rosettamt.data.tokenizer import Tokenizer
from rosettamt.errors import UserError
from rosettamt.train import distributed as D
from rosettamt.train.rng import get_rng_state
from rosettamt.train.state import TrainState

log = logging.getLogger("rosettamt.train")


def resume_path(tc: C.TrainerConfig, run_dir: Path, ckpt_dir: Path) -> Optional[Path]:
    """The checkpoint to continue from (trainer.resume_from, or trainer.resume=true), else None.

    A fresh run refuses a directory that already holds one: it would overwrite that run.
    """
    if tc.resume_from:
        path = Path(tc.resume_from)
        if path.is_dir():
            path = checkpoint_dir(path) / LAST
        if not path.is_file():
            raise UserError(f"trainer.resume_from={tc.resume_from}: no checkpoint at {path}")
        return path
    last = ckpt_dir / LAST
    if tc.resume:
        if not last.is_file():
            raise UserError(f"trainer.resume=true but {last} does not exist; point hydra.run.dir at the run "
                            "to continue (e.g. hydra.run.dir=outputs/myrun) or set trainer.resume_from=PATH")
        return last
    if last.is_file():
        raise UserError(f"{run_dir} already holds a training run ({last}); continue it with "
                        "trainer.resume=true or choose another hydra.run.dir")
    return None


def snapshot(model: nn.Module, optimizer: Any, scheduler: Any, sampler: TokenBatchSampler, state: TrainState,
             data: Any, config: Dict[str, Any], model_config: Dict[str, Any],
             world_size: int = 1) -> Dict[str, Any]:
    """The checkpoint of this moment (collective under DDP: gathers every rank's RNG state); ``data``
    (PreparedData) gives the tokenizer and the language profiles for detection (rosettamt.langid)."""
    rngs = D.gather_objects(get_rng_state())
    counters = state.state_dict()
    return {
        "model": model.state_dict(),
        "model_config": model_config,
        "config": config,
        "tokenizer": data.tokenizer.state_dict(),
        **({"langid": data.langid} if getattr(data, "langid", None) is not None else {}),
        "step": counters["step"],
        "epoch": counters["epoch"],
        "val_bleu": state.val_bleu(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "sampler": {**sampler.state_dict(), "world_size": world_size},
        "rng": rngs,
        "trainer": counters["trainer"],
    }


def restore(path: Path, cfg: C.TrainConfig, tokenizer: Tokenizer, model: nn.Module, optimizer: Any,
            scheduler: Any, sampler: TokenBatchSampler, state: TrainState, rank: int = 0,
            world_size: int = 1, last_path: Optional[Path] = None) -> Dict[str, Any]:
    """Load a :func:`snapshot` into the given parts; returns this rank's RNG state (the caller sets it last).

    UserError if the checkpoint does not fit (inference-only, another model or tokenizer).
    ``last_path`` is this run's last.pt: resuming from it means the end need not rewrite it.
    """
    ckpt = load_checkpoint(path)
    missing = [k for k in TRAINING_KEYS if k not in ckpt]
    if missing:
        raise UserError(f"cannot resume from {path}: it has no training state ({', '.join(missing)}); "
                        "it is an inference-only checkpoint")
    load_model_state(model, ckpt, path, expected_config=C.to_dict(cfg.model))
    if Tokenizer.from_state_dict(ckpt["tokenizer"]).content_hash != tokenizer.content_hash:
        raise UserError(f"cannot resume from {path}: its tokenizer differs from the one built for this "
                        "config (data or tokenizer settings changed)")
    now = C.to_dict(cfg)
    for group in ("data", "tokenizer", "optim"):
        diff = config_mismatch(now[group], ckpt.get("config", {}).get(group, now[group]))
        if diff:
            log.warning("resuming with a different %s config: %s", group, "; ".join(diff))
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    sampler_state = dict(ckpt["sampler"])
    saved_world = sampler_state.pop("world_size", 1)
    if saved_world != world_size:  # keep the fraction of the epoch already seen
        log.warning("checkpoint was written by %d ranks, this run has %d: not an exact continuation",
                    saved_world, world_size)
        sampler_state["position"] = sampler_state.get("position", 0) * saved_world // world_size
    sampler.load_state_dict(sampler_state)
    state.load_state_dict(ckpt)
    if last_path is not None and path.resolve() == last_path.resolve():
        state.saved_step = state.step  # this very state is last.pt already
    log.info("resumed from %s at step %d (epoch %d, batch %d of it)", path, state.step, state.epoch + 1,
             sampler_state.get("position", 0))
    rngs = ckpt["rng"]
    return rngs[rank] if rank < len(rngs) else rngs[0]
