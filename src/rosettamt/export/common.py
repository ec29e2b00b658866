"""What every export format needs: the checkpoint as a model, an output folder that appears whole
or not at all, optional packages named by the extra that installs them, and the SentencePiece
models and vocabularies that travel with every export.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from rosettamt.checkpoint.names import check_stored_names, is_plain_name
from rosettamt.errors import UserError
from rosettamt.langid import write_langid
from rosettamt.langs import tag

log = logging.getLogger("rosettamt.export")
# What each export writes beside its weights: the rosettamt view of the model (config, languages,
# tokenizer files), so that rosettamt (backend=ctranslate2) can run the export on its own.
META_FILE = "rosettamt.json"
META_FORMAT = "rosettamt-export-1"
JOINT_SPM = "sentencepiece.model"  # the name Argos Translate looks for
SOURCE_SPM, TARGET_SPM = "source.model", "target.model"


def require(module: str, extra: str, purpose: str) -> Any:
    """Import an optional package, or a one-line UserError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"{purpose} needs the Python package '{module}', which is not installed: "
                        f"pip install 'rosettamt[{extra}]'") from None


@dataclass
class Source:
    """A checkpoint loaded for export: the model in fp32 on the CPU, its tokenizer and its run info."""

    model: Any  # Seq2SeqTransformer, eval mode
    tokenizer: Any  # rosettamt.data.tokenizer.Tokenizer
    ckpt: Dict[str, Any]
    path: Path

    @property
    def cfg(self) -> Any:
        return self.model.cfg

    baked: Optional[tuple] = None  # format=argos of a multilingual model: the one direction exported

    @property
    def langs(self) -> tuple:
        if self.baked is not None:
            return tuple(self.baked)
        data = (self.ckpt.get("config") or {}).get("data") or {}
        return (data.get("src_lang") or self.tokenizer.src_lang, data.get("tgt_lang") or self.tokenizer.tgt_lang)

    @property
    def directions(self) -> Any:
        """What the checkpoint translates (rosettamt.translate.directions.Directions)."""
        from rosettamt.translate.directions import Directions

        return Directions.from_stored(self.ckpt.get("config"), self.tokenizer.state_dict()["src_model"],
                                      f"checkpoint {self.path}", (self.tokenizer.src_lang, self.tokenizer.tgt_lang))


def load_source(path: Path) -> Source:
    """The checkpoint as fp32 weights on the CPU (every export starts from the exact weights)."""
    from rosettamt.checkpoint import load_for_inference

    model, tokenizer, ckpt = load_for_inference(Path(path), "cpu", "fp32")
    return Source(model, tokenizer, ckpt, Path(path))


def check_output(output: Path, overwrite: bool) -> None:
    """Refuse an existing output unless overwrite=true, and even then unless it is an export made
    by rosettamt-export (or an empty folder): overwrite=true must never delete someone's folder."""
    if output.exists() or output.is_symlink():
        if output.is_symlink():
            raise UserError(f"output={output} is a symbolic link; give the folder it points to, or another output=")
        if not output.is_dir():
            raise UserError(f"output={output} is a file, not a directory; choose another output=")
        if not overwrite:
            raise UserError(f"output={output} already exists; pass overwrite=true to replace it")
        if not is_export(output):
            raise UserError(f"output={output} is a folder that rosettamt-export did not write (no {META_FILE} or "
                            ".argosmodel in it); overwrite=true replaces only an earlier export: choose another output=")


# what file managers leave in a folder someone only looked at: it does not make the folder theirs
DESKTOP_CLUTTER = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})


def is_export(folder: Path) -> bool:
    """An empty folder (file-manager clutter aside), or one that rosettamt-export wrote:
    rosettamt.json (ctranslate2, hf) or nothing but .argosmodel packages (argos)."""
    entries = [p for p in folder.iterdir()
               if not (p.name in DESKTOP_CLUTTER and p.is_file() and not p.is_symlink())]
    return (folder / META_FILE).is_file() or all(p.is_file() and p.suffix == ".argosmodel" for p in entries)


