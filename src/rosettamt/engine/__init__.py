"""Engines: what searches the target ids for a list of source ids, behind one small interface.

The Translator and the evaluation clean, segment, tokenize and detokenize; an engine only
searches. Two engines share that front end, so files, n-best lists and BLEU reports are the same
whichever searches:

    NativeEngine(model, device)              rosettamt's own greedy/beam search (rosettamt.search)
    CT2Engine.load(dir, device, compute_type, threads)
                                             a CTranslate2 export (rosettamt-export format=ctranslate2)

Modules: base.py (the Engine interface, the backend names), native.py, ct2.py (the CTranslate2
engine), ct2_options.py (rosettamt's decode options as CTranslate2's, or why they cannot be).
"""

from rosettamt.engine.base import BACKENDS, Engine

__all__ = ["BACKENDS", "Engine"]
