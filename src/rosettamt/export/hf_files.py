"""The Hugging Face export folder: safetensors weights, config, generation defaults, tokenizer files,
model card. ``AutoTokenizer.from_pretrained(DIR)`` and ``AutoModelForSeq2SeqLM.from_pretrained(DIR)``
load it offline without custom code.

The tokenizer is transformers' MarianTokenizer, whatever the model class: it runs the SentencePiece
model(s) themselves (source.spm for sources, target.spm for targets) and maps pieces to ids with
vocab.json, which is the SentencePiece piece list, so its ids are rosettamt's; it appends EOS to a
source, as rosettamt does.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

from rosettamt.config import DecodeConfig
from rosettamt.export.common import Source, require, spm_pieces, write_meta

log = logging.getLogger(__name__)


def write_tokenizer(source: Source, folder: Path) -> Any:
    """Write MarianTokenizer's files for the checkpoint's SentencePiece model(s); returns the tokenizer."""
    transformers = require("transformers", "hf", "format=hf")
    state = source.tokenizer.state_dict()
    src_lang, tgt_lang = source.langs
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        (tmp_dir / "source.spm").write_bytes(bytes(state["src_model"]))
        (tmp_dir / "target.spm").write_bytes(bytes(state["tgt_model"] or state["src_model"]))
        files: Dict[str, Any] = {}
        for name, model in (("vocab.json", state["src_model"]), ("target_vocab.json", state["tgt_model"])):
            if model is not None:
                pieces = spm_pieces(bytes(model))
                (tmp_dir / name).write_text(json.dumps({p: i for i, p in enumerate(pieces)}, ensure_ascii=False),
                                            encoding="utf-8")
                files[name] = str(tmp_dir / name)
        tokenizer = transformers.MarianTokenizer(
            source_spm=str(tmp_dir / "source.spm"), target_spm=str(tmp_dir / "target.spm"),
            vocab=files["vocab.json"], target_vocab_file=files.get("target_vocab.json"),
            separate_vocabs=not state["joint"], source_lang=src_lang, target_lang=tgt_lang,
            model_max_length=source.cfg.max_positions)
        tokenizer.save_pretrained(str(folder))
    return tokenizer


def export_hf(source: Source, folder: Path, decode: DecodeConfig, run_dir: Optional[Path] = None) -> List[str]:
    """Convert, check against rosettamt, and write the Hugging Face export into ``folder``."""
    from rosettamt.export.card import model_card
    from rosettamt.export.check import check_hf_logits
    from rosettamt.export.hf import build_hf_model, generation_config

    require("safetensors", "hf", "format=hf")
    model, arch = build_hf_model(source)
    check_hf_logits(source, model)  # a conversion that computes something else never gets written
    model.generation_config, caveat = generation_config(decode, source.cfg)
    if caveat:
        log.warning("format=hf: %s", caveat)
    transformers = require("transformers", "hf", "format=hf")
    transformers.utils.logging.disable_progress_bar()
    model.save_pretrained(str(folder), safe_serialization=True)
    write_tokenizer(source, folder)
    write_meta(folder, source, "hf", {"architecture": arch}, {"source": "source.spm", "target": "target.spm"})
    card = model_card(source, arch, model.generation_config, caveat, run_dir)
    (folder / "README.md").write_text(card, encoding="utf-8")
    return sorted(p.name for p in Path(folder).iterdir())
