"""Reading the user's text files: plain or gzipped, checked for UTF-8, as aligned or TSV pairs.

Every problem is a one-line :class:`UserError` naming the file (and the line
where there is one), because these are the files people edit by hand.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import zlib
from itertools import zip_longest
from pathlib import Path
from typing import Iterator

from rosettamt.errors import UserError

log = logging.getLogger(__name__)


def lines(path: Path) -> Iterator[str]:
    """Decoded lines of a plain or gzipped file, without the line break; UTF-8 errors name the line.

    A damaged gzip stream (in the middle or cut short) is a UserError naming the file and the
    last line read. NUL bytes, which would cut a sentence short inside SentencePiece, are removed
    like the tokenizer's normalisation removes other control characters, with one warning per file.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    lineno, nul_lines, first_nul = 0, 0, 0
    try:
        with opener(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]  # UTF-8 byte order mark
                if b"\x00" in raw:
                    nul_lines += 1
                    first_nul = first_nul or lineno
                    raw = raw.replace(b"\x00", b"")
                try:
                    yield raw.rstrip(b"\r\n").decode("utf-8")
                except UnicodeDecodeError as err:
                    raise UserError(f"{path}:{lineno}: invalid UTF-8 (byte 0x{raw[err.start]:02x} at "
                                    f"column {err.start + 1}); re-encode the file as UTF-8") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise UserError(f"{path}: not a readable gzip file, damaged after line {lineno} ({err})") from None
    except OSError as err:
        raise UserError(f"{path}: cannot be read after line {lineno} ({err.strerror or err})") from None
    finally:
        if nul_lines:
            log.warning("%s:%d: NUL bytes on %d line(s) (first: line %d), removed", path, first_nul, nul_lines,
                        first_nul)


def _count_lines(path: Path) -> int:
    """Line count for error messages; a damaged file is reported as such, not as a count."""
    return sum(1 for _ in lines(path))


def parallel_pairs(src: Path, tgt: Path) -> Iterator[tuple[str, str]]:
    """Pairs from two line-aligned files; different lengths -> error naming both files and counts."""
    end = object()
    for n, (s, t) in enumerate(zip_longest(lines(src), lines(tgt), fillvalue=end)):
        if s is end or t is end:
            n_src = n if s is end else _count_lines(src)
            n_tgt = n if t is end else _count_lines(tgt)
            raise UserError(f"parallel files differ in length: {src} has {n_src} lines but {tgt} has "
                            f"{n_tgt}; they must be aligned line by line")
        yield s, t  # type: ignore[misc]


def tsv_pairs(path: Path) -> Iterator[tuple[str, str]]:
    """Pairs from a two-column ``source<TAB>target`` file."""
    for lineno, line in enumerate(lines(path), 1):
        cols = line.split("\t")
        if len(cols) != 2:
            if not line.strip():
                yield "", ""  # a blank line: an empty pair, dropped and counted like the others
                continue
            raise UserError(f"{path}:{lineno}: expected 2 tab-separated columns (source, target), "
                            f"found {len(cols)}")
        yield cols[0], cols[1]


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes: part of the corpus cache key, so an edited file is re-read."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def listing(path: Path, limit: int = 12) -> str:
    """A short 'what is there' for error messages about a missing file or directory."""
    if path.is_dir():
        names = sorted(p.name for p in path.iterdir() if not p.name.startswith("."))
        more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
        return f"{path} holds: {', '.join(names[:limit]) or 'nothing'}{more}"
    if path.exists():
        return f"{path} is not a directory"
    parent = path.parent
    while not parent.is_dir() and parent != parent.parent:
        parent = parent.parent
    return f"{path} does not exist; {listing(parent, limit)}"
