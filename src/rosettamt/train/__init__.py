"""Training: loop, loss, schedule, checkpoints, validation BLEU."""
