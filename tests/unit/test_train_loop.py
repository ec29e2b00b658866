"""The training loop on the toy pair, in-process: learning, exact resume, accumulation, stopping, guards."""

from __future__ import annotations

import json

import pytest
import torch

from rosettamt.checkpoint import load_checkpoint, read_index
from rosettamt.data.batching import collate
from rosettamt.errors import UserError
from rosettamt.train.loop import Trainer, train
from rosettamt.train.loss import label_smoothed_loss



def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_training_learns_and_writes_the_run_directory(make_cfg, tmp_path):
    run = tmp_path / "run"
    result = train(make_cfg("trainer.max_steps=120", "trainer.val_every=40", "trainer.save_every=40",
                            "trainer.log_every=20"), run)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train_recs = [r for r in records if r["kind"] == "train"]
    val_recs = [r for r in records if r["kind"] == "val"]
    assert [r["step"] for r in train_recs] == [20, 40, 60, 80, 100, 120]
    assert [r["step"] for r in val_recs] == [40, 80, 120]
    assert train_recs[-1]["loss"] < train_recs[0]["loss"] - 1.0  # it learns
    assert val_recs[-1]["loss"] < val_recs[0]["loss"] and val_recs[-1]["bleu"] >= val_recs[0]["bleu"]
    times = [r["time"] for r in records]
    assert times == sorted(times) and times[0] > 0  # wall-clock seconds, for BLEU-vs-time plots
    assert all(r["tgt_tok_per_s"] > 0 and r["lr"] > 0 for r in train_recs)
    for name in ("train.log", "config.yaml", "curves.png", "checkpoints/last.pt", "checkpoints/index.json"):
        assert (run / name).is_file(), name
    assert "validation step 120" in (run / "train.log").read_text()
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["step"] == 120 and last["model_config"]["src_vocab_size"] == 100
    assert last["config"]["trainer"]["max_steps"] == 120 and last["sampler"]["position"] > 0
    assert {"python", "numpy", "torch", "cuda"} <= set(last["rng"][0])
    assert _same(last["model"], result.model.state_dict())
    best = read_index(run / "checkpoints")["best"]
    assert 1 <= len(best) <= 2 and result.best_checkpoint.name == best[0]["file"]


