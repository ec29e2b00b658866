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
