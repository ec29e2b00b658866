"""Reading the prompt's next line without losing what was typed while a sentence was translated.

Between two prompts the terminal is in canonical (line) mode. A Ctrl-D pressed then, while a
sentence is being translated or its attention plotted, waits in the terminal as an end-of-file
mark. GNU readline switches the terminal to raw mode before it reads, and that mark is lost: the
prompt then waits for ever (checked in a pseudo-terminal: ``input()`` without readline sees the
Ctrl-D, with readline it does not). So before readline takes the terminal, whatever complete input
waits is read as the terminal holds it: an empty read is that Ctrl-D, anything else is one whole
line typed ahead (a canonical read returns one line at most), handed back as if typed at the prompt.
"""

from __future__ import annotations

import os
import select
import sys
from typing import Any, Optional


def read_line(prompt: str, readline: Optional[Any] = None) -> str:
    """``input(prompt)``, except that input typed ahead on a terminal is read first (see above);
    EOFError for Ctrl-D, as input() raises it. ``readline``: the module, to record a typed-ahead line
    in the history as readline would have."""
    pending = _waiting(sys.stdin)
    if pending is None:
        return input(prompt)
    if pending == b"":
        raise EOFError
    line = pending.decode(sys.stdin.encoding or "utf-8", errors="replace").rstrip("\r\n")
    if readline is not None and line.strip():
        readline.add_history(line)
    return line


def _waiting(stream: Any) -> Optional[bytes]:
    """One read of what waits on a terminal ``stream`` (b"" = end of file), or None when nothing
    complete waits or it is not a terminal (a pipe is read by input() as it always was)."""
    try:
        fd = stream.fileno()
        if not os.isatty(fd) or not select.select([fd], [], [], 0)[0]:
            return None
        return os.read(fd, 65536)
    except (OSError, ValueError, AttributeError):  # closed, detached or no descriptor: let input() say
        return None
