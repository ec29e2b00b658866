"""Checkpoint files: write one atomically, link it under another name, read it as data only."""

from __future__ import annotations

import os
import pickle
import pickletools
import re
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional

from rosettamt.atomic import atomic_write, fsync_dir
from rosettamt.errors import UserError

FORMAT = "rosettamt-1"
TRAINING_KEYS = ("optimizer", "scheduler", "sampler", "rng", "trainer")


def save_checkpoint(state: Dict[str, Any], path: Path, named: bool = False) -> None:
    """Write a checkpoint atomically (temp file, fsync, rename); ``named``: a path the user typed
    (output=), see rosettamt.atomic.atomic_open."""
    import torch

    state = {"format": FORMAT, **state}
    atomic_write(Path(path), lambda f: torch.save(state, f), named=named)


def link_checkpoint(src: Path, dst: Path) -> None:
    """Make ``dst`` the same checkpoint as ``src`` without serializing it again (hard link, atomically)."""
    src, dst = Path(src), Path(dst)
    tmp = dst.with_name(f".{dst.name}.link.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:  # no hard links on this filesystem: copy
        atomic_write(dst, lambda f: f.write(src.read_bytes()))
        return
    os.replace(tmp, dst)
    fsync_dir(dst.parent)


def load_checkpoint(path: Path, map_location: Any = "cpu") -> Dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; a missing, corrupt or foreign file is a UserError."""
    import torch

    path = Path(path)
    if path.is_dir():
        raise UserError(f"checkpoint {path} is a directory; pass a .pt file (or run_dir=... to pick the best)")
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip whose directory is at the very end
        raise UserError(f"checkpoint {path} is corrupt or truncated (not a complete torch.save archive)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        names = _pickled_objects(path)
        if names is None:  # the pickle itself does not parse: damaged, not hostile
            raise UserError(f"checkpoint {path} is corrupt or truncated (unreadable pickle)") from None
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        what = ", ".join(names[:3]) or (found.group(1) if found else "objects beyond tensors and plain data")
        raise UserError(f"checkpoint {path} is refused: it holds Python objects ({what}), not only "
                        "data, and is loaded with weights_only=True") from None
    except Exception as err:  # noqa: BLE001 - whatever a damaged archive makes torch raise
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"checkpoint {path} is corrupt or truncated ({first})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise UserError(f"{path} is not a rosettamt checkpoint (format {found!r}, expected {FORMAT!r})")
    missing = [k for k in ("model", "model_config", "tokenizer") if k not in ckpt]
    if missing:
        raise UserError(f"checkpoint {path} lacks {', '.join(missing)}")
    return ckpt




# What torch.save itself writes into a checkpoint's pickle; anything else is a Python object.
_DATA_GLOBALS = ("torch.", "collections.OrderedDict", "builtins.set", "builtins.frozenset",
                 "builtins.bytearray", "_codecs.encode", "builtins.slice", "builtins.complex")


def _pickled_objects(path: Path) -> Optional[List[str]]:
    """The non-data globals a checkpoint's pickle refers to ([] if none), or None if the pickle
    does not parse. Read with pickletools: nothing is imported or run."""
    try:
        with zipfile.ZipFile(path) as archive:
            member = next(n for n in archive.namelist() if n.endswith("data.pkl"))
            data = archive.read(member)
        names: List[str] = []
        strings: List[str] = []  # the last strings pushed: STACK_GLOBAL takes module and name from them
        for op, arg, _ in pickletools.genops(data):
            if op.name in ("GLOBAL", "INST"):
                names.append(str(arg).replace(" ", "."))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                names.append(f"{strings[-2]}.{strings[-1]}")
            elif isinstance(arg, str):
                strings.append(arg)
    except Exception:  # noqa: BLE001 - any parse failure means a damaged file
        return None
    return [n for n in dict.fromkeys(names) if not n.startswith(_DATA_GLOBALS)]
