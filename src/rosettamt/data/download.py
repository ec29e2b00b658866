"""Fetch the Multi30k task-1 files from the public repository into a local directory.

Only used when ``data.dir`` is missing or empty (or was filled by an earlier
download): a local copy is never written into. Each file is written to a temp
name and renamed, so an interrupted download never leaves a truncated file that
a later run would read as the corpus.
"""

from __future__ import annotations

import logging
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path

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


def download_files(dest: Path, base_url: str, names: list[str], timeout: float = 10.0) -> None:
    """Download ``{base_url}/{name}`` into ``dest/name`` for every name (e.g. ``train.de.gz``)."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / MARKER).write_text(f"files fetched from {base_url}\n", encoding="utf-8")
    for name in names:
        url = f"{base_url.rstrip('/')}/{name}"
        log.info("downloading %s", url)
        tmp = dest / f".{name}.{os.getpid()}.part"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out:
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
        except urllib.error.HTTPError as err:
            tmp.unlink(missing_ok=True)
            raise UserError(f"download of {url} failed (HTTP {err.code}); check data.url= or point "
                            f"data.dir= at a local copy of the Multi30k files") from err
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as err:
            tmp.unlink(missing_ok=True)
            reason = getattr(err, "reason", err)
            raise UserError(f"cannot download Multi30k: network unreachable ({url}: {reason}); point "
                            f"data.dir= at a local copy of the {{split}}.{{lang}}.gz files") from err
        os.replace(tmp, dest / name)
