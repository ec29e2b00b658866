"""Names a checkpoint (or an export's rosettamt.json) carries that end up in file names: its
languages and its splits.

Commands build output paths from them (``<ckpt>.<split>.beam5.hyp.<tgt_lang>``, an Argos
package's ``translate-<src>_<tgt>``), and a checkpoint may come from anyone: a language code such
as ``de/../../x`` would write outside the folder the user named. So every such name a loaded
checkpoint holds must be a plain name before any command uses it. Nothing here imports torch.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, Iterator, Tuple, Union

from rosettamt.errors import UserError

_PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
_DATA_NAMES = ("src_lang", "tgt_lang", "train_split", "val_split", "test_splits", "hub_splits")


def is_plain_name(value: Any) -> bool:
    """A short name that is safe in a file name: letters, digits, ``_ . + -``, no ``..``."""
    return isinstance(value, str) and bool(_PLAIN.match(value)) and ".." not in value


def _stored_names(ckpt: Dict[str, Any]) -> Iterator[Tuple[str, Any]]:
    for key in ("src_lang", "tgt_lang"):  # an export's rosettamt.json has them at the top
        if ckpt.get(key) is not None:
            yield key, ckpt[key]
    tokenizer = ckpt.get("tokenizer")
    if isinstance(tokenizer, dict):
        for key in ("src_lang", "tgt_lang"):
            if key in tokenizer:
                yield f"tokenizer.{key}", tokenizer[key]
    config = ckpt.get("config")
    data = config.get("data") if isinstance(config, dict) else None
    if isinstance(data, dict):
        yield from _data_names(data, "config.data.")


def _data_names(data: Dict[str, Any], prefix: str) -> Iterator[Tuple[str, Any]]:
    for key in _DATA_NAMES:
        value = data.get(key)
        if isinstance(value, dict):  # hub_splits: our split name -> the dataset's; ours name files
            value = list(value)
        for i, item in enumerate(value) if isinstance(value, (list, tuple)) else [(None, value)]:
            if item is not None:
                yield f"{prefix}{key}" + (f"[{i}]" if i is not None else ""), item


def check_data_names(data: Any) -> None:
    """Training's side of the same rule (a DataConfig): a name its checkpoints could not be used
    with is refused before the run, not after it."""
    for field, value in _data_names({key: getattr(data, key, None) for key in _DATA_NAMES}, "data."):
        if not is_plain_name(value):
            raise UserError(f"{field}={value!r} is not a plain name (letters, digits, _ . + -, at most 64): "
                            "languages and split names go into file names")


def check_stored_names(ckpt: Dict[str, Any], path: Union[Path, str]) -> None:
    """One UserError naming the field unless every language and split name in ``ckpt`` is plain."""
    for field, value in _stored_names(ckpt):
        if not is_plain_name(value):
            raise UserError(f"checkpoint {path}: {field} is {str(value)[:80]!r}, not a plain name "
                            "(letters, digits, _ . + -); the file was not written by rosettamt as it is")
