"""The ``hub`` source: a Hugging Face dataset, or a local stand-in (save_to_disk dir or data files).

Records are either ``translation`` dicts keyed by language (or variable-language records: a
``language`` list beside a ``translation`` list) or two named columns; any loading failure is reduced to one line naming ``data.hub_name``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Iterator

from datasets import Dataset, DatasetDict

from rosettamt.config import DataConfig
from rosettamt.data.corpus_cache import CHUNK, Sources, cache_key
from rosettamt.data.splits import split_option
from rosettamt.errors import UserError

log = logging.getLogger(__name__)


def hub_sources(cfg: DataConfig, wanted: list[str]) -> Sources:
    """Cache key and pair reader for each wanted split, mapped through ``data.hub_splits``."""
    stamp = _folder_stamp(Path(cfg.hub_name).expanduser()) if cfg.hub_name else ""
    d = _open_hub(cfg, stamp)
    sources: Sources = {}
    for split in wanted:
        theirs = cfg.hub_splits.get(split, split)
        if theirs not in d:
            raise UserError(f"data.hub_name={cfg.hub_name!r} has no split {theirs!r} (for "
                            f"{split_option(cfg, split)}={split}); its splits are: {', '.join(d)}; "
                            f"map with data.hub_splits.{split}=NAME")
        ds = d[theirs]
        columns = _hub_columns(cfg, ds)
        key = cache_key("hub", ds._fingerprint, json.dumps(columns), *([stamp] if stamp else []))
        sources[split] = (key, lambda ds=ds, c=columns: _hub_pairs(ds, c, cfg.hub_name))
    return sources


def _folder_stamp(folder: Path) -> str:
    """For a local folder of data files, what changes whenever a file in it does: path, size,
    modification and change time of each (datasets keys its cache by path and mtime alone, so a
    file rewritten with its old mtime put back was served stale; no tool can set the change time
    back). "" for anything else (a hub name, a save_to_disk folder: its own fingerprints hold)."""
    if not folder.is_dir() or (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file():
        return ""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        st = path.stat()
        h.update(f"{path.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\n".encode())
    return h.hexdigest()[:16]


def _open_hub(cfg: DataConfig, stamp: str = "") -> DatasetDict:
    """The hub dataset, or a local stand-in: a save_to_disk directory or a folder of data files
    (read into a datasets cache of its own per :func:`_folder_stamp`)."""
    from datasets import load_dataset, load_from_disk

    name = cfg.hub_name
    if not name:
        raise UserError("data.hub_name is not set (a hub dataset name or a local dataset directory)")
    local = Path(name).expanduser()
    if local.is_dir() and (cfg.hub_config or cfg.hub_revision):
        log.warning("data.hub_name=%s is a local folder: data.hub_config=%s and data.hub_revision=%s are not used",
                    name, cfg.hub_config, cfg.hub_revision)
    try:
        if local.is_dir() and ((local / "dataset_dict.json").is_file() or (local / "state.json").is_file()):
            d = load_from_disk(str(local))
        elif local.is_dir():
            d = load_dataset(str(local), cache_dir=str(Path(cfg.cache_dir) / "hf" / f"local-{stamp}"))
        else:
            d = load_dataset(name, cfg.hub_config, revision=cfg.hub_revision,
                             cache_dir=str(Path(cfg.cache_dir) / "hf"))
    except UserError:
        raise
    except Exception as err:  # the hub client raises many kinds; the user needs one line
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"cannot load data.hub_name={name!r} (config {cfg.hub_config!r}): {msg}") from err
    return d if isinstance(d, DatasetDict) else DatasetDict({"train": d})


def _hub_columns(cfg: DataConfig, ds: Dataset) -> list[str]:
    """[src_col, tgt_col] for two-column records, or ['translation', src_lang, tgt_lang]."""
    cols = ds.column_names
    if cfg.src_column or cfg.tgt_column:
        for option, col in (("data.src_column", cfg.src_column), ("data.tgt_column", cfg.tgt_column)):
            if not col or col not in cols:
                raise UserError(f"{option}={col!r} is not a column of data.hub_name={cfg.hub_name!r}; "
                                f"its columns are: {', '.join(cols)}")
        for option, col in (("data.src_column", cfg.src_column), ("data.tgt_column", cfg.tgt_column)):
            dtype = getattr(ds.features[col], "dtype", None)
            if dtype not in ("string", "large_string"):
                raise UserError(f"{option}={col!r} of data.hub_name={cfg.hub_name!r} holds "
                                f"{dtype or type(ds.features[col]).__name__} values; a text column is needed")
        return [cfg.src_column, cfg.tgt_column]  # type: ignore[list-item]
    if "translation" not in cols:
        raise UserError(f"data.hub_name={cfg.hub_name!r} has no 'translation' column; its columns are: "
                        f"{', '.join(cols)}; set data.src_column= and data.tgt_column=")
    feature = ds.features["translation"]
    langs = list(getattr(feature, "languages", None) or (feature.keys() if isinstance(feature, dict) else []))
    for option, lang in (("data.src_lang", cfg.src_lang), ("data.tgt_lang", cfg.tgt_lang)):
        if lang not in langs:
            raise UserError(f"unknown language code {option}={lang!r}; the translations of "
                            f"data.hub_name={cfg.hub_name!r} have: {', '.join(map(str, langs))}")
    return ["translation", cfg.src_lang, cfg.tgt_lang]


def _hub_pairs(ds: Dataset, columns: list[str], name: object = None) -> Iterator[tuple[str, str]]:
    if columns[0] == "translation":
        _, src, tgt = columns
        for batch in ds.select_columns(["translation"]).iter(batch_size=CHUNK):
            for rec in batch["translation"]:
                if isinstance(rec, dict) and isinstance(rec.get("language"), list):  # variable languages:
                    rec = dict(reversed(list(zip(rec["language"], rec.get("translation") or []))))  # first per lang
                if not isinstance(rec, dict):  # a missing record: an empty pair, dropped and counted
                    yield "", ""
                    continue
                pair = rec.get(src), rec.get(tgt)
                for lang, text in zip((src, tgt), pair):
                    if text is not None and not isinstance(text, str):
                        raise UserError(f"a translation record of data.hub_name={name!r}"
                                        f" has {type(text).__name__} data under {lang!r}, not text")
                yield pair[0] or "", pair[1] or ""
    else:
        for batch in ds.select_columns(columns).iter(batch_size=CHUNK):
            for s, t in zip(batch[columns[0]], batch[columns[1]]):
                yield s or "", t or ""
