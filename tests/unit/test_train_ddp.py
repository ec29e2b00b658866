"""Data parallelism: two CPU processes with gloo on the toy pair."""

from __future__ import annotations

import torch
import torch.multiprocessing as mp

from rosettamt.checkpoint import load_checkpoint
from helpers.train_toy import compose_train, ddp_worker, free_port, toy_overrides


def test_two_gloo_ranks_see_different_batches_and_end_with_identical_weights(toy_files, tmp_path):
    run, out = tmp_path / "run", tmp_path / "out"
    out.mkdir()
    cfg = compose_train(toy_overrides(toy_files, tmp_path / "cache", "trainer.max_steps=12",
                                      "trainer.max_tokens=1024", "trainer.val_every=6", "trainer.save_every=6",
                                      "model.dropout=0.1"))
    mp.spawn(ddp_worker, args=(2, free_port(), cfg, str(run), str(out)), nprocs=2, join=True)
    r0, r1 = (torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["step"] == r1["step"] == 12
    assert len(r0["batches"]) == len(r1["batches"]) == 12
    rows0 = {i for b in r0["batches"] for i in b}
    rows1 = {i for b in r1["batches"] for i in b}
    assert rows0 and rows1 and not rows0 & rows1  # each rank its own share of the epoch
    assert r0["model"].keys() == r1["model"].keys()
    assert all(torch.equal(r0["model"][k], r1["model"][k]) for k in r0["model"])  # gradients all-reduced
    last = load_checkpoint(run / "checkpoints" / "last.pt")  # written by rank 0 alone
    assert all(torch.equal(last["model"][k], r0["model"][k]) for k in r0["model"])
    assert len(last["rng"]) == 2 and last["sampler"]["world_size"] == 2
    assert not torch.equal(last["rng"][0]["torch"], last["rng"][1]["torch"])  # per-rank dropout streams
    log = (run / "train.log").read_text()
    assert log.count("validation step 6:") == 1 and "world size 2" in log  # only rank 0 logs
