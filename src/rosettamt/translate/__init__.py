"""Translation for people and for Python code: :class:`Translator`, text in, text out.

    from rosettamt.translate import Translator          # or: from rosettamt import Translator
    t = Translator.from_checkpoint("outputs/en_de")      # a run directory or a .pt file
    t.translate(["A man rides a bike."], beam_size=5)

Modules: translator.py (Translator: load once, clean and segment lines, search, detokenize),
nbest.py (Candidate, one n-best list per line), attention.py (the cross-attention behind a
translation, the layer/head checks). Text cleaning and sentence splitting are rosettamt.text;
the command line (prompt and pipe mode) is rosettamt.prompt; ``python -m rosettamt.translate``
runs rosettamt-translate.

Translator is imported on first use: it brings torch, which ``import rosettamt.translate``
(and the command's option checks) should not pay for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rosettamt.text import clean_text, split_sentences
from rosettamt.translate.nbest import Candidate

if TYPE_CHECKING:
    from rosettamt.translate.translator import Translator

__all__ = ["Candidate", "Translator", "clean_text", "split_sentences"]


def __getattr__(name: str) -> Any:
    if name == "Translator":
        from rosettamt.translate.translator import Translator

        globals()["Translator"] = Translator  # once is enough
        return Translator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
