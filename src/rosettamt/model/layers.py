"""The position-wise feed-forward network and the encoder and decoder layers.

Each sub-layer is wrapped in a residual connection with dropout and a layer norm, either
pre-norm, ``x + Dropout(f(LN(x)))`` (the default: trains without a long warmup), or the
paper's post-norm, ``LN(x + Dropout(f(x)))``.
"""

from __future__ import annotations

from typing import Callable, Optional, Tuple

from torch import Tensor, nn

from rosettamt.config import Activation, ModelConfig, Norm
from rosettamt.model.attention import MultiHeadAttention
from rosettamt.model.cache import LayerCache


def head_sizes(cfg: ModelConfig) -> Tuple[int, int]:
    """(d_k, d_v) per head: d_k defaults to d_model / n_heads, d_v to d_k."""
    d_k = cfg.d_k if cfg.d_k is not None else cfg.d_model // cfg.n_heads
    d_v = cfg.d_v if cfg.d_v is not None else d_k
    return d_k, d_v


def _attention(cfg: ModelConfig) -> MultiHeadAttention:
    d_k, d_v = head_sizes(cfg)
    return MultiHeadAttention(cfg.d_model, cfg.n_heads, d_k, d_v, cfg.attn_dropout)


class FeedForward(nn.Module):
    """FFN(x) = W_2 act(W_1 x + b_1) + b_2, applied to every position alike."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.linear1 = nn.Linear(cfg.d_model, cfg.d_ff)
        self.linear2 = nn.Linear(cfg.d_ff, cfg.d_model)
        # in place: W_1 x + b_1 is a fresh buffer that its backward does not need
        self.act = nn.GELU() if cfg.activation == Activation.gelu else nn.ReLU(inplace=True)
        self.act_dropout = nn.Dropout(cfg.act_dropout)
        for lin in (self.linear1, self.linear2):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, x: Tensor) -> Tensor:
        h = self.act(self.linear1(x))
        return self.linear2(self.act_dropout(h) if self.training else h)  # eval: no module call for nothing


class _Residual(nn.Module):
    """Residual connection + dropout + layer norm around one sub-layer, pre- or post-norm."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(cfg.d_model)
        self.dropout = nn.Dropout(cfg.dropout)
        self.pre_norm = cfg.norm == Norm.pre

    def forward(self, x: Tensor, sublayer: Callable[[Tensor], Tensor]) -> Tensor:
        if self.pre_norm:
            return x + self._drop(sublayer(self.norm(x)))
        return self.norm(x + self._drop(sublayer(x)))

    def _drop(self, y: Tensor) -> Tensor:
        # dropout is the identity in eval mode: skipping the module call saves ~10 us a call, which
        # adds up over the ~18 calls of every decoding step (per-step overhead matters at batch 1)
        return self.dropout(y) if self.training else y


class EncoderLayer(nn.Module):
    """Self-attention over the source, then the feed-forward network."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.self_attn = _attention(cfg)
        self.ffn = FeedForward(cfg)
        self.sub1, self.sub2 = _Residual(cfg), _Residual(cfg)

    def forward(self, x: Tensor, src_mask: Optional[Tensor]) -> Tensor:
        """x (B, S, D); src_mask (B, 1, 1, S) True = real token, or None when nothing is padded."""
        x = self.sub1(x, lambda h: self.self_attn(h, mask=src_mask)[0])
        return self.sub2(x, self.ffn)


class DecoderLayer(nn.Module):
    """Masked self-attention -> cross-attention over the encoder output -> feed-forward."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.self_attn = _attention(cfg)
        self.cross_attn = _attention(cfg)
        self.ffn = FeedForward(cfg)
        self.sub1, self.sub2, self.sub3 = _Residual(cfg), _Residual(cfg), _Residual(cfg)

    def forward(
        self,
        x: Tensor,
        memory: Optional[Tensor],
        src_mask: Optional[Tensor],
        cache: Optional[LayerCache] = None,
        self_mask: Optional[Tensor] = None,
        need_weights: bool = False,
    ) -> Tuple[Tensor, Optional[Tensor]]:
        """x (N, T, D) -> (N, T, D) and the cross-attention weights (N, H, T, S) if asked.

        Without a cache, N == B, x is the whole prefix and self-attention is causal.
        With a cache, x holds the new positions only; memory is unused (cache.cross_k/v
        replace it) and self_mask (T, t+T) says which cached positions each new one sees
        (None: all of them, the usual single-step case).
        """
        x = self.sub1(x, lambda h: self._self_attention(h, cache, self_mask))
        weights = None

        def cross(h: Tensor) -> Tensor:
            nonlocal weights
            out, weights = self._cross_attention(h, memory, src_mask, cache, need_weights)
            return out

        x = self.sub2(x, cross)
        return self.sub3(x, self.ffn), weights

    def _self_attention(self, h: Tensor, cache: Optional[LayerCache], self_mask: Optional[Tensor]) -> Tensor:
        if cache is None:
            return self.self_attn(h, is_causal=True)[0]
        q, k, v = self.self_attn.project_qkv(h)  # (N, H, T, d)
        cache.append(k, v)  # self_k / self_v: (N, H, t+T, d)
        return self.self_attn.attend(q, cache.self_k, cache.self_v, mask=self_mask)[0]

    def _cross_attention(
        self,
        h: Tensor,
        memory: Optional[Tensor],
        src_mask: Optional[Tensor],
        cache: Optional[LayerCache],
        need_weights: bool,
    ) -> Tuple[Tensor, Optional[Tensor]]:
        if cache is None:
            return self.cross_attn(h, memory, mask=src_mask, need_weights=need_weights)
        # K/V are stored once per sentence (B, H, S, d). Fold the k beam rows of each sentence
        # into one query block, so that all its beams attend to the same K/V without a copy.
        N, T, D = h.shape
        B, H, S, _ = cache.cross_k.shape
        k = N // B
        q = self.cross_attn.project_q(h.reshape(B, k * T, D))  # (N, T, D) -> (B, k*T, D) -> (B, H, k*T, d_k)
        out, w = self.cross_attn.attend(q, cache.cross_k, cache.cross_v, mask=src_mask, need_weights=need_weights)
        out = out.view(N, T, D)  # (B, k*T, D) -> (N, T, D)
        if w is not None:
            w = w.view(B, H, k, T, S).transpose(1, 2).reshape(N, H, T, S)  # (B, H, k*T, S) -> (N, H, T, S)
        return out, w
