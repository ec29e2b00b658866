"""The run's counters (train/state.py): the checkpoint format they are saved in, and a resumed Trainer's."""

from __future__ import annotations

import time

import pytest

from rosettamt.checkpoint import load_checkpoint
from rosettamt.train.loop import Trainer, train
from rosettamt.train.state import TrainState
from helpers.train_toy import compose_train, toy_overrides


def _state() -> TrainState:
    return TrainState(step=120, epoch=3, best_bleu=27.5, bad_validations=2, elapsed_before=61.25, val_step=100,
                      saved_step=120, last_val={"bleu": 26.0})


def test_state_dict_keeps_the_checkpoint_format():
    """The entries every checkpoint since the first has: old checkpoints must keep resuming."""
    assert _state().state_dict() == {
        "step": 120, "epoch": 3,
        "trainer": {"best_bleu": 27.5, "bad_validations": 2, "elapsed": 61.25, "val_step": 100},
    }


def test_state_round_trips_through_state_dict():
    saved = _state()
    loaded = TrainState()
    loaded.load_state_dict(saved.state_dict())
    assert loaded.state_dict() == saved.state_dict()
    for name in ("step", "epoch", "best_bleu", "bad_validations", "elapsed_before", "val_step"):
        assert getattr(loaded, name) == getattr(saved, name), name
    # this session's own fields are not part of a checkpoint
    assert loaded.saved_step == -1 and loaded.last_val is None and loaded.started is None


def test_fresh_state_round_trips_and_loads_a_whole_checkpoint():
    fresh = TrainState()
    assert fresh.state_dict()["trainer"]["best_bleu"] is None
    ckpt = {"model": {}, "optimizer": {}, **fresh.state_dict()}  # load_state_dict reads a whole checkpoint
    loaded = TrainState(step=5, best_bleu=1.0)
    loaded.load_state_dict(ckpt)
    assert loaded == fresh


def test_elapsed_adds_this_session_to_the_earlier_ones():
    state = TrainState(elapsed_before=10.0)
    assert state.elapsed() == 10.0  # the clock has not started: setup time is not training time
    state.start_clock()
    time.sleep(0.01)
    assert state.elapsed() >= 10.01
    assert state.state_dict()["trainer"]["elapsed"] >= 10.01


def test_validations_track_the_best_bleu_and_early_stopping():
    state = TrainState(step=10)
    assert state.record_validation({"bleu": 5.0}) and state.best_bleu == 5.0
    state.step = 20
    assert not state.record_validation({"bleu": 5.0}) and state.bad_validations == 1  # equal is no gain
    state.step = 30
    assert not state.record_validation({"bleu": 4.0}) and state.bad_validations == 2 and state.best_bleu == 5.0
    assert state.record_validation({"bleu": 6.0}) and state.bad_validations == 0
    state.val_step = 30
    assert state.val_bleu() == 6.0
    state.step = 31  # a checkpoint at a later step was not validated
    assert state.val_bleu() is None


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def test_a_resumed_trainer_has_the_state_of_its_checkpoint(toy_files, cache, tmp_path):
    run = tmp_path / "run"
    extra = ("trainer.val_every=4", "trainer.save_every=0", "trainer.log_every=3")
    train(compose_train(toy_overrides(toy_files, cache, "trainer.max_steps=10", *extra)), run)
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["step"] == 10 and ckpt["trainer"]["val_step"] == 10 and ckpt["trainer"]["elapsed"] > 0
    resumed = Trainer(compose_train(toy_overrides(toy_files, cache, "trainer.max_steps=20", "trainer.resume=true",
                                                  *extra)), run)
    assert resumed.state.state_dict() == {k: ckpt[k] for k in ("step", "epoch", "trainer")}
    assert resumed.state.saved_step == 10  # resumed from last.pt itself: the end need not write it again
    assert resumed.sampler.state_dict()["position"] == ckpt["sampler"]["position"]
