"""Configs compose for every group option; wrong keys and types fail at composition."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ValidationError, ConfigKeyError

from rosettamt import config as C
from rosettamt.paths import config_dir

C.register_schemas()
CONFIGS = config_dir()
GROUP_OPTIONS = {
    group: sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))
    for group in ("data", "tokenizer", "model", "optim", "trainer", "decode", "experiment")
}
REQUIRED = {"hub": ["data.hub_name=x"], "files": ["data.files.train=[a,b]"]}


def _compose(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


@pytest.mark.parametrize("group,option", [(g, o) for g, opts in GROUP_OPTIONS.items() for o in opts])
def test_every_group_option_composes_into_the_schema(group, option):
    overrides = [f"{group}={option}"] + REQUIRED.get(option, [])
    cfg = C.to_object(_compose("train", overrides))
    assert isinstance(cfg, C.TrainConfig)
    assert isinstance(cfg.model, C.ModelConfig) and isinstance(cfg.decode, C.DecodeConfig)


@pytest.mark.parametrize("name,schema", [("prepare", C.PrepareConfig), ("train", C.TrainConfig),
                                         ("evaluate", C.EvaluateConfig), ("translate", C.TranslateConfig),
                                         ("average", C.AverageConfig)])
def test_primary_configs_compose(name, schema):
    assert isinstance(C.to_object(_compose(name, [])), schema)


def test_group_option_values_reach_the_dataclass():
    cfg = C.to_object(_compose("train", ["model=multi30k_tiny", "decode=beam", "data.src_lang=de", "data.tgt_lang=en"]))
    assert (cfg.model.d_model, cfg.model.encoder_layers, cfg.model.d_ff, cfg.model.dropout) == (128, 4, 256, 0.3)
    assert cfg.decode.strategy == C.Strategy.beam and cfg.decode.beam_size == 5
    assert (cfg.data.src_lang, cfg.data.tgt_lang) == ("de", "en")


def test_experiment_overrides_model_and_direction():
    cfg = C.to_object(_compose("train", ["experiment=multi30k_de_en"]))
    assert cfg.model.d_model == 128 and cfg.data.src_lang == "de" and cfg.experiment_name == "multi30k_de_en"


def _flat(node, prefix=""):
    if not isinstance(node, dict):
        return {prefix[:-1]: node}
    return {k: v for key, sub in node.items() for k, v in _flat(sub, f"{prefix}{key}.").items()}


def test_fast_recipe_is_the_en_de_recipe_with_a_schedule_that_ends_in_budget():
    from omegaconf import OmegaConf
    from rosettamt.train.optim import lr_factor

    base, fast = (_flat(OmegaConf.to_container(_compose("train", [f"experiment={name}"])))
                  for name in ("multi30k_en_de", "multi30k_en_de_fast"))
    changed = {key for key in base.keys() | fast.keys() if base.get(key) != fast.get(key)}
    # model, data, batches, dropout, decoding and metric are the recipe's own
    assert changed <= {"experiment_name", "optim.schedule", "optim.warmup_steps", "optim.min_lr",
                       "optim.lr", "trainer.max_steps", "trainer.max_time", "trainer.average_last"}, changed
    cfg = C.to_object(_compose("train", ["experiment=multi30k_en_de_fast"]))
    assert cfg.optim.schedule == C.Schedule.cosine and 0 < cfg.trainer.max_time <= 3600
    factor = lr_factor(cfg.optim, cfg.trainer.max_steps)
    last = cfg.trainer.max_steps - 1
    assert factor(cfg.optim.warmup_steps - 1) == 1.0 and factor(last) * cfg.optim.lr < 1e-9


@pytest.mark.parametrize("override", ["trainer.no_such_key=1", "model.d_model=abc", "model.norm=sideways",
                                      "decode.strategy=sampling", "optim.lr=fast"])
def test_wrong_key_or_type_fails_at_composition(override):
    with pytest.raises((ConfigCompositionException, ValidationError, ConfigKeyError)):
        _compose("train", [override])


def test_config_roundtrips_through_plain_dict():
    cfg = C.to_object(_compose("train", ["model=tiny", "decode=beam"]))
    again = C.from_dict(C.TrainConfig, C.to_dict(cfg))
    assert again == cfg
    assert all(not hasattr(v, "value") for v in C.to_dict(cfg)["model"].values())  # enums stored as str


# ---------------------------------------------------------------------------- decode options


@pytest.mark.parametrize("field,value,message", [
    ("beam_size", 0, "decode.beam_size=0 must be"),
    ("nbest", 0, "decode.nbest=0 must be"),
    ("max_tokens", 0, "decode.max_tokens=0 must be"),
    ("min_len", -1, "decode.min_len=-1 must be"),
    ("max_len_a", -0.5, "decode.max_len_a=-0.5 must be"),
    ("max_len_a", float("inf"), "decode.max_len_a=inf must be a finite"),
    ("max_len_b", -2, "decode.max_len_b=-2 must be"),
    ("length_penalty", float("nan"), "decode.length_penalty=nan must be a finite"),
])
def test_check_decode_names_the_bad_option(field, value, message):
    import dataclasses
    import re

    from rosettamt.errors import UserError

    C.check_decode(C.DecodeConfig())  # the defaults are fine
    with pytest.raises(UserError, match=re.escape(message)):
        C.check_decode(dataclasses.replace(C.DecodeConfig(), **{field: value}))


def test_resolve_decode_normalises_beam_nbest_and_strategy():
    greedy, beam4 = C.DecodeConfig(), C.DecodeConfig(strategy=C.Strategy.beam, beam_size=4)
    assert C.resolve_decode(greedy).beam_size == 1
    r = C.resolve_decode(greedy, nbest=3)  # n-best widens a greedy default to a beam of n
    assert (r.strategy, r.beam_size, r.nbest) == (C.Strategy.beam, 3, 3)
    assert C.resolve_decode(beam4).beam_size == 4
    r = C.resolve_decode(beam4, beam_size=1)  # beam 1 is greedy
    assert (r.strategy, r.beam_size) == (C.Strategy.greedy, 1)
    assert C.resolve_decode(greedy, strategy="beam").beam_size == 1  # the config's own width
    assert C.resolve_decode(beam4, length_penalty=0.6).length_penalty == 0.6


@pytest.mark.parametrize("kwargs,message", [
    ({"strategy": "sampling"}, "strategy=sampling: use greedy or beam"),
    ({"strategy": "greedy", "nbest": 2}, "nbest=2 needs beam search"),
    ({"nbest": 0}, "nbest=0: must be"),
    ({"beam_size": 0}, "beam_size=0: must be"),
    ({"beam_size": "5"}, "beam_size='5': must be"),
    ({"beam_size": True}, "beam_size=True: must be"),
    ({"length_penalty": float("nan")}, "length_penalty=nan must be a finite"),
    ({"min_len": -1}, "min_len=-1 must be"),
    ({"temperature": 0.5}, "unknown decoding option.*temperature"),
    ({"nbest": 10**10}, r"nbest=10000000000: must be a whole number in \[1, 1000\]"),
    ({"beam_size": 1001}, "beam_size=1001 must be at most 1000"),
])
def test_resolve_decode_errors(kwargs, message):
    from rosettamt.errors import UserError

    with pytest.raises(UserError, match=message):
        C.resolve_decode(C.DecodeConfig(), **kwargs)


@pytest.mark.parametrize("override,message", [
    ("optim.lr=-0.001", "optim.lr=-0.001 must be >= 0.0"),  # 0 is allowed: a frozen run (tests use it)
    ("optim.eps=0", "optim.eps=0.0 must be > 0.0"),
    ("optim.label_smoothing=1.0", "optim.label_smoothing=1.0 must be in [0.0, 1.0)"),
    ("optim.accum_steps=0", "optim.accum_steps=0 must be >= 1"),
    ("optim.betas=[0.9]", "optim.betas=[0.9] must be two numbers in [0, 1)"),
    ("model.dropout=1.0", "model.dropout=1.0 must be in [0.0, 1.0)"),
    ("model.attn_dropout=-0.1", "model.attn_dropout=-0.1 must be in [0.0, 1.0)"),
    ("trainer.max_tokens=0", "trainer.max_tokens=0 must be >= 1"),
    ("decode.beam_size=0", "decode.beam_size=0 must be"),
    ("decode.length_penalty=nan", "decode.length_penalty=nan must be a finite"),
    ("decode.beam_size=10000000000", "decode.beam_size=10000000000 must be at most 1000"),
    ("decode.nbest=1001", "decode.nbest=1001 must be at most 1000"),
    ("seed=-1", "seed=-1 must be in [0, 9223372036854775807]"),
    ("seed=99999999999999999999", "seed=99999999999999999999 must be in"),
    ("tokenizer.seed=4294967296", "tokenizer.seed=4294967296 must be in"),
])
def test_check_train_rejects_out_of_range_numbers(override, message):
    import re

    from rosettamt.errors import UserError

    C.check_train(C.to_object(_compose("train", [])))  # the defaults pass
    with pytest.raises(UserError, match=re.escape(message)):
        C.check_train(C.to_object(_compose("train", [override])))


def test_composition_errors_are_one_line_on_every_call_in_one_process(monkeypatch, capsys, tmp_path):
    """Hydra's several-line report of a bad override becomes one line and exit 2 (cli/_app.py), also
    after a call of the same command that composed fine; HYDRA_FULL_ERROR is put back as it was."""
    import os
    import sys

    from rosettamt.cli.translate import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    expected = ["decode.precision: Invalid value 'int4', expected one of [auto, fp32, bf16, int8]",
                "checkpoint=missing.pt: no such file",  # composed, then the command's own check
                "decode.precision: Invalid value 'int4', expected one of [auto, fp32, bf16, int8]"]
    for argv, line in zip((["decode.precision=int4"], ["checkpoint=missing.pt"], ["decode.precision=int4"]), expected):
        monkeypatch.setattr(sys, "argv", ["rosettamt-translate", *argv])
        with pytest.raises(SystemExit) as stop:
            main()
        assert stop.value.code == 2
        assert capsys.readouterr().err.strip() == f"rosettamt: error: {line}"
        assert "HYDRA_FULL_ERROR" not in os.environ


def test_a_plus_override_adds_keys_only_to_mapping_options():
    """``+trainer.max_stepz=5`` would be carried along and read by nothing: an error naming it;
    ``+data.pair_files.en-de.train=[...]`` (a mapping option) is what ``+`` is for."""
    from rosettamt.errors import UserError

    with pytest.raises(UserError, match=r"^trainer\.max_stepz: no such option in TrainerConfig"):
        C.to_object(_compose("train", ["+trainer.max_stepz=5"]))
    with pytest.raises(UserError, match=r"^foo: no such option in TrainConfig"):
        C.to_object(_compose("train", ["+foo=1"]))
    cfg = C.to_object(_compose("train", ["+data.pair_files.en-de.train=[a.en,a.de]"]))
    assert cfg.data.pair_files["en-de"]["train"] == ["a.en", "a.de"]
