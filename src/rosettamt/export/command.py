"""rosettamt-export's body: check the options, load the checkpoint, write the format into a folder
beside the output, prove it (check.py), and only then rename it into place."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, Optional

from rosettamt.config import ExportConfig, ExportFormat, check_decode
from rosettamt.errors import UserError
from rosettamt.export.common import Source, check_output, load_source, require, staged_dir

log = logging.getLogger("rosettamt.export")

# format -> [(module, extra)] it needs, checked before any time is spent on the model
NEEDS = {ExportFormat.ctranslate2: [("ctranslate2", "ctranslate2")],
         ExportFormat.hf: [("transformers", "hf"), ("safetensors", "hf"), ("sentencepiece", "hf")],
         ExportFormat.argos: [("ctranslate2", "argos"), ("spacy", "argos")]}


def export(cfg: ExportConfig) -> Path:
    """Export the checkpoint (checkpoint= or the best of run_dir=) as cfg.format into cfg.output."""
    from rosettamt.checkpoint import resolve_checkpoint
    from rosettamt.export.ct2 import QUANTIZATIONS

    fmt = ExportFormat(str(cfg.format))
    if not cfg.output:
        raise UserError("say where to write the export: output=DIR")
    output = Path(cfg.output).expanduser()
    check_output(output, cfg.overwrite)
    if fmt != ExportFormat.hf and cfg.quantization not in QUANTIZATIONS:
        raise UserError(f"quantization={cfg.quantization}: CTranslate2 accepts {', '.join(QUANTIZATIONS)}")
    if fmt == ExportFormat.hf and cfg.quantization != "float32":
        raise UserError(f"quantization={cfg.quantization}: format=hf writes float32 weights; quantization is for "
                        "format=ctranslate2 and format=argos")
    check_decode(cfg.decode)
    if cfg.direction is not None and fmt != ExportFormat.argos:
        raise UserError(f"direction={cfg.direction} is for format=argos (a package translates one direction); "
                        f"format={fmt} keeps every direction the model knows")
    checkpoint = resolve_checkpoint(cfg.checkpoint, cfg.run_dir)
    for module, extra in NEEDS[fmt]:
        require(module, extra, f"format={fmt}")
    source = load_source(checkpoint)
    choose_direction(source, fmt, cfg.direction)
    run_dir = Path(cfg.run_dir) if cfg.run_dir else (checkpoint.parent.parent if checkpoint.parent.name == "checkpoints"
                                                     else checkpoint.parent)
    with staged_dir(output, cfg.overwrite) as folder:
        if fmt == ExportFormat.ctranslate2:
            from rosettamt.export.check import check_ct2_scores
            from rosettamt.export.ct2 import export_ctranslate2

            export_ctranslate2(source, folder, cfg.quantization)
            if cfg.quantization == "float32":
                log.info("checked: CTranslate2 log-probs within %.1e of rosettamt's", check_ct2_scores(source, folder))
        elif fmt == ExportFormat.hf:
            from rosettamt.export.hf_files import export_hf

            export_hf(source, folder, cfg.decode, run_dir)
        else:
            from rosettamt.export.argos import export_argos

            export_argos(source, folder, cfg.quantization)
        sizes = file_sizes(folder)
    log.info("wrote %s (%s): %s", output, fmt, ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sizes.items()))
    return output


def choose_direction(source: Source, fmt: ExportFormat, direction: Optional[str]) -> None:
    """A multilingual checkpoint: format=hf is refused, format=argos exports the one direction=
    asked for (set as source.baked); a bilingual one takes direction= only when it is its own pair."""
    from rosettamt.langs import pair_name, parse_pair

    dirs = source.directions
    known = ", ".join(pair_name(d) for d in dirs.all)
    if dirs.multilingual and fmt == ExportFormat.hf:
        raise UserError("format=hf cannot carry a multilingual model: transformers' MarianTokenizer has no way to "
                        "start every source with rosettamt's target tag (<2xx>) as one id; use format=ctranslate2")
    if fmt != ExportFormat.argos:
        return
    if direction is None:
        if dirs.multilingual:
            raise UserError(f"format=argos: an Argos package translates one direction and this model knows {known}: "
                            "choose one with direction=SRC-TGT")
        return
    pair = parse_pair(direction, "direction")
    if pair not in dirs.all:
        raise UserError(f"direction={direction}: this model was not trained to translate it (it knows {known})")
    if dirs.multilingual:
        source.baked = pair


def file_sizes(folder: Path) -> Dict[str, int]:
    """Relative path -> bytes of every file under folder (the export's size, for reports)."""
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(Path(folder).rglob("*")) if p.is_file()}
