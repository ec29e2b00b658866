"""What the prompt's commands change (search, n-best, attention view), set from the TranslateConfig."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

from rosettamt.config import TranslateConfig, check_decode, resolve_decode
from rosettamt.langs import check_lang

log = logging.getLogger("rosettamt.prompt")


@dataclass
class Settings:
    """The per-sentence settings of rosettamt-translate; the prompt's ':' commands change them."""

    beam_size: int = 1
    nbest: int = 1
    show_attention: bool = False
    layer: int = -1
    head: Optional[int] = None
    grid: bool = False
    # the direction (a multilingual model; a bilingual one takes only its own pair): None = the default
    src_lang: Optional[str] = None
    tgt_lang: Optional[str] = None

    @classmethod
    def from_config(cls, cfg: TranslateConfig) -> "Settings":
        """The command's options, checked and normalised where all decode options are (resolve_decode)."""
        nbest = cfg.nbest if cfg.nbest != 1 else cfg.decode.nbest
        check_decode(cfg.decode)  # errors name decode.* as typed on the command line
        beam = resolve_decode(cfg.decode, nbest=nbest).beam_size
        if beam > resolve_decode(cfg.decode, nbest=1).beam_size:
            log.info("nbest=%d: searching with a beam of %d", nbest, beam)
        src, tgt = (check_lang(v, name) if v is not None else None
                    for v, name in ((cfg.src_lang, "src_lang"), (cfg.tgt_lang, "tgt_lang")))
        return cls(beam, nbest, cfg.show_attention, cfg.attention_layer, cfg.attention_head, cfg.attention_grid,
                   src, tgt)

    @property
    def direction(self) -> dict:
        """The keyword arguments that pass the direction on to the Translator."""
        return {"src_lang": self.src_lang, "tgt_lang": self.tgt_lang}

    def describe(self) -> str:
        """One line for the banner and the :settings command."""
        head = "grid of all heads" if self.grid else ("mean over heads" if self.head is None else f"head {self.head}")
        search = "greedy" if self.beam_size == 1 else f"beam {self.beam_size}"
        pair = f"direction: {self.src_lang or '?'} -> {self.tgt_lang}, " if self.tgt_lang else ""
        return (f"{pair}search: {search}, nbest: {self.nbest}, attention: {'on' if self.show_attention else 'off'} "
                f"(layer {self.layer}, {head})")
