"""The encoder-decoder Transformer: ``Seq2SeqTransformer(cfg)`` with ``encode``/``decode`` and a decoding cache.

``decode(tgt, memory, src_mask, cache=None, need_weights=False)`` returns logits (N, T, V), or
``(logits, [cross-attention (N, H, T, S) per decoder layer])`` when ``need_weights``. Without a
cache tgt is the whole prefix; with one (``new_cache(memory, src_mask, beam_size)``) it is only
the new positions, rows sentence-major (row = b * k + j). See model/cache.py for the cache.
"""

from rosettamt.model.attention import MultiHeadAttention
from rosettamt.model.cache import DecoderCache, LayerCache
from rosettamt.model.layers import DecoderLayer, EncoderLayer, FeedForward, head_sizes
from rosettamt.model.transformer import (
    Seq2SeqTransformer,
    check_config,
    count_parameters,
    expected_parameters,
    sinusoidal_table,
)

__all__ = [
    "DecoderCache",
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
