"""rosettamt-translate's input and output: bytes to text lines, the output stream, n-best rows.

Input bytes that are not UTF-8 are replaced (U+FFFD) with one warning, never a crash, and a
line ends only at \\n (or \\r\\n), so there is always one output line per input line.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, List, Optional, TextIO

from rosettamt.atomic import atomic_open, unwritable_reason
from rosettamt.config import TranslateConfig
from rosettamt.errors import UserError

if TYPE_CHECKING:
    from rosettamt.translate.nbest import Candidate

log = logging.getLogger("rosettamt.prompt")


def bytes_to_lines(data: bytes, name: str = "<stdin>") -> List[str]:
    """Split bytes into lines (\\n or \\r\\n); invalid UTF-8 is replaced and warned about once.
    UTF-16 / UTF-32 text (a byte-order mark says so) is refused: its lines would not be the file's."""
    for bom, encoding in ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
                          (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16")):
        if data.startswith(bom):
            raise UserError(f"{name} is {encoding} text (it starts with a byte-order mark); re-encode it as UTF-8, "
                            f"e.g. iconv -f {encoding} -t UTF-8")
    head = data[:4096]
    if head.count(0) * 10 >= len(head) > 0:  # UTF-16 without a mark: a NUL in most ASCII characters
        raise UserError(f"{name}: {100 * head.count(0) // len(head)}% of its first {len(head)} bytes are NUL: "
                        "UTF-16 or UTF-32 text without a byte-order mark? re-encode it as UTF-8, "
                        "e.g. iconv -f UTF-16LE -t UTF-8")
    raw = data.split(b"\n")
    if raw and raw[-1] == b"":
        raw.pop()  # the final newline ends the last line, it does not start another
    lines, bad = [], []
    for number, chunk in enumerate(raw, 1):
        chunk = chunk[:-1] if chunk.endswith(b"\r") else chunk
        try:
            lines.append(chunk.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(chunk.decode("utf-8", errors="replace"))
            bad.append(number)
    if bad:
        log.warning("%s: invalid UTF-8 on %d line(s) (first: line %d), replaced by U+FFFD",
                    name, len(bad), bad[0])
    return lines


def read_input(cfg: TranslateConfig) -> List[str]:
    """All lines of ``input=FILE``, or of stdin without it."""
    if cfg.input is None:
        return bytes_to_lines(sys.stdin.buffer.read(), "<stdin>")
    path = Path(cfg.input).expanduser()
    if path.is_dir():
        raise UserError(f"input={cfg.input} is a directory; give a text file")
    if not path.exists():  # a pipe (input=<(...), /dev/stdin) is read like a file
        raise UserError(f"input={cfg.input}: no such file")
    try:
        return bytes_to_lines(path.read_bytes(), str(path))
    except OSError as err:
        raise UserError(f"input={cfg.input}: {err.strerror}") from None


def output_path(cfg: TranslateConfig) -> Optional[Path]:
    """``output=FILE``, checked before anything is read or loaded: its folder exists and may be
    written, it is not a folder, and it is not the input (the same file, through links too: writing
    it would destroy the input). None: stdout."""
    if cfg.output is None:
        return None
    path = Path(cfg.output).expanduser()
    if not path.parent.exists():
        raise UserError(f"output={cfg.output}: directory {Path(cfg.output).parent} does not exist")
    if path.is_dir():
        raise UserError(f"output={cfg.output} is a directory; give a file name")
    reason = unwritable_reason(path.parent)  # a regular file on the way, a read-only folder
    if reason:
        raise UserError(f"output={cfg.output}: {reason}")
    if path.exists() and _is_input(cfg, path):
        raise UserError(f"output={cfg.output} is the input file{f' (input={cfg.input})' if cfg.input else ''}; "
                        "writing it would destroy the input: choose another output")
    return path


def _is_input(cfg: TranslateConfig, path: Path) -> bool:
    """Same file (device and inode) as input=, or as the file stdin reads."""
    out = os.stat(path)
    if cfg.input is not None:
        source = Path(cfg.input).expanduser()
        return source.exists() and os.path.samefile(source, path)
    try:
        stdin = os.fstat(sys.stdin.fileno())
    except (OSError, ValueError, AttributeError):  # no real stdin (closed, or replaced by a test)
        return False
    return (stdin.st_dev, stdin.st_ino) == (out.st_dev, out.st_ino)


@contextlib.contextmanager
def open_output(cfg: TranslateConfig) -> Iterator[TextIO]:
    """Where translations go: stdout in UTF-8, or ``output=FILE`` (UTF-8, \\n line ends) written as
    a temp file beside it that replaces it only when every line is written; on an error or a
    signal the temp file is removed and an older FILE stays as it was."""
    path = output_path(cfg)
    if path is None:
        if hasattr(sys.stdout, "reconfigure"):
            sys.stdout.reconfigure(encoding="utf-8")  # whatever the locale says
        yield sys.stdout
        return
    with atomic_open(path, "w", named=True, encoding="utf-8", newline="\n") as f:  # output= as typed
        yield f


def format_nbest(line_number: int, candidates: List["Candidate"]) -> List[str]:
    """n-best output: one ``LINE<TAB>SCORE<TAB>TRANSLATION`` row per candidate (LINE from 1)."""
    return [f"{line_number}\t{c.score:.4f}\t{c.text}" for c in candidates]
