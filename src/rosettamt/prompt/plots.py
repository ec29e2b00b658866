"""Attention heatmaps for rosettamt-translate: where they go, and one plot (+ text view) per sentence."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional, Tuple

from rosettamt.errors import UserError
from rosettamt.prompt.settings import Settings
from rosettamt.translate.attention import check_attention_head, check_attention_layer

if TYPE_CHECKING:
    from rosettamt.translate.translator import Translator


def attention_dir(checkpoint: Optional[Path]) -> Path:
    """Where the heatmaps of a checkpoint go: <run dir>/attention."""
    if checkpoint is None:
        return Path.cwd() / "attention"
    folder = checkpoint.resolve().parent
    return (folder.parent if folder.name == "checkpoints" else folder) / "attention"


def check_attention_settings(translator: "Translator", settings: Settings) -> None:
    """Reject a layer or head the model does not have, naming the option."""
    check_attention_layer(settings.layer, translator.n_decoder_layers)
    check_attention_head(settings.head, translator.n_heads)


class AttentionPlotter:
    """Saves <run dir>/attention/NNN.png for a sentence and returns the text view.

    The run dir is the checkpoint's folder, or its parent for a run's ``checkpoints/`` folder.
    """

    def __init__(self, translator: "Translator", settings: Settings) -> None:
        self.translator = translator
        self.settings = settings
        self.directory = attention_dir(translator.checkpoint_path)

    def __call__(self, sentence: str) -> Tuple[str, Path, str]:
        """(translation, png path, text view) for one sentence."""
        from rosettamt import viz

        s = self.settings
        text, src, tgt, weights = self.translator.translate_with_attention(
            sentence, layer=s.layer, beam_size=s.beam_size, **s.direction)
        layer = s.layer % self.translator.n_decoder_layers
        which = "all heads" if s.grid else ("mean over heads" if s.head is None else f"head {s.head}")
        title = f"cross-attention, decoder layer {layer}, {which}"
        try:
            path = viz.plot_attention(src, tgt, weights, viz.next_plot_path(self.directory),
                                      head=s.head, grid=s.grid, title=title)
        except OSError as err:
            raise UserError(f"cannot write attention plots to {self.directory}: {err.strerror}") from None
        return text, path, viz.text_view(src, tgt, viz.select_heads(weights, s.head))
