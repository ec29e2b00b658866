"""What rosettamt-evaluate scores: the lines of a source/reference file pair, or splits of a corpus."""

from __future__ import annotations

import dataclasses
import logging
import re
import stat
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from rosettamt.config import MULTI30K_SPLITS, DataConfig, Source
from rosettamt.data.textfiles import lines
from rosettamt.errors import UserError

log = logging.getLogger("rosettamt.evaluate")  # the name log lines carried before the split


# src_file=<(zcat ...) under -m: every job of the sweep runs in this process and opens the same
# pipe, which only the first can read; the lines it read are kept here, by the pipe's identity.
_PIPE_LINES: Dict[Tuple[int, int], List[str]] = {}


def read_lines(path: Path, option: str) -> List[str]:
    """Lines of a plain or .gz text file, read as the corpus reader reads them (data/textfiles.py:
    byte order mark and NUL bytes removed) and as the sacrebleu CLI keeps them (trailing space dropped)."""
    if not path.is_file() and not _is_pipe(path):  # a pipe (src_file=<(zcat ...)) is read once, like a file
        why = ("is a directory; give a text file" if path.is_dir() else
               "is not a regular file or a pipe; write it to a file first" if path.exists() else ": no such file")
        raise UserError(f"{option}={path}{'' if why.startswith(':') else ' '}{why}")
    key = _shell_pipe(path)
    if key in _PIPE_LINES:
        return list(_PIPE_LINES[key])
    try:
        read = [line.rstrip() for line in lines(path)]
    except UserError as err:  # names the file (and line): say which option gave it
        raise UserError(f"{option}={err}") from None
    if key is not None:
        _PIPE_LINES[key] = read
    return list(read)


def _is_pipe(path: Path) -> bool:
    try:
        return stat.S_ISFIFO(path.stat().st_mode)
    except OSError:
        return False


def _shell_pipe(path: Path) -> Optional[Tuple[int, int]]:
    """(device, inode) of a shell's process-substitution pipe (/dev/fd/N, /proc/self/fd/N): the
    same pipe for the whole process. A named FIFO is read anew each time (a new writer may come)."""
    if not str(path).startswith(("/dev/fd/", "/proc/")):
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISFIFO(st.st_mode) else None


def read_pair(src_path: Path, ref_path: Path) -> Tuple[List[str], List[str]]:
    """(sources, references) of a src_file/ref_file pair: line-aligned, each with a line to score."""
    src, refs = read_lines(src_path, "src_file"), read_lines(ref_path, "ref_file")
    for option, path, texts in (("src_file", src_path, src), ("ref_file", ref_path, refs)):
        if not any(texts):  # empty, or only blank lines: no score would mean anything
            why = f"all {len(texts)} lines are blank" if texts else "the file is empty"
            raise UserError(f"{option}={path}: no lines to score ({why})")
    if len(src) != len(refs):
        raise UserError(f"src_file={src_path} has {len(src)} lines but ref_file={ref_path} has {len(refs)}")
    return src, refs


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
    try:
        corpus = load_corpus(only)
    except UserError as err:  # the splits came from split=, not from the training options
        raise UserError(re.sub(r"\bdata\.(train_split|test_splits)\b=?", "split=", str(err))) from None
    out = {}
    for split in splits:
        if split not in corpus:
            log.warning("split %s is not available for %s-%s; skipped", split, data.src_lang, data.tgt_lang)
            continue
        out[split] = (list(corpus[split]["src"]), list(corpus[split]["tgt"]))
    return out
