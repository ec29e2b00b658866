"""One checkpoint format for every use: training state, evaluation, translation.

A checkpoint is a dict of plain data (tensors, numbers, strings, bytes, lists, dicts),
written with ``torch.save`` and read with ``torch.load(weights_only=True)``: loading one
never runs code. It carries the model config and the tokenizer, so the file alone is
enough to translate::

    {"format": "rosettamt-1", "model": state_dict, "model_config": dict (ModelConfig),
     "config": dict (the resolved TrainConfig), "tokenizer": Tokenizer.state_dict(),
     "step": int, "epoch": int, "val_bleu": float | None,
     "langid": rosettamt.langid profiles (optional: checkpoints from before it detect nothing),
     # training only (optional): "optimizer", "scheduler", "sampler", "rng", "trainer"}

A training run keeps its checkpoints in ``<run_dir>/checkpoints/``: ``last.pt``, the best
few by validation BLEU (``best-step<N>-bleu<X>.pt``), optionally ``step<N>.pt`` for
averaging and ``averaged.pt``, and ``index.json`` saying which is which.

Modules: files.py (atomic save, hard links, weights-only load), runs.py (a run's checkpoint
folder, its index, ``checkpoint=`` / ``run_dir=`` resolution), model_state.py (stored config and
weights checked, model built). Importing this package does not import torch.
"""

from rosettamt.atomic import atomic_write
from rosettamt.checkpoint.files import FORMAT, TRAINING_KEYS, link_checkpoint, load_checkpoint, save_checkpoint
from rosettamt.checkpoint.model_state import config_mismatch, load_for_inference, load_model_state
from rosettamt.checkpoint.runs import (AVERAGED, CHECKPOINT_DIR, INDEX, LAST, checkpoint_dir, find_best_checkpoint,
                                       read_index, resolve_checkpoint, write_index)

__all__ = ["AVERAGED", "CHECKPOINT_DIR", "FORMAT", "INDEX", "LAST", "TRAINING_KEYS", "atomic_write",
           "checkpoint_dir", "config_mismatch", "find_best_checkpoint", "link_checkpoint", "load_checkpoint",
           "load_for_inference", "load_model_state", "read_index", "resolve_checkpoint", "save_checkpoint",
           "write_index"]
