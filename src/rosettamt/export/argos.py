"""An Argos Translate package (``.argosmodel``): the CTranslate2 export, the SentencePiece model,
metadata.json with the language codes, a README, and a spaCy sentencizer for offline use.

``argostranslate.package.install_from_path(FILE)`` unzips the package into Argos' package folder;
Argos (and so LibreTranslate) then translates with it like any other package. Argos splits text
into sentences before translating, with a model it downloads on first use unless the package
ships one: this package ships a blank multilingual spaCy pipeline (``spacy/``) that Argos
completes with spaCy's rule-based sentencizer when ``ARGOS_CHUNK_TYPE=SPACY`` is set.

Argos tokenizes and detokenizes with one SentencePiece model (``sentencepiece.model``), so a model
with separate source and target vocabularies is refused. Argos searches with its own settings
(ARGOS_BEAM_SIZE, default 4; length penalty 0.2), not rosettamt's decode options.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Dict, List

from rosettamt.errors import UserError
from rosettamt.export.common import Source, require, write_meta
from rosettamt.export.ct2 import export_ctranslate2

PACKAGE_VERSION = "1.0"
ARGOS_VERSION = "1.9"  # the package layout (model/, sentencepiece.model, metadata.json, spacy/) of Argos >= 1.9

LANGUAGE_NAMES = {"en": "English", "de": "German", "fr": "French", "cs": "Czech", "es": "Spanish", "it": "Italian",
                  "pt": "Portuguese", "nl": "Dutch", "ru": "Russian", "zh": "Chinese", "ja": "Japanese",
                  "pl": "Polish", "ro": "Romanian", "tr": "Turkish", "uk": "Ukrainian", "sv": "Swedish"}


def package_name(source: Source) -> str:
    """translate-<from>_<to>, the name argospm gives a translation package."""
    src, tgt = source.langs
    return f"translate-{src}_{tgt}"


def metadata(source: Source) -> Dict[str, Any]:
    src, tgt = source.langs
    return {"package_version": PACKAGE_VERSION, "argos_version": ARGOS_VERSION, "type": "translate",
            "from_code": src, "from_name": LANGUAGE_NAMES.get(src, src), "to_code": tgt,
            "to_name": LANGUAGE_NAMES.get(tgt, tgt), "links": [],
            "description": f"rosettamt {src} -> {tgt} from {source.path.name} (step {source.ckpt.get('step')})"}


def write_sentencizer(folder: Path, lang: str) -> None:
    """A blank spaCy pipeline (tokenizer only) that Argos turns into a rule-based sentencizer."""
    spacy = require("spacy", "argos", "format=argos (the offline sentence splitter)")
    try:
        nlp = spacy.blank(lang)
    except Exception:  # noqa: BLE001 - spaCy raises its own error types for a language it lacks
        nlp = spacy.blank("xx")
    nlp.to_disk(folder)


def readme(source: Source) -> str:
    src, tgt = source.langs
    return "\n".join([
        f"# rosettamt {src} -> {tgt} for Argos Translate", "",
        f"Exported from `{source.path.name}` by rosettamt-export format=argos.", "",
        "    import argostranslate.package, argostranslate.translate",
        "    argostranslate.package.install_from_path('PACKAGE.argosmodel')",
        f"    argostranslate.translate.translate('...', '{src}', '{tgt}')", "",
        "Offline use: set ARGOS_CHUNK_TYPE=SPACY, so that Argos splits sentences with the spaCy pipeline in",
        "this package (spacy/) instead of downloading a sentence-boundary model on first use.", ""])


def export_argos(source: Source, folder: Path, quantization: str = "float32") -> List[str]:
    """Write ``folder/translate-<from>_<to>.argosmodel`` (a zip whose single folder holds the package)."""
    if not source.tokenizer.joint:
        raise UserError("format=argos cannot carry this model: Argos Translate encodes and decodes with one "
                        "SentencePiece model (sentencepiece.model), and this model has separate source and target "
                        "vocabularies; use format=ctranslate2")
    name = package_name(source)
    package_file = Path(folder) / f"{name}.argosmodel"
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        root = Path(tmp) / name
        (root / "model").mkdir(parents=True)
        export_ctranslate2(source, root / "model", quantization)
        write_sentencizer(root / "spacy", source.langs[0])
        (root / "metadata.json").write_text(json.dumps(metadata(source), indent=1) + "\n", encoding="utf-8")
        (root / "README.md").write_text(readme(source), encoding="utf-8")
        write_meta(root, source, "argos", {"quantization": quantization})  # writes sentencepiece.model too
        with zipfile.ZipFile(package_file, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(root.rglob("*")):
                archive.write(path, path.relative_to(Path(tmp)).as_posix())
    return [package_file.name]
