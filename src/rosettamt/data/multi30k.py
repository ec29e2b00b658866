"""The Multi30k source: a directory of ``{split}.{lang}[.gz]`` files, downloaded if allowed.

Checks the language codes and split names against what Multi30k has before
touching the disk, so a typo is one line naming the option, not a missing file.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rosettamt.config import MULTI30K_LANGS, MULTI30K_SPLITS, DataConfig
from rosettamt.data.corpus_cache import Sources, cache_key
from rosettamt.data.download import download_files, downloaded_from, is_download_dir
from rosettamt.data.splits import split_option
from rosettamt.data.textfiles import file_digest, listing, parallel_pairs
from rosettamt.errors import UserError

log = logging.getLogger(__name__)


def multi30k_sources(cfg: DataConfig, wanted: list[str]) -> Sources:
    """Cache key and pair reader for each wanted split under ``data.dir``."""
    splits = _check(cfg, wanted)
    root = Path(cfg.dir).expanduser()
    langs = (cfg.src_lang, cfg.tgt_lang)
    missing = [f"{s}.{lang}.gz" for s in splits for lang in langs if _find(root, s, lang) is None]
    fetched_from = downloaded_from(root)
    if cfg.download and fetched_from not in (None, cfg.url.rstrip("/")):
        log.warning("data.dir=%s holds files fetched from %s; data.url=%s fetches only files not there "
                    "yet (remove the others to fetch them from the new URL)", cfg.dir, fetched_from, cfg.url)
    if missing and cfg.download and is_download_dir(root):
        download_files(root, cfg.url, missing)
    for split in splits:
        for lang in langs:
            if _find(root, split, lang) is None:
                if not root.is_dir():
                    raise UserError(f"data.dir={cfg.dir}: {listing(root)}; point data.dir= at a directory "
                                    f"of {{split}}.{{lang}}.gz files (or set data.download=true)")
                raise UserError(f"data.dir={cfg.dir} has no {split}.{lang}.gz (nor {split}.{lang}) for "
                                f"{split_option(cfg, split)}; {listing(root)}")
    sources: Sources = {}
    for split in splits:
        src, tgt = _find(root, split, cfg.src_lang), _find(root, split, cfg.tgt_lang)
        assert src is not None and tgt is not None
        key = cache_key("pair", file_digest(src), file_digest(tgt))
        sources[split] = (key, lambda s=src, t=tgt: parallel_pairs(s, t))
    return sources


def _check(cfg: DataConfig, wanted: list[str]) -> list[str]:
    """The wanted splits this language pair has; unknown languages or splits are errors."""
    for option, lang in (("data.src_lang", cfg.src_lang), ("data.tgt_lang", cfg.tgt_lang)):
        if lang not in MULTI30K_LANGS:
            raise UserError(f"unknown language code {option}={lang!r}; "
                            f"Multi30k has: {', '.join(MULTI30K_LANGS)}")
    if cfg.src_lang == cfg.tgt_lang:
        raise UserError(f"data.src_lang and data.tgt_lang are both {cfg.src_lang!r}; pick two languages")
    splits = []
    for split in wanted:
        if split not in MULTI30K_SPLITS:
            raise UserError(f"{split_option(cfg, split)} names split {split!r}, which Multi30k does not have; "
                            f"its splits are: {', '.join(MULTI30K_SPLITS)}")
        if split == "test_2017_flickr" and "cs" in (cfg.src_lang, cfg.tgt_lang):
            log.info("test_2017_flickr has no Czech side; skipping it for %s-%s", cfg.src_lang, cfg.tgt_lang)
            continue
        splits.append(split)
    return splits


def _find(root: Path, split: str, lang: str) -> Path | None:
    """The gzipped file if there is one, else the plain one, else None."""
    for name in (f"{split}.{lang}.gz", f"{split}.{lang}"):
        if (root / name).is_file():
            return root / name
    return None
