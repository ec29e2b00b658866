"""One log interval's numbers (train/meter.py) and the time left that the progress line shows."""

from __future__ import annotations

import math

import pytest
import torch

from rosettamt.config import Progress as Mode
from rosettamt.config import TrainerConfig
from rosettamt.train import meter as M
from rosettamt.train.progress import Progress


class Clock:
    """A perf_counter the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(M.time, "perf_counter", c)
    return c


def test_summary_is_per_token_and_per_second(clock):
    meter = M.ThroughputMeter("cpu", world_size=2)
    meter.add(torch.tensor(30.0), torch.tensor(20.0), src_tokens=8, tgt_tokens=10)  # two micro-batches
    meter.add(torch.tensor(12.0), torch.tensor(10.0), src_tokens=4, tgt_tokens=4)
    meter.end_step(torch.tensor(3.0))
    meter.add(torch.tensor(18.0, requires_grad=True), torch.tensor(12.0), src_tokens=6, tgt_tokens=6)
    meter.end_step(torch.tensor(1.5))
    clock.now += 2.0
    s = meter.summary()
    assert s["loss"] == pytest.approx(60.0 / 20) and s["nll"] == pytest.approx(42.0 / 20)
    assert s["ppl"] == pytest.approx(math.exp(42.0 / 20))
    assert s["grad_norm"] == 1.5  # the interval's last step
    assert s["tgt_tok_per_s"] == pytest.approx(20 / 2.0)  # summed over ranks (one here)
    assert s["src_tok_per_s"] == pytest.approx(18 * 2 / 2.0)  # every rank counted as this one
    assert s["steps_per_s"] == pytest.approx(2 / 2.0) and meter.steps == 2


def test_paused_time_does_not_count_and_reset_starts_over(clock):
    meter = M.ThroughputMeter()
    meter.add(torch.tensor(5.0), torch.tensor(5.0), src_tokens=10, tgt_tokens=10)
    meter.end_step()
    clock.now += 1.0
    with meter.paused():  # validation, checkpoints
        clock.now += 50.0
    clock.now += 1.0
    s = meter.summary()
    assert s["tgt_tok_per_s"] == pytest.approx(10 / 2.0) and s["grad_norm"] is None
    meter.reset()
    clock.now += 1.0
    s = meter.summary()
    assert meter.steps == 0 and meter.tgt_tokens == 0 and s["loss"] == 0.0 and s["steps_per_s"] == 0.0


@pytest.mark.parametrize("max_steps,max_time,expected", [(100, 0.0, 40.0), (0, 500.0, 380.0), (100, 150.0, 30.0),
                                                          (0, 0.0, None), (100, 100.0, 0.0)])
def test_remaining_is_the_first_foreseeable_stop(max_steps, max_time, expected):
    progress = Progress(TrainerConfig(max_steps=max_steps, max_time=max_time, progress=Mode.log), 0)
    record = {"step": 60, "steps_per_s": 1.0, "time": 120.0}
    assert progress.remaining(record) == expected
