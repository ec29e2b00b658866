"""rosettamt-translate's front end: an interactive prompt on a terminal, a filter on pipes and files.

stdout carries translations and nothing else (the prompt's own chatter, warnings and plot
paths go to stderr), so ``rosettamt-translate ... < in.txt > out.txt`` always gives one output
line per input line, in order. Input bytes that are not UTF-8 are replaced (U+FFFD) with one
warning, never a crash. The translating itself is rosettamt.translate.Translator.

Modules: command.py (``run``: options and input checked, the model loaded once, then prompt or
pipe), settings.py (what the ':' commands change), streams.py (bytes to lines, the output
stream, n-best rows), pipe.py (pipe mode), interactive.py (the prompt), plots.py (heatmaps).
Importing this package does not import torch.
"""

from rosettamt.prompt.command import checkpoint_from_config, run
from rosettamt.prompt.interactive import Prompt
from rosettamt.prompt.pipe import translate_stream
from rosettamt.prompt.plots import AttentionPlotter, attention_dir, check_attention_settings
from rosettamt.prompt.settings import Settings
from rosettamt.prompt.streams import bytes_to_lines, format_nbest

__all__ = ["AttentionPlotter", "Prompt", "Settings", "attention_dir", "bytes_to_lines", "check_attention_settings",
           "checkpoint_from_config", "format_nbest", "run", "translate_stream"]
