"""The encoder-decoder Transformer: ``Seq2SeqTransformer(cfg)`` with ``encode``, ``decode``, ``decode_step``.

``decode(tgt, memory, src_mask, need_weights=False)`` runs whole prefixes (teacher forcing);
``decode_step(tgt_new, cache, need_weights=False)`` runs only new positions against a
``new_cache(memory, src_mask, beam_size)`` (rows sentence-major, row = b * k + j; see cache.py).
Both return ``DecoderOutput(logits (N, T, V), cross_attention)``, the weights (N, H, T, S) per
decoder layer when ``need_weights``, else None.
"""

from rosettamt.model.attention import MultiHeadAttention
from rosettamt.model.cache import DecoderCache, LayerCache
from rosettamt.model.layers import DecoderLayer, EncoderLayer, FeedForward, head_sizes
from rosettamt.model.transformer import (
    DecoderOutput,
    Seq2SeqTransformer,
    check_config,
    count_parameters,
    expected_parameters,
    sinusoidal_table,
)

__all__ = [
    "DecoderCache",
    "DecoderOutput",
    "DecoderLayer",
    "EncoderLayer",
    "FeedForward",
    "LayerCache",
    "MultiHeadAttention",
    "Seq2SeqTransformer",
    "check_config",
    "count_parameters",
    "expected_parameters",
    "head_sizes",
    "sinusoidal_table",
]
