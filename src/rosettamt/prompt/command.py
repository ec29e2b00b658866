"""rosettamt-translate's body: check the options and the input, load the model once, then run
the interactive prompt (a terminal) or pipe mode (a pipe, or input=/output= files).

Everything that can be wrong with the options or the input fails before torch is imported.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, List

from rosettamt.checkpoint import resolve_checkpoint
from rosettamt.config import TranslateConfig
from rosettamt.errors import UserError
from rosettamt.prompt.interactive import Prompt, holding_ctrl_c
from rosettamt.prompt.pipe import translate_stream
from rosettamt.prompt.plots import check_attention_settings
from rosettamt.prompt.settings import Settings
from rosettamt.prompt.streams import open_output, output_path, read_input

if TYPE_CHECKING:
    from rosettamt.translate.translator import Translator

log = logging.getLogger("rosettamt.prompt")


def checkpoint_from_config(cfg: TranslateConfig) -> Path:
    """checkpoint=PATH, or the best checkpoint of run_dir=DIR (exactly one, and it exists)."""
    return resolve_checkpoint(cfg.checkpoint, cfg.run_dir)


def model_from_config(cfg: TranslateConfig) -> Path:
    """The checkpoint (backend=rosettamt) or the export folder model_dir= (backend=ctranslate2)."""
    if str(cfg.backend) != "ctranslate2":
        if cfg.model_dir is not None:
            raise UserError("model_dir= is the export folder of backend=ctranslate2; "
                            "give checkpoint= or run_dir= instead, or add backend=ctranslate2")
        return checkpoint_from_config(cfg)
    if cfg.show_attention:
        raise UserError("show_attention=true needs backend=rosettamt: a CTranslate2 export has no attention "
                        "weights to show")
    from rosettamt.engine.ct2_options import resolve_model_dir

    return resolve_model_dir(cfg.checkpoint, cfg.run_dir, cfg.model_dir, cfg.decode)


def choose_direction(translator: "Translator", settings: Settings) -> None:
    """Check tgt_lang= / src_lang= against the model (a one-line error); a multilingual model's
    settings then name the whole direction (the default one when neither was given)."""
    src, tgt = translator.pick_direction(settings.src_lang, settings.tgt_lang)
    if translator.multilingual:
        settings.src_lang, settings.tgt_lang = src, tgt


def run(cfg: TranslateConfig) -> None:
    """rosettamt-translate: interactive on a terminal, else translate all input lines."""
    interactive = cfg.input is None and cfg.output is None and sys.stdin.isatty()
    with holding_ctrl_c(interactive):  # before torch starts any thread: Ctrl-C must reach the prompt's thread
        _run(cfg, interactive)


def _run(cfg: TranslateConfig, interactive: bool) -> None:
    settings = Settings.from_config(cfg)
    checkpoint = model_from_config(cfg)
    lines: List[str] = []
    if not interactive:  # check output and input before spending time on the model
        output_path(cfg)  # first: an output that is the input is refused before it is read
        lines = read_input(cfg)
    from rosettamt.device import setup_allocator
    from rosettamt.translate.translator import Translator

    setup_allocator(cfg.decode.keep_freed_memory, cfg.device)
    started = time.perf_counter()
    if str(cfg.backend) == "ctranslate2":
        translator = Translator.from_export(checkpoint, cfg.device, cfg.decode, cfg.ct2.compute_type, cfg.ct2.threads)
    else:
        translator = Translator.from_checkpoint(checkpoint, device=cfg.device, decode=cfg.decode)
    check_attention_settings(translator, settings)
    choose_direction(translator, settings)
    log.info("loaded %s on %s in %.1f s", translator.checkpoint_path, translator.device,
             time.perf_counter() - started)
    if interactive:
        Prompt(translator, settings).run()
        return
    try:
        with open_output(cfg) as out:  # output=FILE appears only once complete
            translate_stream(translator, lines, out, settings, progress=sys.stderr.isatty())
    except BrokenPipeError:  # e.g. `| head`: the reader left, which is not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    if cfg.output is not None:
        log.info("wrote %d translations to %s", len(lines), cfg.output)
