"""The model behind the server: the Translator, loaded once (in the batcher's worker thread), seen
by the batcher as lines in, n-best lists or attention out, and described for /languages, /health
and the page. Every translation goes through Translator (DESIGN.md principle 9)."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

from rosettamt.serve.batcher import Settings
from rosettamt.text import clean_text

if TYPE_CHECKING:
    from rosettamt.config import ServeAppConfig
    from rosettamt.langid import LangId
    from rosettamt.translate.nbest import AttendedCandidate, Candidate
    from rosettamt.translate.translator import Translator

log = logging.getLogger("rosettamt.serve")

# Names for /languages (LibreTranslate's "name"); any other code is shown as itself.
LANGUAGE_NAMES = {
    "ar": "Arabic", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek", "en": "English",
    "es": "Spanish", "fi": "Finnish", "fr": "French", "hi": "Hindi", "hu": "Hungarian", "it": "Italian",
    "ja": "Japanese", "ko": "Korean", "nl": "Dutch", "pl": "Polish", "pt": "Portuguese", "ro": "Romanian",
    "ru": "Russian", "sv": "Swedish", "tr": "Turkish", "uk": "Ukrainian", "zh": "Chinese",
}


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


def shown_path(path: Optional[Path]) -> str:
    """The checkpoint as callers see it: run folder and file name, not where it lies on the server."""
    if path is None:
        return ""
    folder = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    return f"{folder.name}/{path.name}" if folder.name else path.name


@dataclass(frozen=True)
class ModelInfo:
    """What the API says about the loaded model."""

    source: str
    target: str
    decoder_layers: int
    heads: int
    checkpoint: str
    step: Optional[int]
    device: str
    backend: str  # rosettamt (a checkpoint) or ctranslate2 (an export)
    attention: bool  # whether this model can show its cross-attention (only rosettamt's own model can)
    # a multilingual model's directions (source/target above are its default one); () for a bilingual model
    directions: Tuple[Tuple[str, str], ...] = ()
    detection: bool = False  # whether it carries language profiles (/detect, source=auto; rosettamt.langid)

    def as_dict(self) -> Dict[str, Any]:
        out = {**asdict(self), "source_name": language_name(self.source), "target_name": language_name(self.target)}
        out.pop("directions")
        if self.directions:  # a bilingual model's answer stays as it was
            out["directions"] = [f"{s}-{t}" for s, t in self.directions]
        return out

    def languages(self) -> List[Dict[str, Any]]:
        """/languages: each source language with the targets the model translates it into."""
        pairs = self.directions or ((self.source, self.target),)
        sources = list(dict.fromkeys(s for s, _ in pairs))
        return [{"code": s, "name": language_name(s), "targets": [t for src, t in pairs if src == s]} for s in sources]


def load_translator(path: Path, cfg: "ServeAppConfig") -> "Translator":
    """The one place the server makes its Translator: a checkpoint searched by rosettamt, or
    (backend=ctranslate2) an export searched by CTranslate2 behind the same Translator. The rest
    of the server only calls translate_nbest / nbest_with_attention and reads checkpoint_info."""
    from rosettamt.device import set_threads
    from rosettamt.translate.translator import Translator

    set_threads(cfg.serve.threads)  # torch's pool is the process's: set once, by the thread that will use it
    started = time.perf_counter()
    if str(cfg.backend) == "ctranslate2":
        translator = Translator.from_export(path, cfg.device, cfg.decode, cfg.ct2.compute_type, cfg.ct2.threads)
    else:
        translator = Translator.from_checkpoint(path, device=cfg.device, decode=cfg.decode)
    log.info("loaded %s on %s in %.1f s", translator.checkpoint_path, translator.device,
             time.perf_counter() - started)
    return translator


def detector(translator: "Translator") -> Optional["LangId"]:
    """The stored language profiles restricted to the model's languages, or None (no detection:
    answers assume the source language) when it has none or lacks one of its languages."""
    langid, langs = translator.langid, list(dict.fromkeys(lang for d in translator.directions for lang in d))
    if langid is None:
        return None
    own = langid.only(langs)
    if own is None:
        log.warning("the model's language profiles lack %s; languages will not be detected",
                    ", ".join(sorted(set(langs) - set(langid.languages))))
    return own


class ServedModel:
    """The Translator as the batcher's Model: translate lines in batches, or one line's attention."""

    def __init__(self, translator: "Translator") -> None:
        self.translator = translator
        info = translator.checkpoint_info
        has_model = getattr(translator, "model", None) is not None  # an export has only its engine
        self.langid = detector(translator)
        self.info = ModelInfo(
            source=str(info.get("src_lang") or "src"), target=str(info.get("tgt_lang") or "tgt"),
            decoder_layers=translator.n_decoder_layers, heads=translator.n_heads,
            checkpoint=shown_path(translator.checkpoint_path), step=info.get("step"),
            device=str(translator.device), backend="rosettamt" if has_model else "ctranslate2",
            attention=has_model, directions=tuple(translator.directions) if translator.multilingual else (),
            detection=self.langid is not None)
        if translator.multilingual:  # the default direction, which a request without source/target gets
            src, tgt = translator.pick_direction()
            self.info = dataclasses.replace(self.info, source=src, target=tgt)

    def count_tokens(self, lines: Sequence[str]) -> int:
        """Source pieces of the lines, as the search will see them (for the batch budget)."""
        texts = [t for t in (clean_text(line) for line in lines) if t]
        tags = len(texts) if self.info.directions else 0  # a multilingual source starts with its tag
        return sum(len(ids) for ids in self.translator.tokenizer.encode_src(texts)) + tags if texts else 0

    def translate(self, lines: Sequence[str], settings: Settings) -> List[List["Candidate"]]:
        return self.translator.translate_nbest(list(lines), beam_size=settings.beam_size, nbest=settings.nbest,
                                               length_penalty=settings.length_penalty, src_lang=settings.src_lang,
                                               tgt_lang=settings.tgt_lang)

    def attend(self, lines: Sequence[str], settings: Settings) -> List[List["AttendedCandidate"]]:
        return [self.translator.nbest_with_attention(line, nbest=settings.nbest, beam_size=settings.beam_size,
                                                     length_penalty=settings.length_penalty,
                                                     src_lang=settings.src_lang, tgt_lang=settings.tgt_lang)
                for line in lines]
