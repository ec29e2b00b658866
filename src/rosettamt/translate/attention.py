"""Where the decoder looked: the cross-attention behind one translation, for heatmaps (viz.py).

The sentence is translated as usual (Translator.translate_with_attention); then the decoder
runs once more, teacher-forced on that output, with its attention weights asked for. The
layer and head checks live here too, the one place that says which the model has. torch and
the tokenizer are imported by the function that runs the model, so the checks stay cheap for
the command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Sequence, Union

from rosettamt.errors import UserError

if TYPE_CHECKING:
    import numpy as np
    import torch

EOS_PIECE = "</s>"


def check_attention_layer(layer: int, n_layers: int) -> None:
    """Reject a decoder layer the model lacks; negative numbers count from the last, as in Python."""
    if not -n_layers <= layer < n_layers:
        raise UserError(f"attention_layer={layer}: the model has {n_layers} decoder layers "
                        f"(0..{n_layers - 1}, or -1 for the last)")


def check_attention_head(head: Optional[int], n_heads: int) -> None:
    """Reject a head the model lacks; None (the mean over heads) is always fine."""
    if head is not None and not 0 <= head < n_heads:
        raise UserError(f"attention_head={head}: the model has {n_heads} heads (0..{n_heads - 1})")


def cross_attention(model: "torch.nn.Module", src_ids: Sequence[int], tgt_ids: Sequence[int],
                    layer: Optional[int], device: Union[str, "torch.device"] = "cpu") -> "np.ndarray":
    """Cross-attention of decoder layer ``layer`` while it produces ``tgt_ids`` + EOS from ``src_ids``.

    Ids are pieces without BOS/EOS. Returns an array (H, T_tgt + 1, T_src + 1): row t is the
    attention over the source (EOS included) while the decoder produced target token t
    (the last row: EOS); each row sums to 1. ``layer=None`` returns every decoder layer,
    (L, H, T_tgt + 1, T_src + 1), from the same one pass (the server's page lets readers switch).
    """
    import torch

    from rosettamt.data.tokenizer import BOS_ID, EOS_ID  # (brings sentencepiece and datasets)

    if layer is not None:
        check_attention_layer(layer, int(model.cfg.decoder_layers))
    src = torch.tensor([list(src_ids) + [EOS_ID]], dtype=torch.long, device=device)  # (1, S)
    src_mask = torch.ones_like(src, dtype=torch.bool)  # (1, S)
    tgt_in = torch.tensor([[BOS_ID] + list(tgt_ids)], dtype=torch.long, device=device)  # (1, T)
    with torch.inference_mode():
        memory = model.encode(src, src_mask)  # (1, S, D)
        cross = model.decode(tgt_in, memory, src_mask, need_weights=True).cross_attention
    if layer is None:
        return torch.stack([c[0] for c in cross]).float().cpu().numpy()  # L x (1, H, T, S) -> (L, H, T, S)
    return cross[layer][0].float().cpu().numpy()  # (1, H, T, S) -> (H, T, S)


def token_labels(pieces: List[str], ids: Sequence[int]) -> List[str]:
    """Axis labels for ids: their pieces + EOS, or the ids themselves should the two not line up
    (so labels always match the weights)."""
    if len(pieces) != len(ids):
        pieces = [str(i) for i in ids]
    return list(pieces) + [EOS_PIECE]
