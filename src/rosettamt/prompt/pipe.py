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
        # stdout is the same with attention on or off: a plot shows a long line's first segment only
        results = translator.translate(block, beam_size=settings.beam_size, nbest=settings.nbest,
                                       progress=progress, **settings.direction)
        rows: List[str] = []
        for i, line in enumerate(block):
            number = start + i + 1
            if plotter is not None and clean_text(line):  # an empty line has nothing to plot
                _, path, view = plotter(line)
                print(f"line {number}: attention plot {path}", file=sys.stderr)
                if sys.stderr.isatty():
                    print(view, file=sys.stderr)
            rows.extend(format_nbest(number, results[i]) if settings.nbest > 1 else [results[i]])
        out.write("".join(row + "\n" for row in rows))
        out.flush()
