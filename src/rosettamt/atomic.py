"""Write a file so that a reader, or a process killed at any moment, sees the old file or the new one.

A leaf module: checkpoints, checkpoint indexes, caches and every output file a command writes
go through :func:`atomic_write`, so an interrupted run never leaves half a file in place of a good one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from rosettamt.errors import UserError


def fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[Any], Any]) -> None:
    """Call ``write(file)`` on a temp file beside ``path``, fsync, rename over ``path``, fsync the dir.

    A reader (or a process killed at any moment) sees the old file or the new one, never
    half of one.
    """
    path = Path(path)
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise _write_error(path, err, existed) from None
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes the file private (0600); give it the usual mode
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        # a full disk reaches us as OSError, or from torch.save as RuntimeError("... write failed ...")
        if isinstance(err, OSError) or (isinstance(err, RuntimeError) and "write failed" in str(err)):
            raise _write_error(path, err, existed) from None
        raise
    fsync_dir(path.parent)


def _write_error(path: Path, err: BaseException, existed: bool) -> UserError:
    reason = getattr(err, "strerror", None) or str(err).strip().splitlines()[0] or type(err).__name__
    kept = "; the previous file is untouched" if existed else ""
    return UserError(f"cannot write {path}: {reason}{kept}")


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write` of a UTF-8 text."""
    data = text.encode("utf-8")
    atomic_write(Path(path), lambda f: f.write(data))
