"""Write a file so that a reader, or a process killed at any moment, sees the old file or the new one.

A leaf module: checkpoints, checkpoint indexes, caches and every output file a command writes
go through :func:`atomic_open` / :func:`atomic_write`, so an interrupted run never leaves half a
file in place of a good one. :func:`writable_dir` and :func:`check_creatable` check a folder
before any work is done, so that an unwritable one is one line naming the option, not a traceback.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterator

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


@contextlib.contextmanager
def atomic_open(path: Path, mode: str = "wb", named: bool = False, **open_kwargs: Any) -> Iterator[IO[Any]]:
    """A file that becomes ``path`` when the block ends: written as a temp file beside it, fsynced,
    renamed over it. If the block raises (Ctrl-C and SIGTERM included) the temp file is removed
    and ``path`` is untouched; a full disk or unwritable folder is a UserError naming ``path``.

    ``named``: the user typed this very path (``output=``). Then a device or FIFO (``/dev/null``,
    ``/dev/stdout``) is written as it is instead of being replaced by a regular file, and a symbolic
    link stays a link to the new file. Otherwise (files inside a run or checkpoint folder, which may
    come from anyone) the name itself is replaced: nothing outside the folder is written through it.
    """
    path = Path(path)
    if named and path.exists() and not path.is_file() and not path.is_dir():  # a device or FIFO:
        with _open_stream(path, mode, **open_kwargs) as f:  # a stream, written in place
            yield f
        return
    if named and path.is_symlink():  # replace the file the link points to, and keep the link
        path = Path(os.path.realpath(path))
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
        with os.fdopen(fd, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if _is_write_failure(err, tmp):
            raise _write_error(path, err, existed) from None
        raise
    fsync_dir(path.parent)


@contextlib.contextmanager
def _open_stream(path: Path, mode: str, **open_kwargs: Any) -> Iterator[IO[Any]]:
    """``path`` opened as it is: nothing to replace atomically, and replacing it would destroy it."""
    try:
        f = open(path, mode, **open_kwargs)
    except OSError as err:
        raise _write_error(path, err, False) from None
    with f:
        yield f


def atomic_write(path: Path, write: Callable[[Any], Any], named: bool = False) -> None:
    """Call ``write(file)`` on a binary temp file beside ``path``, then rename it over ``path``
    (see :func:`atomic_open`, also for ``named``)."""
    with atomic_open(path, named=named) as f:
        write(f)


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write` of a UTF-8 text."""
    data = text.encode("utf-8")
    atomic_write(Path(path), lambda f: f.write(data))


def _is_write_failure(err: BaseException, tmp: str) -> bool:
    """An error of writing the file itself: an OSError about no other file, or torch.save's
    RuntimeError("... write failed ...") for a full disk."""
    if isinstance(err, OSError):
        return getattr(err, "filename", None) in (None, tmp)
    return isinstance(err, RuntimeError) and "write failed" in str(err)


def _write_error(path: Path, err: BaseException, existed: bool) -> UserError:
    kept = "; the previous file is untouched" if existed else ""
    return UserError(f"cannot write {path}: {_reason(err)}{kept}")


def _reason(err: BaseException) -> str:
    return getattr(err, "strerror", None) or str(err).strip().splitlines()[0] or type(err).__name__


def unwritable_reason(path: Path) -> str:
    """Why a directory cannot be made at ``path`` (or files in it), '' if nothing is in the way.

    Looks only: nothing is created. The nearest existing ancestor must be a directory this
    process may write into (``os.access`` also sees read-only file systems and, on Linux,
    immutable directories, even for root).
    """
    existing = path
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a directory" if existing.exists() else f"{existing} does not exist"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable" + ("" if existing == path else " (cannot create folders in it)")
    return ""


def check_creatable(path: Path, option: str) -> None:
    """UserError naming ``option`` unless a directory can be created (or written) at ``path``."""
    path = Path(path).expanduser()
    reason = unwritable_reason(path)
    if reason:
        raise UserError(f"{option}={path}: {reason}")


def writable_dir(path: Path, option: str) -> Path:
    """``path`` as an existing directory this process can write into (created if missing), checked
    before any work is done; otherwise one UserError naming ``option`` and the path."""
    path = Path(path).expanduser()
    check_creatable(path, option)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # e.g. a full disk, or a race with another process
        raise UserError(f"{option}={path}: cannot create the directory ({_reason(err)})") from None
    return path
