"""Training: loop, loss, schedule, checkpoints, validation BLEU.

``rosettamt.train.loop.train(cfg, run_dir)`` runs a whole training job (what ``rosettamt-train``
calls); ``loop.Trainer`` is the loop itself. Its parts, one job each: ``setup`` (option checks,
data, model, sampler), ``resume`` (what a training checkpoint holds, and restoring it),
``state`` (the run's counters), ``loss`` (label-smoothed cross-entropy), ``optim`` (AdamW +
warmup schedules), ``meter`` (loss and tokens/s of a log interval), ``validate`` (val loss /
BLEU), ``outputs`` (rank 0's files), ``saver`` (last / best-k / periodic checkpoints),
``average`` (checkpoint averaging), ``metrics``, ``progress``, ``logfile`` and ``report`` (what a
run reports, and its end), ``distributed`` and ``rng`` (torchrun, RNG state). Kept free of
imports here so that importing one part does not import them all.
"""