@contextmanager
def staged_dir(output: Path, overwrite: bool) -> Iterator[Path]:
    """A fresh folder beside ``output`` to write into; renamed to ``output`` when the block succeeds.

    A failed or interrupted export removes its folder, so ``output`` is the old export or the new
    one, never half of one.
    """
    output = Path(output)
    check_output(output, overwrite)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"output={output}: cannot create its folder ({err.strerror})") from None
    tmp = output.parent / f".{output.name}.{os.getpid()}.tmp"
    old = output.parent / f".{output.name}.{os.getpid()}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if output.exists():
            os.rename(output, old)  # overwrite=true: swap, then drop the old export
        os.rename(tmp, output)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def spm_pieces(model_bytes: bytes) -> List[str]:
    """The vocabulary of a SentencePiece model: piece i is token id i."""
    import sentencepiece as spm

    proc = spm.SentencePieceProcessor(model_proto=model_bytes)
    return [proc.id_to_piece(i) for i in range(proc.get_piece_size())]


def tokenizer_models(tokenizer: Any) -> Dict[str, bytes]:
    """File name -> SentencePiece model bytes: one joint model, or a source and a target model."""
    state = tokenizer.state_dict()
    if state["joint"]:
        return {JOINT_SPM: bytes(state["src_model"])}
    return {SOURCE_SPM: bytes(state["src_model"]), TARGET_SPM: bytes(state["tgt_model"])}


def write_meta(folder: Path, source: Source, kind: str, extra: Optional[Dict[str, Any]] = None,
               spm_files: Optional[Dict[str, str]] = None) -> None:
    """Write rosettamt.json, what backend=ctranslate2 reads back, and the SentencePiece model(s)
    (unless ``spm_files`` names the files, {"source": name, "target": name}, already written)."""
    from rosettamt.config import to_dict

    if spm_files is None:
        models = tokenizer_models(source.tokenizer)
        for name, data in models.items():
            (folder / name).write_bytes(data)
        names = list(models)
        spm_files = {"source": names[0], "target": names[-1]}
    src_lang, tgt_lang = source.langs
    dirs = source.directions
    if dirs.multilingual and source.baked is not None:  # the exported model adds the tag itself
        extra = {**(extra or {}), "direction": f"{src_lang}-{tgt_lang}"}
    elif dirs.multilingual:  # every source starts with its target's tag piece (one id, never text)
        extra = {**(extra or {}), "directions": [f"{s}-{t}" for s, t in dirs.all],
                 "target_tags": {t: tag(t) for _, t in dirs.all}}
    meta = {"format": META_FORMAT, "kind": kind, "src_lang": src_lang, "tgt_lang": tgt_lang,
            "tokenizer": {"joint": source.tokenizer.joint, **spm_files},
            "model_config": to_dict(source.cfg), "config": source.ckpt.get("config") or {},
            "checkpoint": source.path.name, "step": source.ckpt.get("step"), "val_bleu": source.ckpt.get("val_bleu"),
            **(extra or {})}
    write_langid(folder, source.ckpt.get("langid"), f"checkpoint {source.path}", log)  # for /detect, source=auto
    (folder / META_FILE).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


def read_meta(folder: Path) -> Dict[str, Any]:
    """rosettamt.json of an export folder; a folder without one is a one-line UserError."""
    path = Path(folder) / META_FILE
    if not path.is_file():
        raise UserError(f"{folder} is not a rosettamt export (no {META_FILE}); make one with rosettamt-export")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"{path} is unreadable: {err}") from None
    if not isinstance(meta, dict) or meta.get("format") != META_FORMAT:
        raise UserError(f"{path}: not a {META_FORMAT} file")
    check_stored_names(meta, path)  # its languages become parts of output file names, as a checkpoint's
    files = meta.get("tokenizer") if isinstance(meta.get("tokenizer"), dict) else {}
    for side in ("source", "target"):
        if side in files and not is_plain_name(files[side]):
            raise UserError(f"{path}: tokenizer.{side} is {str(files[side])[:80]!r}, not a file name in {folder}")
    return meta


def tokenizer_from_export(folder: Path, meta: Dict[str, Any]) -> Any:
    """The rosettamt Tokenizer from the SentencePiece file(s) an export carries."""
    from rosettamt.data.tokenizer import Tokenizer

    folder = Path(folder)
    langs = (meta.get("src_lang") or "src", meta.get("tgt_lang") or "tgt")
    try:
        files = meta["tokenizer"]
        src = (folder / files["source"]).read_bytes()
        return Tokenizer(src, None if files["joint"] else (folder / files["target"]).read_bytes(), *langs)
    except (OSError, KeyError, TypeError) as err:
        raise UserError(f"{folder}: the export's SentencePiece model is missing or unreadable ({err})") from None
