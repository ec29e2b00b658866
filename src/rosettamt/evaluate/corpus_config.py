"""Which corpus rosettamt-evaluate reads: the user says where, a checkpoint only says what.

A checkpoint may come from anywhere, so the data config stored in it is not obeyed: from it
come only the fields that name no place and fetch nothing (:data:`SAFE_KEYS`: the source kind,
the language pair, split and column names). Where the corpus lies (``data_dir=`` or
``data.dir=``, ``data.files.SPLIT=[...]``, ``data.hub_name=``), whether anything is downloaded
(only with ``data.download=true``, from ``data.url`` or the public Multi30k address) and where
the cache goes (``data.cache_dir=``; else a temporary folder, removed afterwards) come from the
command line, or from the caller's own DataConfig (the trainer's end-of-run evaluation).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from rosettamt.config import DataConfig, Source
from rosettamt.errors import UserError
from rosettamt.evaluate.inputs import split_texts

SAFE_KEYS = ("source", "src_lang", "tgt_lang", "train_split", "val_split", "test_splits", "hub_splits",
             "src_column", "tgt_column", "langs", "pairs")  # langs/pairs: a multilingual model's directions
WHERE = "give its location: data_dir=DIR (or data.dir=DIR)"


def _merge(base: DataConfig, items: Dict[str, Any] | List[str], what: str) -> DataConfig:
    """``base`` with fields from a mapping or ``key=value`` strings, type-checked by the schema."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        extra = OmegaConf.from_dotlist(items) if isinstance(items, list) else OmegaConf.create(items)
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(base), extra))
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "?"
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{what}.{key} is invalid ({first})") from None


def stored_data(ckpt: Dict[str, Any], path: Path) -> DataConfig:
    """The checkpoint's data config cut down to :data:`SAFE_KEYS` (everything else: the defaults,
    and no download)."""
    config = ckpt.get("config") or {}
    raw = config.get("data") if isinstance(config, dict) else None
    if not isinstance(raw, (dict, type(None))):
        raise UserError(f"checkpoint {path}: config.data is a {type(raw).__name__}, not a mapping")
    safe = {k: (v.value if hasattr(v, "value") else v) for k, v in (raw or {}).items() if k in SAFE_KEYS}
    data = _merge(DataConfig(), safe, f"checkpoint {path}: config.data")
    return dataclasses.replace(data, download=False)


def corpus_config(ckpt: Dict[str, Any], path: Path, data: Optional[DataConfig], data_dir: Optional[str | Path],
                  overrides: Sequence[str] = ()) -> Tuple[DataConfig, bool]:
    """(the DataConfig to read splits with, whether its base came from the checkpoint).

    ``data``: the caller's own config, used as given; None: the checkpoint's, cut to SAFE_KEYS.
    ``overrides``: ``key=value`` as typed after ``data.`` on the command line.
    """
    from_checkpoint = data is None
    cfg = stored_data(ckpt, path) if data is None else data
    if overrides:
        cfg = _merge(cfg, [str(o) for o in overrides], "data")
    if data_dir is not None:
        cfg = dataclasses.replace(cfg, dir=str(data_dir))
    return cfg, from_checkpoint


def read_splits(data: DataConfig, splits: List[str], checkpoint: Path, from_checkpoint: bool,
                user_keys: Sequence[str]) -> Dict[str, Tuple[List[str], List[str]]]:
    """:func:`split_texts`, with errors that say what the user must name when the base config came
    from the checkpoint, and the cache in a temporary folder unless ``data.cache_dir`` was given."""
    if not from_checkpoint or not splits:
        return split_texts(data, splits)
    if data.source == Source.files and not any(data.files.get(s) for s in splits):
        raise UserError(f"split={','.join(splits)}: {checkpoint.name} was trained on data.source=files, and "
                        f"rosettamt-evaluate reads no file a checkpoint names: give data.files.{splits[0]}=[SRC,REF] "
                        "(or src_file= and ref_file=)")
    if data.source == Source.hub and not data.hub_name:
        raise UserError(f"split={','.join(splits)}: {checkpoint.name} was trained on data.source=hub, and "
                        "rosettamt-evaluate fetches nothing a checkpoint names: give data.hub_name=NAME "
                        "(and data.cache_dir=DIR to keep it)")
    try:
        if "cache_dir" in user_keys:
            return split_texts(data, splits)
        with tempfile.TemporaryDirectory(prefix="rosettamt-evaluate-") as tmp:
            return split_texts(dataclasses.replace(data, cache_dir=tmp), splits)
    except UserError as err:
        if data.source != Source.multi30k:
            raise
        raise UserError(f"{err} (the corpus of {checkpoint.name}: Multi30k {data.src_lang}-{data.tgt_lang}; "
                        f"{WHERE}; downloads only with data.download=true)") from None


def override_keys(overrides: Sequence[str]) -> List[str]:
    """The top-level keys of ``key=value`` overrides (``files.test=[..]`` -> ``files``)."""
    return [str(o).split("=", 1)[0].strip().lstrip("+~").split(".", 1)[0] for o in overrides]
