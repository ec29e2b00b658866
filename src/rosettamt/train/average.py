"""Checkpoint averaging (the fairseq/Marian recipe): the mean of the last or best N weight sets."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
from torch import nn

from rosettamt.checkpoint import (AVERAGED, TRAINING_KEYS, checkpoint_dir, config_mismatch, load_checkpoint,
                                  read_index, save_checkpoint)
from rosettamt.checkpoint.model_state import check_weights, stored_model_config, stored_tokenizer
from rosettamt.config import ModelConfig
from rosettamt.errors import UserError
from rosettamt.model import Seq2SeqTransformer
from rosettamt.train.saver import CheckpointSaver
from rosettamt.train.state import TrainState

log = logging.getLogger("rosettamt.train")

AVERAGED_BEST = "averaged-best.pt"  # trainer.average_best

ScoreFn = Callable[[nn.Module], Dict[str, float]]  # a model -> its validation scores


def select_checkpoints(run_dir: Path, last: int = 0, best: int = 0) -> List[Path]:
    """The ``last`` most recent periodic checkpoints, or the ``best`` by validation BLEU, of a run."""
    if (last > 0) == (best > 0):
        raise UserError("choose exactly one of last=N or best=N (N > 0) to pick checkpoints to average")
    ckpt_dir = checkpoint_dir(run_dir)
    index = read_index(ckpt_dir)
    if last > 0:
        entries, what = index.get("periodic", []), "periodic step*.pt"
        picked = entries[-last:]
        hint = "train with trainer.average_last=N to keep the last N"
    else:
        entries, what = index["best"], "best-*.pt"
        picked = entries[:best]
        hint = "raise trainer.keep_best"
    paths = [ckpt_dir / e["file"] for e in picked if (ckpt_dir / e["file"]).is_file()]
    wanted = last or best
    if len(paths) < wanted:
        raise UserError(f"{ckpt_dir} has {len(paths)} {what} checkpoint(s), {wanted} requested ({hint})")
    return paths


def average_checkpoints(paths: Sequence[Path]) -> Dict[str, Any]:
    """A checkpoint whose weights are the element-wise mean of ``paths``.

    Every input is checked as a checkpoint from elsewhere (stored config, weight shapes,
    tokenizer), and all must share the model config and the tokenizer (by content): the mean
    of weights trained for different vocabularies is no model. A mismatch names the two files.
    Floating-point tensors are summed in float64 and cast back; other tensors (integer
    buffers) are taken from the last checkpoint. Training state is not carried over.
    """
    if not paths:
        raise UserError("no checkpoints to average")
    total: Dict[str, torch.Tensor] = {}
    first: Dict[str, Any] = {}
    first_tokenizer = ""
    for i, path in enumerate(paths):
        ckpt = load_checkpoint(path)
        for key in TRAINING_KEYS:  # optimizer state etc. is not averaged: drop it early
            ckpt.pop(key, None)
        check_weights(ckpt, stored_model_config(ckpt, path), path)
        tokenizer = stored_tokenizer(ckpt, path).content_hash
        if i == 0:
            first, first_tokenizer = ckpt, tokenizer
        else:
            diff = config_mismatch(first["model_config"], ckpt["model_config"])
            if diff or set(ckpt["model"]) != set(total):
                raise UserError(f"cannot average {paths[0]} and {path}: different models "
                                f"({'; '.join(diff) or 'different parameter names'})")
            if tokenizer != first_tokenizer:
                raise UserError(f"cannot average {paths[0]} and {path}: their tokenizers differ (content hash "
                                f"{first_tokenizer[:12]} != {tokenizer[:12]}), so their weights mean different pieces")
        for name, tensor in ckpt["model"].items():
            if tensor.is_floating_point():
                acc = tensor.to(torch.float64)
                total[name] = acc if i == 0 else total[name] + acc
            else:
                total[name] = tensor
        last = ckpt
    model = {k: (v / len(paths)).to(first["model"][k].dtype) if v.is_floating_point() else v
             for k, v in total.items()}
    return {
        "model": model,
        "model_config": first["model_config"],
        "config": last.get("config", {}),
        "tokenizer": last["tokenizer"],
        **({"langid": last["langid"]} if "langid" in last else {}),
        "step": last.get("step", 0),
        "epoch": last.get("epoch", 0),
        "val_bleu": None,
        "averaged_from": [str(Path(p).name) for p in paths],
    }


def average_at_end(saver: CheckpointSaver, n: int, model_cfg: ModelConfig, device: torch.device, score: ScoreFn,
                   state: TrainState, best: bool = False) -> Optional[Dict[str, Any]]:
    """trainer.average_last=n: write averaged.pt, the mean of the run's last n periodic checkpoints;
    with ``best`` (trainer.average_best=n) averaged-best.pt, the mean of the n best by val BLEU.

    ``score`` validates the averaged model; its BLEU goes into the checkpoint and the index
    (key "averaged" / "averaged_best"), so that the rule of train/select.py can weigh it against
    the best single checkpoint. Returns the metrics record, or None when fewer than two
    checkpoints were kept.
    """
    paths = saver.best_paths()[:n] if best else saver.periodic_paths()[-n:]
    option, kind, file = (("average_best", "averaged_best", AVERAGED_BEST) if best
                          else ("average_last", "averaged", AVERAGED))
    if len(paths) < 2:
        log.warning("trainer.%s=%d: only %d checkpoint(s) kept; nothing to average", option, n, len(paths))
        return None
    avg = average_checkpoints(paths)
    model = Seq2SeqTransformer(model_cfg).to(device)
    model.load_state_dict(avg["model"])
    scores = score(model)
    avg["val_bleu"] = scores["bleu"]
    save_checkpoint(avg, saver.dir / file)
    saver.set_averaged(file, state.step, scores["bleu"], avg["averaged_from"], key=kind)
    log.info("averaged %d checkpoints (%s): val BLEU %.2f (best single %.2f)", len(paths),
             ", ".join(avg["averaged_from"]), scores["bleu"], state.best_bleu or 0.0)
    return {"kind": kind, "step": state.step, **scores, "time": state.elapsed(),
            "sources": avg["averaged_from"]}
