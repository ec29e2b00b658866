"""One checkpoint format for every use: training state, evaluation, translation.

A checkpoint is a dict of plain data (tensors, numbers, strings, bytes, lists, dicts),
written with ``torch.save`` and read with ``torch.load(weights_only=True)``: loading one
never runs code. It carries the model config and the tokenizer, so the file alone is
enough to translate::

    {"format": "rosettamt-1", "model": state_dict, "model_config": dict (ModelConfig),
     "config": dict (the resolved TrainConfig), "tokenizer": Tokenizer.state_dict(),
     "step": int, "epoch": int, "val_bleu": float | None,
     # training only (optional): "optimizer", "scheduler", "sampler", "rng", "trainer"}

A training run keeps its checkpoints in ``<run_dir>/checkpoints/``: ``last.pt``, the best
few by validation BLEU (``best-step<N>-bleu<X>.pt``), optionally ``step<N>.pt`` for
averaging and ``averaged.pt``, and ``index.json`` saying which is which.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, Union

from rosettamt.errors import UserError

if TYPE_CHECKING:  # torch is imported by the functions that need it: resolving paths stays cheap
    import torch

FORMAT = "rosettamt-1"
CHECKPOINT_DIR = "checkpoints"
LAST = "last.pt"
AVERAGED = "averaged.pt"
INDEX = "index.json"
TRAINING_KEYS = ("optimizer", "scheduler", "sampler", "rng", "trainer")
_BEST_RE = re.compile(r"best-step(\d+)-bleu(-?[\d.]+)\.pt$")


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Any) -> None:
    """Call ``write(file)`` on a temp file beside ``path``, fsync, rename over ``path``, fsync the dir.

    A reader (or a process killed at any moment) sees the old file or the new one, never
    half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def save_checkpoint(state: Dict[str, Any], path: Path) -> None:
    """Write a checkpoint atomically (temp file, fsync, rename)."""
    import torch

    state = {"format": FORMAT, **state}
    atomic_write(Path(path), lambda f: torch.save(state, f))


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
    _fsync_dir(dst.parent)


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
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        if found:
            raise UserError(f"checkpoint {path} is refused: it holds Python objects ({found.group(1)}), not only "
                            "data, and is loaded with weights_only=True") from None
        raise UserError(f"checkpoint {path} is corrupt or truncated (unreadable pickle)") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"checkpoint {path} is corrupt or truncated ({first})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise UserError(f"{path} is not a rosettamt checkpoint (format {found!r}, expected {FORMAT!r})")
    missing = [k for k in ("model", "model_config", "tokenizer") if k not in ckpt]
    if missing:
        raise UserError(f"checkpoint {path} lacks {', '.join(missing)}")
    return ckpt


def config_mismatch(expected: Dict[str, Any], found: Dict[str, Any]) -> List[str]:
    """``key=found (checkpoint) != expected (config)`` for every differing key."""
    keys = sorted(set(expected) | set(found))
    return [f"{k}={found.get(k, '<absent>')!r} (checkpoint) != {expected.get(k, '<absent>')!r} (config)"
            for k in keys if expected.get(k) != found.get(k)]


def load_model_state(model: "torch.nn.Module", ckpt: Dict[str, Any], path: Union[Path, str],
                     expected_config: Optional[Dict[str, Any]] = None) -> None:
    """Load the weights into ``model``; a different model config or state is a UserError naming the keys."""
    if expected_config is not None:
        diff = config_mismatch(expected_config, ckpt["model_config"])
        if diff:
            raise UserError(f"checkpoint {path} was built with a different model config: {'; '.join(diff)}")
    state = ckpt["model"]
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} (checkpoint) != {tuple(v.shape)} (model)"
              for k, v in own.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:5])}" + (" ..." if len(unexpected) > 5 else ""))
        if shapes:
            parts.append(f"shape {'; '.join(shapes[:5])}" + (" ..." if len(shapes) > 5 else ""))
        raise UserError(f"checkpoint {path} does not fit this model: {' | '.join(parts)}")
    model.load_state_dict(state)


def load_for_inference(path: Path, device: Any, precision: str = "fp32") -> Tuple[Any, Any, Dict[str, Any]]:
    """(model in eval mode on ``device``, tokenizer, checkpoint dict) from one checkpoint file;
    precision (decode.precision: fp32, bf16 or auto) is the dtype the weights are cast to."""
    from rosettamt.config import ModelConfig, Precision, from_dict
    from rosettamt.data.tokenizer import Tokenizer
    from rosettamt.model import Seq2SeqTransformer
    from rosettamt.device import inference_dtype, resolve_device

    dev = resolve_device(device)
    dtype = inference_dtype(Precision(precision), dev)
    ckpt = load_checkpoint(path, map_location="cpu")
    for key in TRAINING_KEYS:  # free optimizer state etc. early: inference never needs it
        ckpt.pop(key, None)
    model = Seq2SeqTransformer(from_dict(ModelConfig, ckpt["model_config"]))
    load_model_state(model, ckpt, path)
    model.to(device=dev, dtype=dtype).eval()
    tokenizer = Tokenizer.from_state_dict(ckpt["tokenizer"])
    return model, tokenizer, ckpt


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
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"checkpoint index {path} is unreadable: {err}") from None
    index.setdefault("best", [])
    index.setdefault("averaged", None)
    return index


def write_index(ckpt_dir: Path, index: Dict[str, Any]) -> None:
    data = json.dumps(index, indent=1).encode("utf-8")
    atomic_write(Path(ckpt_dir) / INDEX, lambda f: f.write(data))


def find_best_checkpoint(run_dir: Path) -> Path:
    """Best checkpoint of a run by validation BLEU (averaged one included), else ``last.pt``.

    A folder not written by the trainer is accepted if it holds ``best.pt`` or a single ``.pt`` file.
    """
    run_dir = Path(run_dir)
    if run_dir.is_file():
        return run_dir
    ckpt_dir = checkpoint_dir(run_dir)
    index = read_index(ckpt_dir)
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
