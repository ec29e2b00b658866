"""Seq2SeqTransformer: the encoder-decoder of "Attention Is All You Need".

``encode`` and the decoder are separate so that search code composes them: encode a batch once,
then either ``decode`` whole prefixes (teacher forcing: training, attention plots, the uncached
baseline) or ``decode_step`` the new position only with a :class:`DecoderCache` from
:meth:`Seq2SeqTransformer.new_cache` (greedy and beam search). Both return a
:class:`DecoderOutput` (logits, and the cross-attention weights when asked for).
"""

from __future__ import annotations

import math
from typing import List, NamedTuple, Optional, Tuple

import torch
from torch import Tensor, nn

from rosettamt import speed
from rosettamt.config import MAX_POSITIONS, ModelConfig, Norm, Positions
from rosettamt.errors import UserError
from rosettamt.model.cache import DecoderCache, LayerCache
from rosettamt.model.layers import DecoderLayer, EncoderLayer, head_sizes


def sinusoidal_table(n: int, d: int) -> Tensor:
    """(n, d) table: PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(same angle)."""
    pos = torch.arange(n, dtype=torch.float32)[:, None]  # (n, 1)
    inv_freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))  # (ceil(d/2),)
    angle = pos * inv_freq  # (n, ceil(d/2))
    table = torch.zeros(n, d)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle[:, : d // 2])
    return table


def check_config(cfg: ModelConfig) -> None:
    """Reject a model config that cannot be built, naming the option."""
    if cfg.src_vocab_size <= 0 or cfg.tgt_vocab_size <= 0:
        raise UserError(
            f"model.src_vocab_size={cfg.src_vocab_size} / model.tgt_vocab_size={cfg.tgt_vocab_size}: "
            "both must be > 0 (they are filled in from the tokenizer)"
        )
    sizes = {"d_model": cfg.d_model, "n_heads": cfg.n_heads, "d_ff": cfg.d_ff, "max_positions": cfg.max_positions}
    bad = [f"model.{k}={v}" for k, v in sizes.items() if v <= 0]
    if bad or min(cfg.encoder_layers, cfg.decoder_layers) < 0:
        raise UserError(f"{', '.join(bad) or 'model.encoder_layers/decoder_layers'}: d_model, n_heads, d_ff and "
                        "max_positions must be > 0, layer counts >= 0")
    if cfg.max_positions > MAX_POSITIONS:  # the position table is built whole: fail here, not in an allocation
        raise UserError(f"model.max_positions={cfg.max_positions} is above the limit of {MAX_POSITIONS} positions")
    if cfg.d_k is None and cfg.d_model % cfg.n_heads != 0:
        raise UserError(f"model.d_model={cfg.d_model} is not divisible by model.n_heads={cfg.n_heads}; set model.d_k")
    if min(head_sizes(cfg)) <= 0:
        raise UserError(f"model.d_k / model.d_v must be > 0, got {head_sizes(cfg)}")
    if not 0 <= cfg.pad_id < min(cfg.src_vocab_size, cfg.tgt_vocab_size):
        raise UserError(f"model.pad_id={cfg.pad_id} is outside the vocabulary")
    if cfg.joint_vocab and cfg.tie_all and cfg.src_vocab_size != cfg.tgt_vocab_size:
        raise UserError(
            f"model.tie_all with a joint vocabulary needs src_vocab_size == tgt_vocab_size, got "
            f"{cfg.src_vocab_size} and {cfg.tgt_vocab_size}; set model.tie_all=false"
        )


class DecoderOutput(NamedTuple):
    """What the decoder methods return: logits, and the cross-attention when it was asked for."""

    logits: Tensor  # (N, T, V)
    cross_attention: Optional[List[Tensor]]  # per decoder layer (N, H, T, S), or None


def _key_mask(src_mask: Tensor) -> Tensor:
    return src_mask[:, None, None, :]  # (B, S) -> (B, 1, 1, S), broadcast over heads and queries


class Seq2SeqTransformer(nn.Module):
    """Embeddings + positions -> N encoder layers; embeddings + positions -> N decoder layers -> logits."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        check_config(cfg)
        self.cfg = cfg
        D, pad = cfg.d_model, cfg.pad_id
        self.tgt_embed = nn.Embedding(cfg.tgt_vocab_size, D, padding_idx=pad)
        shared = cfg.joint_vocab and cfg.tie_all
        self.src_embed = self.tgt_embed if shared else nn.Embedding(cfg.src_vocab_size, D, padding_idx=pad)
        # learned positions: one table per side; sinusoidal: one fixed table, not a parameter
        self.src_pos: Optional[nn.Embedding] = None
        self.tgt_pos: Optional[nn.Embedding] = None
        if cfg.positions == Positions.learned:
            self.src_pos = nn.Embedding(cfg.max_positions, D)
            self.tgt_pos = nn.Embedding(cfg.max_positions, D)
        else:
            self.register_buffer("pos_table", sinusoidal_table(cfg.max_positions, D), persistent=False)
        self.embed_scale = math.sqrt(D) if cfg.scale_embedding else 1.0
        self.dropout = nn.Dropout(cfg.dropout)
        self.encoder = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.encoder_layers))
        self.decoder = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.decoder_layers))
        # Pre-norm leaves the residual stream un-normalised: one final LayerNorm per stack.
        pre = cfg.norm == Norm.pre
        self.encoder_norm = nn.LayerNorm(D) if pre else nn.Identity()
        self.decoder_norm = nn.LayerNorm(D) if pre else nn.Identity()
        self.output = nn.Linear(D, cfg.tgt_vocab_size, bias=False)
        tables = [self.tgt_embed, self.output] + ([] if shared else [self.src_embed])
        tables += [self.src_pos, self.tgt_pos] if self.src_pos is not None else []
        for table in tables:
            nn.init.normal_(table.weight, mean=0.0, std=D**-0.5)
        with torch.no_grad():
            self.src_embed.weight[pad].zero_()
            self.tgt_embed.weight[pad].zero_()
        if cfg.tie_output:
            self.output.weight = self.tgt_embed.weight

    def _embed(self, tokens: Tensor, embed: nn.Embedding, pos: Optional[nn.Embedding], offset: int) -> Tensor:
        """Scaled token embeddings + positions offset..offset+T-1, then dropout: (B, T) -> (B, T, D)."""
        T = tokens.shape[1]
        end = offset + T
        if pos is not None:
            if end > self.cfg.max_positions:
                raise UserError(f"sequence of {end} tokens is longer than model.max_positions={self.cfg.max_positions}")
            positions = pos(torch.arange(offset, end, device=tokens.device))  # (T, D)
        elif end <= self.pos_table.shape[0]:
            positions = self.pos_table[offset:end]  # (T, D)
        else:  # longer than the precomputed table: sinusoids extend to any length
            positions = sinusoidal_table(end, self.cfg.d_model)[offset:].to(self.pos_table)  # (T, D)
        x = embed(tokens) * self.embed_scale + positions
        return self.dropout(x) if self.training else x

    def encode(self, src: Tensor, src_mask: Tensor) -> Tensor:
        """src (B, S) token ids, src_mask (B, S) True = real token -> memory (B, S, D)."""
        x = self._embed(src, self.src_embed, self.src_pos, 0)
        mask = _key_mask(src_mask)
        for layer in self.encoder:
            x = layer(x, mask)
        return self.encoder_norm(x)

    def decode(self, tgt: Tensor, memory: Tensor, src_mask: Tensor, need_weights: bool = False) -> DecoderOutput:
        """Teacher-forced decoding of whole prefixes: tgt (N, T) ids, memory (N, S, D), src_mask (N, S)
        -> logits (N, T, V) (+ the cross-attention (N, H, T, S) of every layer when need_weights).

        Each position sees itself and the positions before it (causal self-attention).
        """
        x = self._embed(tgt, self.tgt_embed, self.tgt_pos, 0)  # (N, T, D)
        x, weights = self._decoder(x, memory, _key_mask(src_mask), [None] * len(self.decoder), None, need_weights)
        return DecoderOutput(self.output(self.decoder_norm(x)), weights)

    def decode_step(self, tgt: Tensor, cache: DecoderCache, need_weights: bool = False) -> DecoderOutput:
        """Cached decoding of new positions: tgt (N, T_new) ids, usually T_new = 1, where
        N = cache.batch_size * cache.beam_size (rows sentence-major, row = b * k + j)
        -> logits (N, T_new, V) (+ cross-attention (N, H, T_new, S) per layer when need_weights).

        Positions continue from cache.length; the cache holds the encoder side (cross-attention
        K/V and source mask) and grows by T_new self-attention positions.
        """
        N, T = tgt.shape
        if N != cache.batch_size * cache.beam_size:
            raise ValueError(f"decode_step: {N} target rows, but the cache holds "
                             f"{cache.batch_size} sentences x beam_size {cache.beam_size}")
        offset = cache.length
        x = self._embed(tgt, self.tgt_embed, self.tgt_pos, offset)  # (N, T_new, D)
        self_mask = None
        if T > 1:  # new position i (absolute offset + i) sees cached and new positions 0..offset+i
            new = torch.arange(offset, offset + T, device=tgt.device)[:, None]  # (T, 1)
            self_mask = torch.arange(offset + T, device=tgt.device)[None, :] <= new  # (T, offset+T)
        # no_pad_mask: a batch without padding (always at batch 1) needs no cross-attention mask
        unpadded = speed.on("no_pad_mask") and bool(cache.src_mask.all())
        key_mask = None if unpadded else _key_mask(cache.src_mask)  # (B, 1, 1, S)
        x, weights = self._decoder(x, None, key_mask, list(cache.layers), self_mask, need_weights)
        cache.length += T
        return DecoderOutput(self._output_step(self.decoder_norm(x)), weights)

    def train(self, mode: bool = True) -> "Seq2SeqTransformer":
        """Also drops ``output_t``'s transposed copy: fused AdamW updates weights in place without
        bumping their version counter, so a mode switch (validation starts with ``eval()``) is
        where a copy made before the last optimizer steps must go."""
        self._output_t_key = None
        return super().train(mode)

    def _output_step(self, h: Tensor) -> Tensor:
        """The output projection of a decoding step, h (N, T, D) -> logits (N, T, V).

        With the ``output_t`` speed switch (rosettamt.speed), outside autograd: a matmul with a
        transposed copy of the weight (D, V), kept until the weight changes. For the few rows of a
        step (batch 1: k rows) the CPU GEMM is about twice as fast with that layout than with
        F.linear's transposed view of the (V, D) weight; for many rows it makes no difference.
        """
        weight = getattr(self.output, "weight", None)
        if not (speed.on("output_t") and isinstance(weight, Tensor)) or torch.is_grad_enabled():
            return self.output(h)
        key = (weight.data_ptr(), weight._version, weight.dtype, weight.device)
        if getattr(self, "_output_t_key", None) != key:  # new weights (training, .to()): copy again
            self._output_t, self._output_t_key = weight.detach().t().contiguous(), key  # (D, V)
        return torch.matmul(h, self._output_t)  # (N, T, D) @ (D, V)

    def _decoder(self, x: Tensor, memory: Optional[Tensor], key_mask: Tensor,
                 layer_caches: List[Optional[LayerCache]], self_mask: Optional[Tensor],
                 need_weights: bool) -> Tuple[Tensor, Optional[List[Tensor]]]:
        """The decoder layers over embedded targets x (N, T, D); weights per layer when asked."""
        weights: List[Tensor] = []
        for layer, layer_cache in zip(self.decoder, layer_caches):
            x, w = layer(x, memory, key_mask, layer_cache, self_mask, need_weights)
            if w is not None:
                weights.append(w)
        return x, (weights if need_weights else None)

    def forward(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor, rows: Optional[Tensor] = None) -> Tensor:
        """Training: teacher-forced logits (B, T, V); with rows (K,) int64, flat indices into the
        B * T positions, only those positions are normalised and projected: logits (K, V).

        Training passes the non-padding positions: the output projection is the largest matmul
        of a small model, and padding rows would be wasted work.
        """
        memory = self.encode(src, src_mask)
        if rows is None:
            return self.decode(tgt_in, memory, src_mask).logits
        x = self._embed(tgt_in, self.tgt_embed, self.tgt_pos, 0)  # (B, T, D)
        x, _ = self._decoder(x, memory, _key_mask(src_mask), [None] * len(self.decoder), None, False)
        x = x.reshape(-1, x.shape[-1]).index_select(0, rows)  # (B*T, D) -> (K, D)
        return self.output(self.decoder_norm(x))  # (K, V)

    def new_cache(self, memory: Tensor, src_mask: Tensor, beam_size: int = 1) -> DecoderCache:
        """An empty cache for B sentences x beam_size rows; cross K/V projected once, per sentence."""
        B = memory.shape[0]
        N = B * beam_size
        layers = []
        for layer in self.decoder:
            attn = layer.self_attn
            cross_k, cross_v = layer.cross_attn.project_kv(memory)  # (B, H, S, d_k), (B, H, S, d_v)
            # empty self-attention K/V, in the projections' dtype (bf16 under autocast)
            self_k = cross_k.new_empty(N, attn.n_heads, 0, attn.d_k)  # (B*k, H, 0, d_k)
            self_v = cross_v.new_empty(N, attn.n_heads, 0, attn.d_v)  # (B*k, H, 0, d_v)
            layers.append(LayerCache(cross_k, cross_v, self_k, self_v))
        return DecoderCache(beam_size=beam_size, length=0, layers=layers, src_mask=src_mask)


def count_parameters(model: nn.Module) -> int:
    """Trainable numbers in the model; a tied weight counts once."""
    return sum(p.numel() for p in model.parameters())


def expected_parameters(cfg: ModelConfig) -> int:
    """The parameter count worked out by hand from the config (checks the model against the paper)."""
    D, H, F = cfg.d_model, cfg.n_heads, cfg.d_ff
    d_k, d_v = head_sizes(cfg)
    attention = D * H * (2 * d_k + d_v) + H * (2 * d_k + d_v) + H * d_v * D + D  # W_q,W_k,W_v,W_o + biases
    ffn = D * F + F + F * D + D
    norm = 2 * D  # gain and bias
    encoder = cfg.encoder_layers * (attention + ffn + 2 * norm)
    decoder = cfg.decoder_layers * (2 * attention + ffn + 3 * norm)
    final_norms = 2 * norm if cfg.norm == Norm.pre else 0
    embeddings = cfg.tgt_vocab_size * D
    if not (cfg.joint_vocab and cfg.tie_all):
        embeddings += cfg.src_vocab_size * D
    if not cfg.tie_output:
        embeddings += cfg.tgt_vocab_size * D
    positions = 2 * cfg.max_positions * D if cfg.positions == Positions.learned else 0
    return encoder + decoder + final_norms + embeddings + positions
