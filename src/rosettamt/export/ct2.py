"""A rosettamt checkpoint as a CTranslate2 model, filled in through CTranslate2's own model-spec API.

The spec is CTranslate2's ``TransformerSpec`` (the one its OpenNMT-py, fairseq and Marian
converters fill): one fused Q|K|V projection for self-attention, Q and a fused K|V projection for
cross-attention, as rosettamt stores them. rosettamt's position table (its interleaved sinusoids or
the learned tables) is written into the spec, so CTranslate2's own table, laid out differently,
is never used. What CTranslate2 cannot compute the same way is refused with the reason
(:func:`unsupported`). The result runs with ``ctranslate2.Translator(DIR).translate_batch(pieces)``:
the source EOS is added by CTranslate2 (``add_source_eos``) and the decoder starts from ``<s>``.

A multilingual model keeps every direction: a caller starts each source with the target's tag
piece (``["<2fr>", "▁A", ...]``), as rosettamt's Translator (backend=ctranslate2) does. An export
of one direction (``Source.baked``, format=argos) makes CTranslate2 add that tag itself: the tag
is the model's source "BOS" (``add_source_bos``), while the decoder still starts from ``<s>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import numpy as np

from rosettamt.config import Activation, Norm, Positions
from rosettamt.data.tokenizer import BOS_ID, EOS_ID, UNK_ID
from rosettamt.errors import UserError
from rosettamt.export.common import Source, require, spm_pieces, write_meta
from rosettamt.langs import tag

# CTranslate2 computes its sinusoids for any length; a table this long keeps rosettamt's own values
# well past the positions a model is trained on (rosettamt extends its sinusoids the same way).
MIN_SINUSOID_ROWS = 1024
QUANTIZATIONS = ("float32", "int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16", "float16",
                 "bfloat16")


def layer_norm_eps(model: Any) -> float:
    """The epsilon every LayerNorm of the model uses; CTranslate2 has one value for the whole model."""
    import torch

    eps = {m.eps for m in model.modules() if isinstance(m, torch.nn.LayerNorm)}
    if len(eps) > 1:
        raise UserError(f"format=ctranslate2: the model's layer norms use different epsilons {sorted(eps)}; "
                        "CTranslate2 has one layer_norm_epsilon per model")
    return eps.pop() if eps else 1e-5


def unsupported(cfg: Any) -> Optional[str]:
    """Why CTranslate2 cannot run this model exactly, or None when it can."""
    from rosettamt.model.layers import head_sizes

    d_k, d_v = head_sizes(cfg)
    if d_k != d_v:
        return (f"model.d_k={d_k} and model.d_v={d_v} differ; CTranslate2 attention has one head size for "
                "queries, keys and values")
    if cfg.activation not in (Activation.relu, Activation.gelu):
        return f"model.activation={cfg.activation} has no CTranslate2 equivalent"
    if cfg.encoder_layers < 1 or cfg.decoder_layers < 1:
        return "a model without encoder or decoder layers has no CTranslate2 Transformer spec"
    return None


def build_spec(source: Source) -> Any:
    """The filled-in, validated ``ctranslate2.specs.TransformerSpec`` of the checkpoint."""
    require("ctranslate2", "ctranslate2", "format=ctranslate2")
    from ctranslate2.specs import common_spec, transformer_spec

    cfg, model = source.cfg, source.model
    reason = unsupported(cfg)
    if reason:
        raise UserError(f"format=ctranslate2 cannot express this model: {reason}")
    d_k = model.encoder[0].self_attn.d_k
    head_dim = None if d_k * cfg.n_heads == cfg.d_model else d_k  # only written when it is not D / H
    pre = cfg.norm == Norm.pre
    act = common_spec.Activation.RELU if cfg.activation == Activation.relu else common_spec.Activation.GELU
    encoder = transformer_spec.TransformerEncoderSpec(cfg.encoder_layers, cfg.n_heads, pre_norm=pre,
                                                      activation=act, head_dim=head_dim)
    decoder = transformer_spec.TransformerDecoderSpec(cfg.decoder_layers, cfg.n_heads, pre_norm=pre,
                                                      activation=act, head_dim=head_dim)
    spec = transformer_spec.TransformerSpec(encoder, decoder)

    scale = bool(cfg.scale_embedding)  # True: CTranslate2 multiplies by sqrt(d_model), as rosettamt does
    encoder.scale_embeddings = decoder.scale_embeddings = scale
    encoder.embeddings[0].weight = _np(model.src_embed.weight)
    decoder.embeddings.weight = _np(model.tgt_embed.weight)
    decoder.projection.weight = _np(model.output.weight)  # tied or not: equal arrays are stored once
    encoder.position_encodings.encodings = _positions(model, "src")
    decoder.position_encodings.encodings = _positions(model, "tgt")
    for layer_spec, layer in zip(encoder.layer, model.encoder):
        _attention(layer_spec.self_attention, layer.self_attn, layer.sub1.norm, fused_qkv=True)
        _ffn(layer_spec.ffn, layer.ffn, layer.sub2.norm)
    for layer_spec, layer in zip(decoder.layer, model.decoder):
        _attention(layer_spec.self_attention, layer.self_attn, layer.sub1.norm, fused_qkv=True)
        _attention(layer_spec.attention, layer.cross_attn, layer.sub2.norm, fused_qkv=False)
        _ffn(layer_spec.ffn, layer.ffn, layer.sub3.norm)
    if pre:
        _norm(encoder.layer_norm, model.encoder_norm)
        _norm(decoder.layer_norm, model.decoder_norm)

    state = source.tokenizer.state_dict()
    src_vocab = spm_pieces(bytes(state["src_model"]))
    tgt_vocab = src_vocab if state["joint"] else spm_pieces(bytes(state["tgt_model"]))
    spec.register_source_vocabulary(src_vocab)
    spec.register_target_vocabulary(tgt_vocab)
    config = spec.config
    config.unk_token, config.bos_token, config.eos_token = tgt_vocab[UNK_ID], tgt_vocab[BOS_ID], tgt_vocab[EOS_ID]
    config.decoder_start_token = tgt_vocab[BOS_ID]  # rosettamt's decoder input starts with BOS
    config.add_source_bos, config.add_source_eos = False, True  # source = pieces + EOS, as in training
    if source.baked is not None and source.directions.multilingual:  # source = tag + pieces + EOS
        config.bos_token, config.add_source_bos = tag(source.baked[1]), True
    config.layer_norm_epsilon = layer_norm_eps(model)
    try:
        spec.validate()
    except ValueError as err:
        raise UserError(f"format=ctranslate2: the filled spec does not validate: {err}") from None
    return spec


def export_ctranslate2(source: Source, folder: Path, quantization: str = "float32") -> List[str]:
    """Write the CTranslate2 model (model.bin, config.json, vocabularies), the SentencePiece model(s)
    and rosettamt.json into ``folder``; returns the written file names."""
    if quantization not in QUANTIZATIONS:
        raise UserError(f"quantization={quantization}: CTranslate2 accepts {', '.join(QUANTIZATIONS)}")
    spec = build_spec(source)
    spec.optimize(quantization=quantization)
    spec.save(str(folder))
    write_meta(folder, source, "ctranslate2", {"quantization": quantization})
    return sorted(p.name for p in Path(folder).iterdir())


def _np(t: Any) -> np.ndarray:
    return t.detach().float().cpu().numpy().copy()


def _positions(model: Any, side: str) -> np.ndarray:
    """The table added to side's embeddings, row p = position p: learned, or rosettamt's sinusoids."""
    from rosettamt.model.transformer import sinusoidal_table

    cfg = model.cfg
    if cfg.positions == Positions.learned:
        return _np((model.src_pos if side == "src" else model.tgt_pos).weight)  # (max_positions, D)
    return _np(sinusoidal_table(max(cfg.max_positions, MIN_SINUSOID_ROWS), cfg.d_model))  # (N, D)


def _linear(spec: Any, weight: Any, bias: Any) -> None:
    spec.weight = _np(weight)
    spec.bias = _np(bias)


def _norm(spec: Any, norm: Any) -> None:
    spec.gamma = _np(norm.weight)
    spec.beta = _np(norm.bias)


def _attention(spec: Any, attn: Any, norm: Any, fused_qkv: bool) -> None:
    """rosettamt's in_proj rows are [W_q; W_k; W_v]: self-attention takes them fused, cross-attention
    splits off W_q (queries from the decoder) from W_k|W_v (keys and values from the encoder)."""
    w, b = attn.in_proj.weight, attn.in_proj.bias
    if fused_qkv:
        _linear(spec.linear[0], w, b)
    else:
        hk = attn.n_heads * attn.d_k
        _linear(spec.linear[0], w[:hk], b[:hk])
        _linear(spec.linear[1], w[hk:], b[hk:])
    _linear(spec.linear[-1], attn.out_proj.weight, attn.out_proj.bias)
    _norm(spec.layer_norm, norm)


def _ffn(spec: Any, ffn: Any, norm: Any) -> None:
    _linear(spec.linear_0, ffn.linear1.weight, ffn.linear1.bias)
    _linear(spec.linear_1, ffn.linear2.weight, ffn.linear2.bias)
    _norm(spec.layer_norm, norm)
