"""A training checkpoint, both ways: what a run saves (:func:`snapshot`) and how it continues (:func:`restore`).

Exact resumption: a checkpoint holds the weights, optimizer, scheduler, sampler position
inside the epoch, every RNG and the run's counters (:class:`TrainState`), and nothing
between two steps draws from an RNG; restored in the order a fresh run builds them, a
resumed run replays the uninterrupted one bit for bit on CPU.
"""

from __future__ import annotations

import logging
import os
import shlex
from pathlib import Path
from typing import Any, Dict, List, Optional

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
             tokenizer: Tokenizer, config: Dict[str, Any], model_config: Dict[str, Any],
             world_size: int = 1) -> Dict[str, Any]:
    """The checkpoint of this moment (collective under DDP: gathers every rank's RNG state)."""
    rngs = D.gather_objects(get_rng_state())
    counters = state.state_dict()
    return {
        "model": model.state_dict(),
        "model_config": model_config,
        "config": config,
        "tokenizer": tokenizer.state_dict(),
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


# What a run folder's config.yaml may not choose by itself: where data is read from or downloaded,
# where caches go, which checkpoint is loaded. A resume takes these from the command line only.
LOCATIONS = ("data.dir", "data.download", "data.url", "data.hub_name", "data.hub_config", "data.hub_revision",
             "data.files", "data.pair_files", "data.cache_dir", "trainer.resume_from")


def resumed_config(cfg: C.TrainConfig, run_dir: Path, overrides: Optional[List[str]]) -> C.TrainConfig:
    """``rosettamt-train hydra.run.dir=RUN trainer.resume=true [key=value ...]``: the run's own options.

    A resume command that selects no config group (``experiment=``, ``model=`` ...) continues RUN with
    the options it was trained with (``RUN/config.yaml``, written at every start) and this command's
    ``key=value`` overrides on top, instead of the packaged defaults. The :data:`LOCATIONS` are the
    exception: a folder is data, so where to read, download or cache comes from the command line, and
    a config.yaml that names other places than the command does is one error that prints the command
    to run. A command that selects a group is taken as given (the checkpoint must then match it), as
    is everything outside the CLI (``overrides`` None).
    """
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException
    from yaml import YAMLError

    from rosettamt.paths import config_dir

    saved = Path(run_dir) / "config.yaml"
    if overrides is None or not cfg.trainer.resume or cfg.trainer.resume_from or not saved.is_file():
        return cfg
    groups = {p.name for p in config_dir().iterdir() if p.is_dir()}
    keys = [o.split("=", 1)[0].lstrip("+") for o in overrides if not o.startswith("hydra.")]
    if any(k in groups or k.startswith("~") for k in keys):
        return cfg
    current = OmegaConf.create(C.to_dict(cfg))
    named = [loc for loc in LOCATIONS if any(k == loc or k.startswith(loc + ".") for k in keys)]
    try:
        base = OmegaConf.load(saved)
        if not isinstance(base, DictConfig):
            raise ValueError(f"a {type(base).__name__}, not a mapping of options")
        unnamed = [(loc, _plain(OmegaConf.select(base, loc))) for loc in LOCATIONS if loc not in named]
        for key in [*keys, *named, *(loc for loc, _ in unnamed)]:  # locations: the command's, whole
            OmegaConf.update(base, key, OmegaConf.select(current, key), merge=False, force_add=True)
        merged = C.to_object(OmegaConf.merge(OmegaConf.structured(C.TrainConfig), base))
    except (OmegaConfBaseException, YAMLError, ValueError, TypeError, OSError) as err:  # not YAML, not the schema
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"{saved}: cannot continue the run with its own options ({first}); give them on the "
                        "command line as when it started") from None
    missing = [f"{'++' if isinstance(value, dict) else ''}{loc}={_override(value)}" for loc, value in unnamed
               if value != _plain(OmegaConf.select(current, loc))]
    if missing:  # what to read, download or cache: the user's words, never the folder's
        given = [shlex.quote(o) for o in overrides if not o.startswith("hydra.") and not o.startswith("trainer.resume=")]
        rel = os.path.relpath(run_dir)
        raise UserError(f"{saved} names data, cache or checkpoint locations that this command does not; name "
                        "them to continue: " + " ".join(["rosettamt-train", *given, *missing, shlex.quote(
                            f"hydra.run.dir={run_dir if rel.startswith('..') else rel}"), "trainer.resume=true"]))
    changed = [k for k in keys if k != "trainer.resume"]
    log.info("resuming %s with the options it was started with (%s)%s", run_dir, saved.name,
             f"; this command sets {', '.join(changed)}" if changed else "")
    return merged


def _plain(value: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def _override(value: Any) -> str:
    """``value`` as a Hydra command-line value (lists ``[a,b]``, mappings ``{k:v}``), shell-quoted."""
    def render(v: Any) -> str:
        if isinstance(v, dict):
            return "{" + ",".join(f"{k}:{render(x)}" for k, x in v.items()) + "}"
        if isinstance(v, list):
            return "[" + ",".join(render(x) for x in v) + "]"
        return str(v).lower() if isinstance(v, bool) else str(v)

    return shlex.quote(render(value))
