"""Where a run keeps its checkpoints, and which one a command should use.

``<run_dir>/checkpoints/`` holds ``last.pt``, the best few by validation BLEU
(``best-step<N>-bleu<X>.pt``), optionally ``step<N>.pt`` for averaging and ``averaged.pt``, and
``index.json`` saying which is which. Nothing here imports torch: commands resolve their
``checkpoint=`` / ``run_dir=`` options before loading anything.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from rosettamt.atomic import atomic_write
from rosettamt.errors import UserError

CHECKPOINT_DIR = "checkpoints"
LAST = "last.pt"
AVERAGED = "averaged.pt"
INDEX = "index.json"
_BEST_RE = re.compile(r"best-step(\d+)-bleu(-?[\d.]+)\.pt$")


def checkpoint_dir(run_dir: Path) -> Path:
    """``run_dir/checkpoints`` when it exists, else ``run_dir`` itself (already a checkpoint folder)."""
    run_dir = Path(run_dir)
    return run_dir / CHECKPOINT_DIR if (run_dir / CHECKPOINT_DIR).is_dir() else run_dir


def read_index(ckpt_dir: Path) -> Dict[str, Any]:
    """The checkpoint index: {"best": [{"file", "step", "bleu"}...] best first, "averaged": {...}|None}."""
    path = Path(ckpt_dir) / INDEX
    if not path.is_file():
        return {"best": [], "averaged": None}
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # ValueError: not JSON, or not UTF-8
        raise UserError(f"checkpoint index {path} is unreadable: {err}") from None
    if not isinstance(index, dict):
        raise UserError(f"checkpoint index {path}: a {type(index).__name__}, not a JSON object")
    index.setdefault("best", [])
    index.setdefault("averaged", None)
    for key, value in index.items():
        entries = value if key in _ENTRY_LISTS else [value] if key in _ENTRIES and value is not None else []
        if key in _ENTRY_LISTS and not isinstance(value, list):
            raise UserError(f"checkpoint index {path}: {key!r} is a {type(value).__name__}, not a list")
        for entry in entries:
            problem = _entry_problem(entry, key)
            if problem:
                raise UserError(f"checkpoint index {path}: an entry of {key!r} {problem}; "
                                "it is the trainer's file, do not edit it by hand")
    return index


_ENTRY_LISTS = ("best", "periodic")
_ENTRIES = ("averaged", "averaged_best", "selected", "last")
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*\.pt$")  # a file in the folder itself: no / .. or ~


def _entry_problem(entry: Any, key: str) -> str:
    """Why an index entry is not {"file": <a .pt name in this folder>, "step": int, "bleu": number}
    (the step may be missing and the bleu None outside "best" / "periodic"; "periodic" has no bleu); ''."""
    if not isinstance(entry, dict):
        return f"is a {type(entry).__name__}, not an object"
    listed = key in _ENTRY_LISTS
    file, step, bleu = entry.get("file"), entry.get("step", None if listed else 0), entry.get("bleu")
    if not isinstance(file, str) or not _FILE_NAME.match(file):
        return f"names {file!r}, not a checkpoint file in this folder"
    if not isinstance(step, int) or isinstance(step, bool):
        return f"({file}) has step {step!r}, not a whole number"
    if (bleu is not None or key == "best") and (not isinstance(bleu, (int, float)) or isinstance(bleu, bool)):
        return f"({file}) has bleu {bleu!r}, not a number"
    return ""


def write_index(ckpt_dir: Path, index: Dict[str, Any]) -> None:
    data = json.dumps(index, indent=1).encode("utf-8")
    atomic_write(Path(ckpt_dir) / INDEX, lambda f: f.write(data))


def find_best_checkpoint(run_dir: Path) -> Path:
    """The checkpoint the run's end-of-run rule picked (index "selected"); else the best by validation
    BLEU (averaged one included); else ``last.pt``.

    A folder not written by the trainer is accepted if it holds ``best.pt`` or a single ``.pt`` file.
    """
    run_dir = Path(run_dir)
    if run_dir.is_file():
        return run_dir
    ckpt_dir = checkpoint_dir(run_dir)
    index = read_index(ckpt_dir)
    selected = index.get("selected")  # what the run's end-of-run rule picked (trainer.select)
    if selected and (ckpt_dir / selected["file"]).is_file():
        return ckpt_dir / selected["file"]
    scored: List[Tuple[float, int, Path]] = []
    for entry in index["best"] + ([index["averaged"]] if index["averaged"] else []):
        if entry.get("bleu") is not None and (ckpt_dir / entry["file"]).is_file():
            scored.append((float(entry["bleu"]), int(entry.get("step", 0)), ckpt_dir / entry["file"]))
    if not scored:  # no index (copied files?): trust the names
        for p in ckpt_dir.glob("best-step*-bleu*.pt"):
            m = _BEST_RE.search(p.name)
            if m:
                scored.append((float(m.group(2)), int(m.group(1)), p))
    if scored:
        return max(scored, key=lambda t: (t[0], t[1]))[2]
    if (ckpt_dir / LAST).is_file():
        return ckpt_dir / LAST
    others = sorted(ckpt_dir.glob("*.pt"))  # a folder written by hand: best.pt, or a single file
    if (ckpt_dir / "best.pt").is_file():
        return ckpt_dir / "best.pt"
    if len(others) == 1:
        return others[0]
    found = f"; it holds {', '.join(p.name for p in others)}: pass one as checkpoint=PATH" if others else ""
    raise UserError(f"no checkpoint in {run_dir} (looked for {ckpt_dir / INDEX}, best-step*.pt and {LAST}){found}")


def resolve_checkpoint(checkpoint: Optional[Union[str, Path]] = None,
                       run_dir: Optional[Union[str, Path]] = None) -> Path:
    """The one answer to ``checkpoint=PATH`` or ``run_dir=DIR``: exactly one of them, and it exists.

    A run directory gives its best checkpoint (:func:`find_best_checkpoint`); ``~`` is expanded.
    Cheap (no torch), so commands call it before loading anything.
    """
    if (checkpoint is None) == (run_dir is None):
        raise UserError("say which model to use: give exactly one of checkpoint=PATH or run_dir=DIR")
    if run_dir is not None:
        folder = Path(run_dir).expanduser()
        if not folder.is_dir():
            raise UserError(f"run_dir={run_dir}: no such directory")
        return find_best_checkpoint(folder)
    path = Path(checkpoint).expanduser()  # type: ignore[arg-type]
    if path.is_dir():
        raise UserError(f"checkpoint={checkpoint} is a directory; use run_dir={checkpoint} to take its best checkpoint")
    if not path.is_file():
        raise UserError(f"checkpoint={checkpoint}: no such file")
    return path