def test_resume_continues_bit_identically_across_an_epoch_boundary(make_cfg, tmp_path):
    common = ("model.dropout=0.2", "trainer.max_tokens=2048", "trainer.val_every=10", "trainer.save_every=10")
    full = train(make_cfg(*common, "trainer.max_steps=30"), tmp_path / "full")
    part = tmp_path / "part"
    first = train(make_cfg(*common, "trainer.max_steps=13"), part)
    assert first.epoch == 0 and not _same(first.model.state_dict(), full.model.state_dict())
    again = train(make_cfg(*common, "trainer.max_steps=30", "trainer.resume=true"), part)
    assert again.epoch >= 1  # the 30 steps cross into a second epoch
    assert _same(again.model.state_dict(), full.model.state_dict())
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")
    b = load_checkpoint(part / "checkpoints" / "last.pt")
    assert a["sampler"] == b["sampler"] and torch.equal(a["rng"][0]["torch"], b["rng"][0]["torch"])
    steps = [json.loads(line)["step"] for line in (part / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["kind"] == "train"]
    assert steps == sorted(set(steps))  # nothing logged twice across the resumption


def test_accumulated_micro_batches_give_the_gradient_of_their_union(make_cfg, tmp_path):
    cfg = make_cfg("optim.clip_norm=0", "optim.accum_steps=2")
    trainer = Trainer(cfg, tmp_path / "run")
    stream = trainer.batches()
    b1, b2 = next(stream), next(stream)
    grads = []
    trainer.optimizer.step = lambda: grads.append([p.grad.clone() for p in trainer.model.parameters()])
    trainer.scheduler.step = lambda: None

    def rows(b, side):
        x = b.tgt_out if side == "tgt" else b.src
        return [[t for t in r.tolist() if t not in (0, 3)] for r in x]

    union = collate(rows(b1, "src") + rows(b2, "src"), rows(b1, "tgt") + rows(b2, "tgt"),
                    b1.indices.tolist() + b2.indices.tolist())
    trainer.train_step([b1, b2])
    trainer.train_step([union])
    trainer.train_step([b1])
    accumulated, together, alone = grads
    for g_acc, g_all in zip(accumulated, together):
        torch.testing.assert_close(g_acc, g_all, rtol=1e-4, atol=1e-6)
    assert any(not torch.allclose(g_acc, g_one, rtol=1e-3) for g_acc, g_one in zip(accumulated, alone))


def test_max_epochs_with_accumulation_counts_optimizer_steps(make_cfg, tmp_path):
    seen = []
    cfg = make_cfg("trainer.max_steps=0", "trainer.max_epochs=1", "trainer.max_tokens=2048", "optim.accum_steps=2",
                   "trainer.val_every=0", "trainer.save_every=0")
    result = train(cfg, tmp_path / "run", on_batch=lambda step, b: seen.append((step, b.indices.tolist())))
    assert result.stop_reason == "max_epochs" and result.step == len(seen) // 2 > 0
    assert [s for s, _ in seen] == [i // 2 + 1 for i in range(len(seen))]  # two micro-batches per step
    rows = [i for _, b in seen for i in b]
    assert len(rows) == len(set(rows))  # one epoch: no example twice
    assert 2000 - len(rows) <= max(len(b) for _, b in seen)  # at most an odd last batch left over
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()  # saved at the end anyway


def test_stops_on_max_time_and_on_patience(make_cfg, tmp_path):
    timed = train(make_cfg("trainer.max_steps=100000", "trainer.max_time=0.001", "trainer.val_every=0"),
                  tmp_path / "timed")
    assert timed.stop_reason == "max_time" and timed.step == 1  # checked after every step
    last = tmp_path / "timed" / "checkpoints" / "last.pt"
    before = last.stat().st_mtime_ns, last.read_bytes()
    again = train(make_cfg("trainer.max_steps=100000", "trainer.max_time=0.001", "trainer.val_every=0",
                           "trainer.resume=true"), tmp_path / "timed")
    assert again.stop_reason == "max_time" and again.step == 1  # time already spent: not one step more
    assert (last.stat().st_mtime_ns, last.read_bytes()) == before  # and last.pt is not rewritten
    flat = train(make_cfg("optim.lr=0", "trainer.patience=2", "trainer.val_every=5", "trainer.max_steps=100"),
                 tmp_path / "flat")  # lr 0: BLEU never improves
    assert flat.stop_reason == "early_stopping" and flat.step == 15


def test_resume_guards_and_model_config_mismatch(make_cfg, tmp_path):
    run = tmp_path / "run"
    train(make_cfg("trainer.max_steps=5", "trainer.val_every=0"), run)
    with pytest.raises(UserError, match="already holds a training run.*trainer.resume=true"):
        train(make_cfg("trainer.max_steps=5"), run)
    with pytest.raises(UserError, match="does not exist.*hydra.run.dir"):
        train(make_cfg("trainer.resume=true"), tmp_path / "empty")
    with pytest.raises(UserError, match=r"different model config: d_model=32 \(checkpoint\) != 48 \(config\)"):
        train(make_cfg("trainer.resume=true", "model.d_model=48", "trainer.max_steps=10"), run)
    with pytest.raises(UserError, match=r"resume_from=.*nope.*no checkpoint"):
        train(make_cfg(f"trainer.resume_from={tmp_path / 'nope.pt'}"), tmp_path / "other")


def test_average_last_at_the_end_of_training(make_cfg, tmp_path):
    run = tmp_path / "run"
    train(make_cfg("trainer.max_steps=15", "trainer.save_every=5", "trainer.val_every=15", "trainer.average_last=2"),
          run)
    index = read_index(run / "checkpoints")
    assert [e["step"] for e in index["periodic"]] == [10, 15]
    assert index["averaged"]["sources"] == ["step0000010.pt", "step0000015.pt"]
    assert index["averaged"]["bleu"] is not None
    avg = load_checkpoint(run / "checkpoints" / "averaged.pt")
    s10, s15 = (load_checkpoint(run / "checkpoints" / f"step00000{n}.pt")["model"] for n in (10, 15))
    for k, v in avg["model"].items():
        torch.testing.assert_close(v, (s10[k] + s15[k]) / 2)


def test_train_step_options_for_the_benchmark_ablations(make_cfg, tmp_path):
    """scripts/bench_train.py swaps the loss and projects every position through constructor options."""
    calls = []

    def loss_fn(logits, target, smoothing, pad_id):
        calls.append((tuple(logits.shape), tuple(target.shape), smoothing, pad_id))
        loss = logits.float().logsumexp(-1).sum()
        return loss, loss.detach()

    cfg = make_cfg("optim.label_smoothing=0.1")
    trainer = Trainer(cfg, tmp_path / "run", loss_fn=loss_fn, project_all_positions=True)
    batch = next(trainer.batches())
    assert trainer.target_rows(batch) is None
    trainer.train_step([batch])
    (logits, target, smoothing, pad), = calls
    assert logits[:-1] == tuple(batch.tgt_out.shape) and target == tuple(batch.tgt_out.shape)  # (B, T, V), (B, T)
    assert (smoothing, pad) == (0.1, 0)
    assert trainer.state.step == 1 and trainer.meter.steps == 1 and trainer.meter.tgt_tokens == batch.n_tgt_tokens
    plain = Trainer(make_cfg(), tmp_path / "plain")
    rows = plain.target_rows(batch)
    assert plain.loss_fn is label_smoothed_loss and rows.numel() == batch.n_tgt_tokens  # non-padding only


def test_bad_decode_options_fail_before_training(make_cfg, tmp_path):
    """The final evaluation decodes with decode.*: a bad value is an error at the start, not after the run."""
    with pytest.raises(UserError, match=r"decode.beam_size=0 must be"):
        train(make_cfg("decode.beam_size=0"), tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()
