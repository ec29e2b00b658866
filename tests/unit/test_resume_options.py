"""``rosettamt-train hydra.run.dir=RUN trainer.resume=true``: the run's own options, not the defaults."""

from __future__ import annotations

import dataclasses

import pytest
from omegaconf import OmegaConf

from rosettamt import config as C
from rosettamt.errors import UserError
from rosettamt.train.resume import resumed_config


@pytest.fixture
def run(make_cfg, tmp_path):
    """A run directory whose config.yaml holds a toy run's options (as the trainer writes it)."""
    started = make_cfg("trainer.max_steps=40", "model.d_ff=48", "seed=7")
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(C.to_dict(started)))
    return tmp_path, started


def test_a_resume_naming_no_group_takes_the_runs_options_and_changes_only_what_it_says(run):
    run_dir, started = run
    defaults = C.to_object(OmegaConf.merge(OmegaConf.structured(C.TrainConfig), {"trainer": {"resume": True,
                                                                                             "max_steps": 90}}))
    got = resumed_config(defaults, run_dir, ["trainer.resume=true", "trainer.max_steps=90"])
    assert (got.model, got.data, got.tokenizer, got.seed) == (started.model, started.data, started.tokenizer, 7)
    assert got.trainer.max_steps == 90 and got.trainer.resume
    assert got.model.d_ff == 48 and defaults.model.d_ff != 48  # the run's, not the packaged default


def test_a_resume_that_names_a_group_or_is_not_a_resume_is_taken_as_given(run):
    run_dir, _ = run
    cfg = C.to_object(OmegaConf.merge(OmegaConf.structured(C.TrainConfig), {"trainer": {"resume": True}}))
    assert resumed_config(cfg, run_dir, ["model=tiny", "trainer.resume=true"]) is cfg
    assert resumed_config(cfg, run_dir, None) is cfg  # the Python API: what the caller built
    fresh = dataclasses.replace(cfg, trainer=dataclasses.replace(cfg.trainer, resume=False))
    assert resumed_config(fresh, run_dir, ["trainer.max_steps=5"]) is fresh


def test_a_damaged_config_yaml_is_one_line_naming_it(run):
    run_dir, _ = run
    cfg = C.to_object(OmegaConf.merge(OmegaConf.structured(C.TrainConfig), {"trainer": {"resume": True}}))
    for text in ("model: {d_ff: lots}\n", "- a list\n", "trainer: [\n"):
        (run_dir / "config.yaml").write_text(text)
        with pytest.raises(UserError) as err:
            resumed_config(cfg, run_dir, ["trainer.resume=true"])
        assert str(run_dir / "config.yaml") in str(err.value) and "\n" not in str(err.value)
