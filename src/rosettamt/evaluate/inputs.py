"""What rosettamt-evaluate scores: the lines of a source/reference file pair, or splits of a corpus."""

from __future__ import annotations

import dataclasses
import gzip
import logging
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from rosettamt.config import MULTI30K_SPLITS, DataConfig, Source
from rosettamt.errors import UserError

log = logging.getLogger("rosettamt.evaluate")  # the name log lines carried before the split


def read_lines(path: Path, option: str) -> List[str]:
    """Lines of a plain or .gz text file, read as the sacrebleu CLI reads them (trailing space dropped)."""
    if not path.is_file():
        raise UserError(f"{option}={path}: no such file")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="\n") as f:
            return [line.rstrip() for line in f]
    except UnicodeDecodeError as err:
        raise UserError(f"{option}={path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except (OSError, EOFError) as err:
        raise UserError(f"{option}={path}: unreadable ({err})") from None


def split_texts(data: DataConfig, splits: Sequence[str]) -> Dict[str, Tuple[List[str], List[str]]]:
    """{split: (sources, references)} for the requested splits only (not the train split)."""
    from rosettamt.data.corpus import load_corpus

    if not splits:
        raise UserError("split= is empty; name one or more splits, or give src_file= and ref_file=")
    known = {Source.multi30k: list(MULTI30K_SPLITS), Source.files: list(data.files)}.get(data.source)
    unknown = [s for s in splits if known is not None and s not in known]
    if unknown:
        raise UserError(f"split={','.join(unknown)}: the corpus (data.source={data.source}) has splits "
                        f"{', '.join(known or []) or 'none'}")
    only = dataclasses.replace(data, train_split=splits[0], val_split="", test_splits=list(splits[1:]))
    corpus = load_corpus(only)
    out = {}
    for split in splits:
        if split not in corpus:
            log.warning("split %s is not available for %s-%s; skipped", split, data.src_lang, data.tgt_lang)
            continue
        out[split] = (list(corpus[split]["src"]), list(corpus[split]["tgt"]))
    return out
