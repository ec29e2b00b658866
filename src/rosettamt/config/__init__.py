"""Typed configuration: one dataclass per Hydra config group.

The YAML files under ``configs/`` only set values; the schema (which keys exist
and their types) lives here and is registered with Hydra's ConfigStore, so a
misspelt key or a wrong type is rejected by Hydra when the config is composed.
Entry points call :func:`to_object` once; everything below them takes these
dataclasses, never a DictConfig.

The package: choices.py (the fixed-value options), groups.py (the groups and the training
schemas), commands.py (the other commands' schemas), checks.py (value ranges, resolve_decode);
this file registers the schemas and converts between DictConfig, dataclass and plain dict.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict

from omegaconf import DictConfig, OmegaConf

from rosettamt.config.checks import (MAX_BEAM, MAX_REQUEST_TIMEOUT, MAX_RUN_SEED, MAX_SEED, MAX_WAIT_MS,
                                     _check_ranges, check_decode, check_directions, check_selection, check_serve,
                                     check_tokenizer, check_train, resolve_decode)
from rosettamt.config.choices import (MULTI30K_LANGS, MULTI30K_SPLITS, Activation, Backend, Choice,
                                      DecodePrecision, ExportFormat, LengthNorm, Norm, OptimName, Positions,
                                      Precision, Progress, Sampling, Schedule, Select, Source, SpmType, Strategy)
from rosettamt.config.commands import (SCHEMAS, AverageConfig, EvaluateConfig, ExportConfig, ServeAppConfig,
                                       ServeConfig, TranslateConfig)
from rosettamt.config.groups import (MAX_POSITIONS, CT2Config, DataConfig, DecodeConfig, MetricConfig,
                                     ModelConfig, OptimConfig, PrepareConfig, TokenizerConfig, TrainConfig,
                                     TrainerConfig)
from rosettamt.errors import UserError

__all__ = [
    "MAX_BEAM", "MAX_POSITIONS", "MAX_REQUEST_TIMEOUT", "MAX_RUN_SEED", "MAX_SEED", "MAX_WAIT_MS",
    "MULTI30K_LANGS", "MULTI30K_SPLITS", "SCHEMAS", "Activation", "AverageConfig", "Backend", "CT2Config",
    "Choice", "DataConfig", "DecodeConfig", "DecodePrecision", "EvaluateConfig", "ExportConfig", "ExportFormat",
    "LengthNorm", "MetricConfig", "ModelConfig", "Norm", "OptimConfig", "OptimName", "Positions", "Precision",
    "PrepareConfig", "Progress", "Sampling", "Schedule", "Select", "ServeAppConfig", "ServeConfig", "Source",
    "SpmType", "Strategy", "TokenizerConfig", "TrainConfig", "TrainerConfig", "TranslateConfig",
    "_check_ranges", "check_decode", "check_directions", "check_selection", "check_serve", "check_tokenizer",
    "check_train", "from_dict", "register_schemas", "resolve_decode", "to_dict", "to_object",
]


def register_schemas() -> None:
    """Register every top-level schema so that the YAML files can extend them."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    for name, schema in SCHEMAS.items():
        cs.store(name=name, node=schema)


def to_object(cfg: Any) -> Any:
    """DictConfig -> the schema dataclass instance (checked again by OmegaConf). A key that a
    ``+key=value`` override added to a schema node (not to a dict option such as
    ``data.pair_files``) is a UserError: OmegaConf would carry it along and nothing would read it."""
    _check_no_extra_keys(cfg, "")
    return OmegaConf.to_object(cfg)


def _check_no_extra_keys(node: Any, prefix: str) -> None:
    if not isinstance(node, DictConfig):
        return
    schema = OmegaConf.get_type(node)
    known = {f.name for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else None
    for key in node.keys():
        name = f"{prefix}{key}"
        if known is not None and key not in known:
            raise UserError(f"{name}: no such option in {schema.__name__} (a +key=value override adds keys "
                            "only to mapping options such as data.pair_files)")
        if OmegaConf.is_missing(node, str(key)) or OmegaConf.is_interpolation(node, str(key)):
            continue
        _check_no_extra_keys(node[key], f"{name}.")


def to_dict(obj: Any) -> Dict[str, Any]:
    """Dataclass config -> plain dict (for checkpoints and JSON)."""
    return OmegaConf.to_container(  # type: ignore[return-value]
        OmegaConf.structured(obj), resolve=True, enum_to_str=True
    )


def from_dict(schema: type, d: Dict[str, Any]) -> Any:
    """Plain dict (from a checkpoint) -> dataclass, with the schema's type checks."""
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), d))
