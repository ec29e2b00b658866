"""``rosettamt-train hydra.run.dir=RUN trainer.resume=true``: the run's own options, not the defaults;
but where data is read, downloaded or cached comes from the command line, never from the folder."""

from __future__ import annotations

import dataclasses

import pytest
from omegaconf import OmegaConf

from rosettamt import config as C
from rosettamt.errors import UserError
from rosettamt.train.resume_options import hydra_override, resumed_config


def _cfg(**groups) -> C.TrainConfig:
    """What Hydra composes for a resume command with these values (the packaged defaults otherwise)."""
    return C.to_object(OmegaConf.merge(OmegaConf.structured(C.TrainConfig), {"trainer": {"resume": True}}, groups))


@pytest.fixture
def run(make_cfg, tmp_path):
    """A run directory whose config.yaml holds a toy run's options (as the trainer writes it)."""
    started = make_cfg("trainer.max_steps=40", "model.d_ff=48", "seed=7")
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(C.to_dict(started)))
    return tmp_path, started


def _where(started: C.TrainConfig) -> dict:
    return {"files": dict(started.data.files), "cache_dir": started.data.cache_dir}


def test_a_resume_naming_no_group_takes_the_runs_options_and_changes_only_what_it_says(run):
    run_dir, started = run
    cfg = _cfg(trainer={"resume": True, "max_steps": 90}, data=_where(started))
    got = resumed_config(cfg, run_dir, ["trainer.resume=true", "trainer.max_steps=90", "data.files.train=x",
                                        "data.files.val=x", "data.files.test=x", "data.cache_dir=x"])
    assert (got.model, got.data, got.tokenizer, got.seed) == (started.model, started.data, started.tokenizer, 7)
    assert got.trainer.max_steps == 90 and got.trainer.resume
    assert got.model.d_ff == 48 and cfg.model.d_ff != 48  # the run's, not the packaged default


def test_the_folder_never_chooses_what_is_read_downloaded_or_cached(run):
    import shlex

    from helpers.train_toy import compose_train

    run_dir, started = run
    with pytest.raises(UserError) as err:  # the toy run's files and cache: the command must name them
        resumed_config(_cfg(), run_dir, ["trainer.resume=true", "trainer.max_steps=90"])
    message = str(err.value)
    assert "\n" not in message and str(run_dir / "config.yaml") in message and "data.files" in message
    command = shlex.split(message.split("name them to continue: ", 1)[1])
    assert command[0] == "rosettamt-train" and command[-1] == "trainer.resume=true" and "trainer.max_steps=90" in command
    overrides = [a for a in command[1:] if not a.startswith("hydra.")]  # what the user then runs, as Hydra reads it
    got = resumed_config(compose_train(overrides), run_dir, overrides)
    assert (got.data, got.model, got.trainer.max_steps) == (started.data, started.model, 90)

    saved = OmegaConf.load(run_dir / "config.yaml")  # a handed folder that would download from elsewhere
    saved.data.url, saved.data.download, saved.trainer.resume_from = "http://example.invalid/x", True, "/tmp/x.pt"
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(saved))
    named = ["trainer.resume=true", "data.files.train=x", "data.files.val=x", "data.files.test=x", "data.cache_dir=x"]
    with pytest.raises(UserError) as err:
        resumed_config(_cfg(data=_where(started)), run_dir, named)
    assert """data.url="http://example.invalid/x\"""" in str(err.value) and "data.files=" not in str(err.value)
    assert "resume_from" not in str(err.value)  # never asked for: a resume continues RUN's own last.pt
    cfg = _cfg(data={**_where(started), "url": "http://example.invalid/x"})
    assert resumed_config(cfg, run_dir, [*named, "data.url=http://example.invalid/x"]).trainer.resume_from is None


def test_a_location_that_hydra_cannot_spell_is_asked_for_by_name():
    assert hydra_override("data.dir", "a/b c") == """'data.dir="a/b c"'"""
    assert hydra_override("data.files", {"train": ["x.{src}", "y"]}) == """'++data.files={train:["x.{src}","y"]}'"""
    assert hydra_override("data.hub_config", None) == "data.hub_config=null"
    assert hydra_override("data.dir", "line\nbreak") is None and hydra_override("data.files", {"a:b": []}) is None
    assert hydra_override("data.dir", "runs/${oc.env:HOME}") is None  # would be resolved, not kept
    assert hydra_override("data.files", {"train": ["$x", "{a}"]}) == """'++data.files={train:["$x","{a}"]}'"""


def test_a_resume_that_names_a_group_or_is_not_a_resume_is_taken_as_given(run):
    run_dir, _ = run
    cfg = _cfg()
    assert resumed_config(cfg, run_dir, ["model=tiny", "trainer.resume=true"]) is cfg
    assert resumed_config(cfg, run_dir, None) is cfg  # the Python API: what the caller built
    fresh = dataclasses.replace(cfg, trainer=dataclasses.replace(cfg.trainer, resume=False))
    assert resumed_config(fresh, run_dir, ["trainer.max_steps=5"]) is fresh


def test_a_damaged_config_yaml_is_one_line_naming_it(run):
    run_dir, _ = run
    for text in ("model: {d_ff: lots}\n", "- a list\n", "trainer: [\n"):
        (run_dir / "config.yaml").write_text(text)
        with pytest.raises(UserError) as err:
            resumed_config(_cfg(), run_dir, ["trainer.resume=true"])
        assert str(run_dir / "config.yaml") in str(err.value) and "\n" not in str(err.value)
