"""The on-disk corpus cache: each split's cleaned pairs as one memory-mapped Arrow file.

A split is written once under ``{cache_dir}/corpus/<key>.arrow``, where the key
hashes the raw input (file digests, or a hub dataset's fingerprint) together
with :data:`FORMAT`; later runs map that file instead of re-reading the text.
Cleaning (strip, drop empty pairs) happens here, so every source gets the same rules.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from datasets import Dataset, Features, Value
from datasets.arrow_writer import ArrowWriter

from rosettamt.atomic import atomic_write_text, writable_dir
from rosettamt.errors import UserError

log = logging.getLogger(__name__)

FORMAT = "rosettamt-corpus-1"  # bump when the cleaning rules change: invalidates the cache
FEATURES = Features({"src": Value("string"), "tgt": Value("string")})
CHUNK = 10_000  # pairs per Arrow record batch

Pairs = Callable[[], Iterator[tuple[str, str]]]  # re-iterable raw pairs of one split
Sources = dict[str, tuple[str, Pairs]]  # what a source yields: split -> (cache key, raw pairs)


@dataclass
class SplitStats:
    """What loading one split did: pairs kept and empty pairs dropped."""

    pairs: int
    dropped_empty: int


def cache_key(*parts: str) -> str:
    """The cache file name for a split whose raw input is identified by ``parts``."""
    return hashlib.sha256("\0".join((FORMAT,) + parts).encode("utf-8")).hexdigest()[:32]


def materialize(split: str, key: str, pairs: Pairs, root: Path) -> tuple[Dataset, SplitStats]:
    """Clean one split's pairs into ``root/<key>.arrow`` once; afterwards memory-map it."""
    arrow, meta = root / f"{key}.arrow", root / f"{key}.json"
    if arrow.is_file() and meta.is_file():  # meta is written last: its presence means complete
        try:
            stats = SplitStats(**json.loads(meta.read_text(encoding="utf-8")))
            return Dataset.from_file(str(arrow), split=split), stats
        except Exception as err:  # damaged on disk (cut, overwritten): derived data, so rebuild it
            damaged_cache(arrow, err, meta)
    writable_dir(root, "data.cache_dir")
    tmp = root / f".{key}.{os.getpid()}.tmp"
    kept = dropped = 0
    try:
        with ArrowWriter(features=FEATURES, path=str(tmp)) as writer:
            for chunk in _chunks(pairs(), CHUNK):
                src, tgt = [], []
                for s, t in chunk:
                    s, t = s.strip(), t.strip()
                    if not s or not t:
                        dropped += 1
                        continue
                    src.append(s)
                    tgt.append(t)
                if src:
                    writer.write_batch({"src": src, "tgt": tgt})
                    kept += len(src)
            writer.finalize()
        os.replace(tmp, arrow)
    except OSError as err:  # a full disk: one line naming the file (the cache holds no half file)
        if err.filename not in (None, str(tmp)):  # about another file (an input): not ours to rename
            raise
        raise UserError(f"cannot write the corpus cache {arrow}: {err.strerror or err}") from None
    finally:
        tmp.unlink(missing_ok=True)
    stats = SplitStats(pairs=kept, dropped_empty=dropped)
    atomic_write_text(meta, json.dumps(asdict(stats)))
    return Dataset.from_file(str(arrow), split=split), stats


def damaged_cache(path: Path, err: BaseException, *also: Path) -> None:
    """A cache file that cannot be read: say so, remove it (and ``also``), and let the caller rebuild."""
    first = (str(err).strip().splitlines() or [""])[0][:200]
    log.warning("cache %s is damaged (%s: %s); rebuilding it", path, type(err).__name__, first)
    for p in (path, *also):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:  # a file, or a link (to a folder too: the link goes, not what it points to)
            p.unlink(missing_ok=True)


def _chunks(it: Iterable[tuple[str, str]], n: int) -> Iterator[list[tuple[str, str]]]:
    buf: list[tuple[str, str]] = []
    for item in it:
        buf.append(item)
        if len(buf) == n:
            yield buf
            buf = []
    if buf:
        yield buf
