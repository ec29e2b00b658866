"""SIGINT / SIGTERM in training (train/interrupt.py): the step finishes, last.pt holds it, every DDP
rank stops after the same step, a second signal aborts at once. (Resuming bit-identically from such a
checkpoint, through the command, is tests/e2e/test_train_cli.py.)"""

from __future__ import annotations

import signal
import time

import pytest
import torch
import torch.multiprocessing as mp

from rosettamt.checkpoint import load_checkpoint
from rosettamt.errors import Interrupted
from rosettamt.train.interrupt import StopSignals, resume_command
from rosettamt.train.loop import train
from helpers.train_toy import compose_train, ddp_signal_worker, free_port, toy_overrides


def test_first_signal_asks_to_stop_second_aborts_and_handlers_come_back():
    before = signal.getsignal(signal.SIGINT)
    with StopSignals() as stops:
        assert stops.poll() is None
        signal.raise_signal(signal.SIGTERM)
        assert stops.poll() == signal.SIGTERM  # only noted: the loop decides when to stop
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)  # the second: at once
    assert signal.getsignal(signal.SIGINT) is before
    with StopSignals() as stops:
        signal.raise_signal(signal.SIGTERM)
        with pytest.raises(Interrupted) as err:
            signal.raise_signal(signal.SIGTERM)
    assert err.value.exit_status == 143
    assert signal.getsignal(signal.SIGINT) is before


def test_resume_command_outside_the_cli_names_the_run(tmp_path):
    assert resume_command(tmp_path / "run").endswith(f"hydra.run.dir={tmp_path / 'run'} trainer.resume=true")
    assert resume_command(tmp_path, world_size=2).startswith("torchrun --nproc_per_node=2 -m rosettamt.train")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_step_saves_that_step_and_raises_interrupted(sig, toy_files, tmp_path, caplog):
    cfg = compose_train(toy_overrides(toy_files, tmp_path / "cache", "trainer.max_steps=40", "trainer.val_every=10",
                                      "trainer.save_every=10", "trainer.log_every=5", "trainer.average_last=3"))
    hook = lambda step, batch: signal.raise_signal(sig) if step == 13 else None  # noqa: E731
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(Interrupted) as err:
        train(cfg, tmp_path / "run", on_batch=hook)
    assert err.value.exit_status == 128 + sig and f"after step 13" in str(err.value)
    assert signal.getsignal(signal.SIGINT) is handler  # the loop's handlers are gone again
    ckpt_dir = tmp_path / "run" / "checkpoints"
    assert load_checkpoint(ckpt_dir / "last.pt")["step"] == 13  # the step in flight finished and was saved
    assert sorted(p.name for p in ckpt_dir.iterdir() if p.name.startswith("step")) == ["step0000010.pt"]
    log = (tmp_path / "run" / "train.log").read_text()
    assert f"{signal.Signals(sig).name}: stopped after step 13" in log and "resume with:" in log
    assert "validation step 13" not in log and not (tmp_path / "run" / "averaged.pt").exists()


def test_ddp_ranks_stop_after_the_same_step_when_one_rank_gets_the_signal(toy_files, tmp_path):
    run, out = tmp_path / "run", tmp_path / "out"
    out.mkdir()
    cfg = compose_train(toy_overrides(toy_files, tmp_path / "cache", "trainer.max_steps=30",
                                      "trainer.max_tokens=1024", "trainer.val_every=0", "trainer.save_every=5"))
    ctx = mp.spawn(ddp_signal_worker, args=(2, free_port(), cfg, str(run), str(out), 1, 7), nprocs=2, join=False)
    deadline = time.monotonic() + 300
    try:
        while not ctx.join(timeout=5):  # a rank that stopped alone would leave the other one waiting
            assert time.monotonic() < deadline, "a rank is still running: the ranks did not stop together"
    finally:
        for proc in ctx.processes:
            if proc.is_alive():
                proc.kill()
    r0, r1 = (torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0 == r1 == {"status": 143, "last_step": 7}  # rank 0 got no signal, yet stopped after step 7 too
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 7
