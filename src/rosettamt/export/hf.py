"""A rosettamt checkpoint as a stock Hugging Face transformers model (no custom code).

Which class expresses the model exactly:
  * post-norm, sinusoidal positions: MarianMTModel (any vocabulary and tying: Marian can share one
    embedding, or keep encoder, decoder and output tables apart).
  * pre-norm with final layer norms, sinusoidal positions: PegasusForConditionalGeneration.
  * pre-norm, learned positions: BlenderbotForConditionalGeneration (learned, no offset, no
    embedding layer norm).
Pegasus and Blenderbot share one token embedding between encoder and decoder, so a pre-norm model
needs a joint vocabulary with model.tie_all; the rest is refused with the reason (:func:`unsupported`).

Marian's and Pegasus' sinusoids are laid out in halves, [sin | cos], where rosettamt interleaves
them (PE[p, 2i] = sin, PE[p, 2i+1] = cos). Permuting the model dimension everywhere by
P = [0, 2, 4, ..., 1, 3, 5, ...] (embedding columns, LayerNorm gains and biases, the input columns of
every projection reading the residual stream and the output rows of every one writing it) turns
one table into the other and leaves the function unchanged: LayerNorm is permutation-equivariant
and each projection sees the same sums. The export checks the result numerically (check.py).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch

from rosettamt.config import Activation, DecodeConfig, LengthNorm, Norm, Positions, Strategy
from rosettamt.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from rosettamt.errors import UserError
from rosettamt.export.common import Source, require

CLASSES = {"marian": ("MarianConfig", "MarianMTModel"), "pegasus": ("PegasusConfig", "PegasusForConditionalGeneration"),
           "blenderbot": ("BlenderbotConfig", "BlenderbotForConditionalGeneration")}


def architecture(cfg: Any) -> Tuple[Optional[str], Optional[str]]:
    """(stock architecture, None) for a model transformers expresses exactly, else (None, the reason)."""
    from rosettamt.model.layers import head_sizes

    d_k, d_v = head_sizes(cfg)
    if d_k != d_v or d_k * cfg.n_heads != cfg.d_model:
        return None, (f"heads of d_k={d_k}, d_v={d_v} with d_model={cfg.d_model} and {cfg.n_heads} heads; "
                      "transformers' attention uses d_model / n_heads for both")
    if cfg.encoder_layers < 1 or cfg.decoder_layers < 1:
        return None, "a model without encoder or decoder layers"
    if cfg.norm == Norm.post:
        if cfg.positions == Positions.learned:
            return None, ("post-norm with learned positions: the stock post-norm classes with learned positions "
                          "(BART, mBART, BlenderbotSmall) add a layer norm on the embeddings")
        return "marian", None
    if not (cfg.joint_vocab and cfg.tie_all):
        return None, ("pre-norm with separate source and target embeddings: Pegasus and Blenderbot, the stock "
                      "pre-norm classes, share one embedding (needs a joint vocabulary and model.tie_all=true)")
    return ("pegasus" if cfg.positions == Positions.sinusoidal else "blenderbot"), None


def halves_permutation(d: int) -> torch.Tensor:
    """P with hf[..., j] = rosettamt[..., P[j]]: the interleaved sinusoid columns as [sin | cos] halves."""
    return torch.cat([torch.arange(0, d, 2), torch.arange(1, d, 2)])  # (d,)


def hf_config(source: Source, arch: str) -> Any:
    """The stock config: sizes, norm placement, embedding scale, ids and tying of this checkpoint."""
    transformers = require("transformers", "hf", "format=hf")
    cfg = source.cfg
    common = dict(d_model=cfg.d_model, encoder_layers=cfg.encoder_layers, decoder_layers=cfg.decoder_layers,
                  encoder_attention_heads=cfg.n_heads, decoder_attention_heads=cfg.n_heads,
                  encoder_ffn_dim=cfg.d_ff, decoder_ffn_dim=cfg.d_ff, max_position_embeddings=cfg.max_positions,
                  activation_function="relu" if cfg.activation == Activation.relu else "gelu",
                  scale_embedding=bool(cfg.scale_embedding), dropout=0.0, attention_dropout=0.0,
                  activation_dropout=0.0, pad_token_id=PAD_ID, bos_token_id=BOS_ID, eos_token_id=EOS_ID,
                  decoder_start_token_id=BOS_ID, forced_eos_token_id=EOS_ID, is_encoder_decoder=True,
                  tie_word_embeddings=bool(cfg.tie_output), vocab_size=cfg.src_vocab_size)
    if arch == "marian":
        common.update(decoder_vocab_size=cfg.tgt_vocab_size,
                      share_encoder_decoder_embeddings=bool(cfg.joint_vocab and cfg.tie_all))
    config_class = getattr(transformers, CLASSES[arch][0])
    return config_class(**common)


def hf_state(source: Source, arch: str) -> Dict[str, torch.Tensor]:
    """transformers parameter name -> tensor (the model dimension permuted for sinusoidal models)."""
    model, cfg = source.model, source.cfg
    perm = halves_permutation(cfg.d_model) if cfg.positions == Positions.sinusoidal else torch.arange(cfg.d_model)

    def rows(t: torch.Tensor) -> torch.Tensor:  # a vector or the output rows of a projection writing to D
        return t.detach().float()[perm].clone()

    def cols(t: torch.Tensor) -> torch.Tensor:  # the input columns of a projection reading from D
        return t.detach().float()[:, perm].clone()

    out: Dict[str, torch.Tensor] = {}

    def linear(name: str, w: torch.Tensor, b: torch.Tensor, reads: bool, writes: bool) -> None:
        w = w.detach().float()
        w = w[:, perm] if reads else w
        out[f"{name}.weight"] = (w[perm] if writes else w).clone()
        out[f"{name}.bias"] = (rows(b) if writes else b.detach().float().clone())

    def norm(name: str, ln: Any) -> None:
        out[f"{name}.weight"], out[f"{name}.bias"] = rows(ln.weight), rows(ln.bias)

    def attention(name: str, attn: Any) -> None:
        hk = attn.n_heads * attn.d_k
        w, b = attn.in_proj.weight, attn.in_proj.bias  # rows [W_q; W_k; W_v]
        for i, proj in enumerate(("q_proj", "k_proj", "v_proj")):
            linear(f"{name}.{proj}", w[i * hk:(i + 1) * hk], b[i * hk:(i + 1) * hk], reads=True, writes=False)
        linear(f"{name}.out_proj", attn.out_proj.weight, attn.out_proj.bias, reads=False, writes=True)

    def ffn(prefix: str, f: Any) -> None:
        linear(f"{prefix}.fc1", f.linear1.weight, f.linear1.bias, reads=True, writes=False)
        linear(f"{prefix}.fc2", f.linear2.weight, f.linear2.bias, reads=False, writes=True)

    for i, layer in enumerate(model.encoder):
        p = f"model.encoder.layers.{i}"
        attention(f"{p}.self_attn", layer.self_attn)
        norm(f"{p}.self_attn_layer_norm", layer.sub1.norm)
        ffn(p, layer.ffn)
        norm(f"{p}.final_layer_norm", layer.sub2.norm)
    for i, layer in enumerate(model.decoder):
        p = f"model.decoder.layers.{i}"
        attention(f"{p}.self_attn", layer.self_attn)
        norm(f"{p}.self_attn_layer_norm", layer.sub1.norm)
        attention(f"{p}.encoder_attn", layer.cross_attn)
        norm(f"{p}.encoder_attn_layer_norm", layer.sub2.norm)
        ffn(p, layer.ffn)
        norm(f"{p}.final_layer_norm", layer.sub3.norm)
    if cfg.norm == Norm.pre:
        norm("model.encoder.layer_norm", model.encoder_norm)
        norm("model.decoder.layer_norm", model.decoder_norm)
    src, tgt = cols(model.src_embed.weight), cols(model.tgt_embed.weight)  # (V, D)
    out["model.encoder.embed_tokens.weight"], out["model.decoder.embed_tokens.weight"] = src, tgt
    if cfg.joint_vocab and cfg.tie_all:
        out["model.shared.weight"] = tgt
    out["lm_head.weight"] = cols(model.output.weight)  # (V_tgt, D)
    out["final_logits_bias"] = torch.zeros(1, cfg.tgt_vocab_size)
    for side, table in (("encoder", model.src_pos), ("decoder", model.tgt_pos)):
        if table is not None:  # learned (Blenderbot); Marian and Pegasus make their sinusoids themselves
            out[f"model.{side}.embed_positions.weight"] = cols(table.weight)
    return out


def build_hf_model(source: Source) -> Tuple[Any, str]:
    """(the transformers model in eval mode with this checkpoint's weights, architecture name)."""
    transformers = require("transformers", "hf", "format=hf")
    arch, reason = architecture(source.cfg)
    if arch is None:
        raise UserError(f"format=hf cannot express this model exactly with a stock transformers class: {reason}; "
                        "format=ctranslate2 can")
    config = hf_config(source, arch)
    model = getattr(transformers, CLASSES[arch][1])(config).eval()
    state = hf_state(source, arch)
    own = model.state_dict()
    positions = {k for k in own if k.endswith("embed_positions.weight")}
    missing = sorted(k for k in own if k not in state and k not in positions)
    unexpected = sorted(k for k in state if k not in own)
    shapes = sorted(k for k in state if k in own and tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or shapes:  # a transformers version whose names moved: stop, do not guess
        raise UserError(f"format=hf: transformers {transformers.__version__} {CLASSES[arch][1]} does not match "
                        f"the converted weights (missing {missing[:3]}, unexpected {unexpected[:3]}, "
                        f"shape {shapes[:3]})")
    with torch.no_grad():
        for name, tensor in model.state_dict(keep_vars=True).items():
            if name in state:
                tensor.copy_(state[name])
    return model, arch


def generation_config(decode: DecodeConfig, cfg: Any) -> Tuple[Any, Optional[str]]:
    """(GenerationConfig that makes a plain generate() search like rosettamt-translate, a caveat or None).

    early_stopping=True is rosettamt's rule (a sentence ends with beam_size finished hypotheses);
    transformers divides by length**length_penalty with the length counting EOS, as rosettamt's L.
    """
    transformers = require("transformers", "hf", "format=hf")
    beam = decode.beam_size if decode.strategy == Strategy.beam else 1
    caveat = None
    if decode.length_norm == LengthNorm.none:
        penalty = 0.0
    elif decode.length_norm == LengthNorm.average:
        penalty = 1.0
    else:
        penalty = float(decode.length_penalty)
        if beam > 1 and penalty != 0:
            caveat = (f"rosettamt's GNMT length penalty ((5+L)/6)**{penalty} has no transformers form; "
                      f"generate() uses length**{penalty}. For identical beam search, decode with "
                      "decode.length_norm=average (length_penalty=1.0) or none (0.0)")
    config = transformers.GenerationConfig(
        decoder_start_token_id=BOS_ID, bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID,
        forced_eos_token_id=EOS_ID, num_beams=beam, do_sample=False, max_length=cfg.max_positions + 1,
        min_length=decode.min_len + 1, suppress_tokens=[PAD_ID, BOS_ID], num_return_sequences=1,
        **(dict(length_penalty=penalty, early_stopping=True) if beam > 1 else {}))  # beam-only flags
    return config, caveat
