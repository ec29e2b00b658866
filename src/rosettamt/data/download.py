"""Fetch the Multi30k task-1 files from the public repository into a local directory.

Only used when ``data.dir`` is missing or empty (or was filled by an earlier
download): a local copy is never written into. Each file is written to a temp
name and renamed, so an interrupted download never leaves a truncated file that
a later run would read as the corpus.
"""

from __future__ import annotations

import gzip
import http.client
import logging
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path
from typing import Optional

from rosettamt.errors import UserError

log = logging.getLogger(__name__)

# Written into a directory this module filled; such a directory may be topped up later.
MARKER = ".rosettamt-download"


def is_download_dir(path: Path) -> bool:
    """True when ``path`` is missing, empty, or was created by :func:`download_files`."""
    if not path.exists():
        return True
    if not path.is_dir():
        return False
    return (path / MARKER).is_file() or not any(path.iterdir())


def downloaded_from(path: Path) -> Optional[str]:
    """The URL an earlier :func:`download_files` fetched ``path``'s files from; None if it did not."""
    try:
        text = (path / MARKER).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return text.strip().removeprefix("files fetched from ").rstrip("/") or None


def download_files(dest: Path, base_url: str, names: list[str], timeout: float = 10.0,
                   deadline: float = 600.0) -> None:
    """Download ``{base_url}/{name}`` into ``dest/name`` for every name (e.g. ``train.de.gz``).

    A file is kept only when it is whole: as many bytes as the server announced, arrived within
    ``deadline`` seconds (``timeout``: the longest silence), and a complete gzip stream for a ``.gz``
    name (an error page sent with status 200 is not). Otherwise nothing is left under its name.
    """
    scheme = urllib.parse.urlparse(base_url).scheme
    if scheme not in ("http", "https", "file"):
        raise UserError(f"data.url={base_url!r} is not an http://, https:// or file:// URL")
    dest.mkdir(parents=True, exist_ok=True)
    (dest / MARKER).write_text(f"files fetched from {base_url}\n", encoding="utf-8")
    for name in names:
        url = f"{base_url.rstrip('/')}/{name}"
        log.info("downloading %s", url)
        tmp = dest / f".{name}.{os.getpid()}.part"
        try:
            _fetch(url, tmp, timeout, deadline)
            if name.endswith(".gz"):
                _check_gzip(tmp, url)
        except BaseException:  # noqa: BLE001 - whatever stops it (also Ctrl-C): no partial file stays
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, dest / name)


def _fetch(url: str, tmp: Path, timeout: float, deadline: float) -> None:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out:
            announced = resp.headers.get("Content-Length") if hasattr(resp, "headers") else None
            got = 0
            while chunk := (resp.read1(1 << 16) if hasattr(resp, "read1") else resp.read(1 << 16)):
                out.write(chunk)
                got += len(chunk)
                if time.monotonic() - started > deadline:
                    raise UserError(f"download of {url} took more than {deadline:.0f} s ({got} bytes so far); "
                                    "point data.dir= at a local copy of the Multi30k files")
            if announced is not None and announced.isdigit() and got != int(announced):
                raise UserError(f"download of {url} was cut short ({got} of {announced} bytes); run again, "
                                "or point data.dir= at a local copy of the Multi30k files")
    except urllib.error.HTTPError as err:
        raise UserError(f"download of {url} failed (HTTP {err.code}); check data.url= or point "
                        f"data.dir= at a local copy of the Multi30k files") from err
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise UserError(f"cannot download Multi30k: network unreachable ({url}: {reason}); point "
                        f"data.dir= at a local copy of the {{split}}.{{lang}}.gz files") from err
    except (http.client.HTTPException, ValueError) as err:  # a reply that is not HTTP, a body cut mid-chunk
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise UserError(f"download of {url} failed ({type(err).__name__}: {first}); check data.url= or point "
                        "data.dir= at a local copy of the Multi30k files") from err


def _check_gzip(path: Path, url: str) -> None:
    """The whole file decompresses: what the server sent is the gzip file, not a page about it."""
    try:
        with gzip.open(path, "rb") as f:
            while f.read(1 << 20):
                pass
    except (OSError, EOFError, zlib.error) as err:
        raise UserError(f"download of {url} is not a complete gzip file ({err}); check data.url= "
                        "(the server may have sent an error page)") from None
