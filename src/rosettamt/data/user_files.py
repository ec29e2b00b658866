"""The ``files`` source: the user's own parallel files, two aligned files or one TSV per split."""

from __future__ import annotations

from pathlib import Path

from rosettamt.config import DataConfig
from rosettamt.data.corpus_cache import Sources, cache_key
from rosettamt.data.splits import split_option
from rosettamt.data.textfiles import file_digest, listing, parallel_pairs, tsv_pairs
from rosettamt.errors import UserError


def files_sources(cfg: DataConfig, wanted: list[str]) -> Sources:
    """Cache key and pair reader for each wanted split listed under ``data.files``."""
    have = [s for s, paths in cfg.files.items() if paths]
    sources: Sources = {}
    for split in wanted:
        paths = [Path(p).expanduser() for p in cfg.files.get(split) or []]
        if not paths:
            raise UserError(f"{split_option(cfg, split)} names split {split!r} but data.files.{split} lists no "
                            f"files; splits with files: {', '.join(have) or 'none'}")
        if len(paths) > 2:
            raise UserError(f"data.files.{split} must be [src_file, tgt_file] or [tsv_file], "
                            f"got {len(paths)} paths")
        for p in paths:
            if not p.is_file():
                raise UserError(f"data.files.{split}: {listing(p)}")
        if len(paths) == 2:
            key = cache_key("pair", file_digest(paths[0]), file_digest(paths[1]))
            sources[split] = (key, lambda s=paths[0], t=paths[1]: parallel_pairs(s, t))
        else:
            key = cache_key("tsv", file_digest(paths[0]))
            sources[split] = (key, lambda p=paths[0]: tsv_pairs(p))
    return sources
