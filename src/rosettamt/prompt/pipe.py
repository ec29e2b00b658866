"""Pipe mode of rosettamt-translate: every input line translated, one output line each, in order.

stdout carries translations and nothing else; attention plot paths and views go to stderr.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, List, TextIO

from rosettamt.prompt.plots import AttentionPlotter
from rosettamt.prompt.settings import Settings
from rosettamt.prompt.streams import format_nbest
from rosettamt.text import clean_text

if TYPE_CHECKING:
    from rosettamt.translate.translator import Translator

BLOCK_LINES = 2000  # lines translated (and written) together


def translate_stream(translator: "Translator", lines: List[str], out: TextIO, settings: Settings,
                     progress: bool = False) -> None:
    """Translate all lines in length-sorted blocks and write them to ``out`` in input order."""
    plotter = AttentionPlotter(translator, settings) if settings.show_attention else None
    for start in range(0, len(lines), BLOCK_LINES):
        block = lines[start:start + BLOCK_LINES]
        if plotter is None or settings.nbest > 1:
            results = translator.translate(block, beam_size=settings.beam_size, nbest=settings.nbest,
                                           progress=progress, **settings.direction)
        else:
            results = []
        rows: List[str] = []
        for i, line in enumerate(block):
            number = start + i + 1
            if plotter is not None and settings.nbest == 1 and not clean_text(line):
                results.append("")  # nothing to plot
            elif plotter is not None:
                text, path, view = plotter(line)
                print(f"line {number}: attention plot {path}", file=sys.stderr)
                if sys.stderr.isatty():
                    print(view, file=sys.stderr)
                if settings.nbest == 1:
                    results.append(text)
            result = results[i]
            rows.extend(format_nbest(number, result) if settings.nbest > 1 else [result])
        out.write("".join(row + "\n" for row in rows))
        out.flush()
