"""rosettamt-translate's input and output: bytes to text lines, the output stream, n-best rows.

Input bytes that are not UTF-8 are replaced (U+FFFD) with one warning, never a crash, and a
line ends only at \\n (or \\r\\n), so there is always one output line per input line.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, TextIO

from rosettamt.config import TranslateConfig
from rosettamt.errors import UserError

if TYPE_CHECKING:
    from rosettamt.translate.nbest import Candidate

log = logging.getLogger("rosettamt.prompt")


def bytes_to_lines(data: bytes, name: str = "<stdin>") -> List[str]:
    """Split bytes into lines (\\n or \\r\\n); invalid UTF-8 is replaced and warned about once."""
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
    if not path.is_file():
        raise UserError(f"input={cfg.input}: no such file")
    try:
        return bytes_to_lines(path.read_bytes(), str(path))
    except OSError as err:
        raise UserError(f"input={cfg.input}: {err.strerror}") from None


def output_path(cfg: TranslateConfig) -> Optional[Path]:
    """``output=FILE`` once its folder is known to exist (checked before the model loads); None: stdout."""
    if cfg.output is None:
        return None
    path = Path(cfg.output).expanduser()
    if not path.parent.is_dir():
        raise UserError(f"output={cfg.output}: directory {Path(cfg.output).parent} does not exist")
    return path


def open_output(cfg: TranslateConfig) -> TextIO:
    """The stream translations go to: ``output=FILE`` (UTF-8, \\n line ends) or stdout in UTF-8."""
    path = output_path(cfg)
    if path is None:
        if hasattr(sys.stdout, "reconfigure"):
            sys.stdout.reconfigure(encoding="utf-8")  # whatever the locale says
        return sys.stdout
    try:
        return open(path, "w", encoding="utf-8", newline="\n")
    except OSError as err:
        raise UserError(f"output={cfg.output}: {err.strerror}") from None


def format_nbest(line_number: int, candidates: List["Candidate"]) -> List[str]:
    """n-best output: one ``LINE<TAB>SCORE<TAB>TRANSLATION`` row per candidate (LINE from 1)."""
    return [f"{line_number}\t{c.score:.4f}\t{c.text}" for c in candidates]
