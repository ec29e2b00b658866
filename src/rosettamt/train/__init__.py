"""Training: loop, loss, schedule, checkpoints, validation BLEU.

``rosettamt.train.loop.train(cfg, run_dir)`` runs a whole training job (what ``rosettamt-train``
calls); the other modules are its parts: ``loss`` (label-smoothed cross-entropy), ``optim``
(AdamW + warmup schedules), ``validate`` (val loss / BLEU), ``saver`` (last / best-k / periodic
checkpoints), ``average`` (checkpoint averaging), ``metrics`` and ``progress`` (what a run
reports), ``device`` and ``distributed`` (threads, precision, RNG state, torchrun). Kept free
of imports here so that ``rosettamt.device`` stays cheap to import for inference code.
"""
