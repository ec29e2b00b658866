"""Exports: a rosettamt checkpoint in other engines' formats, proven to translate the same.

    rosettamt-export checkpoint=PATH format=ctranslate2 output=DIR [quantization=int8]
    rosettamt-export run_dir=DIR format=hf output=DIR
    rosettamt-export run_dir=DIR format=argos output=DIR     # DIR/translate-<src>_<tgt>.argosmodel

Modules: command.py (the command: options, checkpoint, staged folder, checks), common.py (loading,
the staged output folder, optional packages, SentencePiece files, rosettamt.json), ct2.py
(CTranslate2 through its model-spec API), hf.py (the stock transformers class and its weights),
hf_files.py (the Hugging Face folder: safetensors, generation defaults, tokenizer), card.py (the
model card), argos.py (the .argosmodel package), check.py (the equality checks). Running a
CTranslate2 export from rosettamt (backend=ctranslate2) is rosettamt.engine.

Importing this package imports neither torch nor the optional engines.
"""

from rosettamt.export.command import export

__all__ = ["export"]
