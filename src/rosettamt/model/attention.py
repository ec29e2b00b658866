"""Multi-head scaled dot-product attention, one class for self- and cross-attention.

Queries come from the first input ``x``; keys and values from the second, ``memory`` (the
encoder output for cross-attention, ``x`` itself for self-attention). Query/key heads have
size d_k and value heads size d_v; the output projection maps H * d_v back to d_model.

The Q, K and V projections live in one weight (H*(2*d_k + d_v), d_model): self-attention
projects all three with a single matmul, cross-attention uses the row blocks for Q and for
K|V separately (slices along dim 0 are views, no copy). Masks are boolean, True = attend.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MultiHeadAttention(nn.Module):
    """Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V over n_heads heads, then a projection."""

    def __init__(self, d_model: int, n_heads: int, d_k: int, d_v: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.n_heads, self.d_k, self.d_v = n_heads, d_k, d_v
        self.dropout = dropout  # on the attention weights
        self.in_proj = nn.Linear(d_model, n_heads * (2 * d_k + d_v))  # rows: [W_q; W_k; W_v]
        self.out_proj = nn.Linear(n_heads * d_v, d_model)
        # int8 decoding only (model/int8.py): the Q and K|V row blocks of in_proj as their own layers
        self.q_proj: Optional[nn.Module] = None
        self.kv_proj: Optional[nn.Module] = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier per projection (not over the fused matrix, whose fan-out is 3x larger)."""
        hk = self.n_heads * self.d_k
        w = self.in_proj.weight
        for block in (w[:hk], w[hk : 2 * hk], w[2 * hk :]):
            nn.init.xavier_uniform_(block)
        nn.init.zeros_(self.in_proj.bias)
        nn.init.xavier_uniform_(self.out_proj.weight)
        nn.init.zeros_(self.out_proj.bias)

    def _heads(self, x: Tensor, d: int) -> Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, d).transpose(1, 2)  # (B, T, H*d) -> (B, H, T, d)

    def project_q(self, x: Tensor) -> Tensor:
        """Queries (B, H, T, d_k) from x (B, T, D)."""
        hk = self.n_heads * self.d_k
        if self.q_proj is not None:
            return self._heads(self.q_proj(x), self.d_k)  # (B, T, H*d_k) -> (B, H, T, d_k)
        q = F.linear(x, self.in_proj.weight[:hk], self.in_proj.bias[:hk])  # (B, T, H*d_k)
        return self._heads(q, self.d_k)

    def project_kv(self, memory: Tensor) -> Tuple[Tensor, Tensor]:
        """Keys (B, H, S, d_k) and values (B, H, S, d_v) from memory (B, S, D), one matmul."""
        hk = self.n_heads * self.d_k
        if self.kv_proj is not None:
            kv = self.kv_proj(memory)  # (B, S, H*(d_k+d_v))
        else:
            kv = F.linear(memory, self.in_proj.weight[hk:], self.in_proj.bias[hk:])  # (B, S, H*(d_k+d_v))
        k, v = kv.split([hk, self.n_heads * self.d_v], dim=-1)
        return self._heads(k, self.d_k), self._heads(v, self.d_v)

    def project_qkv(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Self-attention queries, keys and values from x (B, T, D) with one fused matmul."""
        hk = self.n_heads * self.d_k
        qkv = self.in_proj(x)  # (B, T, H*(2*d_k+d_v))
        q, k, v = qkv.split([hk, hk, self.n_heads * self.d_v], dim=-1)
        return self._heads(q, self.d_k), self._heads(k, self.d_k), self._heads(v, self.d_v)

    def attend(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        mask: Optional[Tensor] = None,
        is_causal: bool = False,
        need_weights: bool = False,
    ) -> Tuple[Tensor, Optional[Tensor]]:
        """Attention of q (B, H, Tq, d_k) over k (B, H, Tk, d_k) / v (B, H, Tk, d_v).

        mask: bool, broadcastable to (B, H, Tq, Tk), True = may attend. is_causal: query i sees
        keys 0..i (only for Tq == Tk). Returns the projected output (B, Tq, D) and, when
        need_weights, the attention weights (B, H, Tq, Tk) (before dropout), else None.
        """
        p = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_k)  # (B, H, Tq, Tk)
            if is_causal:
                Tq, Tk = scores.shape[-2:]
                causal = torch.ones(Tq, Tk, dtype=torch.bool, device=q.device).tril()
                mask = causal if mask is None else mask & causal
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            weights = scores.softmax(dim=-1)  # (B, H, Tq, Tk)
            out = F.dropout(weights, p, self.training) @ v  # (B, H, Tq, d_v)
        elif q.device.type == "cpu" and q.dtype != torch.float32 and torch.is_grad_enabled():
            # CPU training under bf16 autocast: PyTorch's fused CPU attention is several times slower
            # in bf16 than in fp32 (backward above all; scripts/bench_train.py --precision bf16), so
            # attend in fp32; the projections around it stay in bf16. Autocast is switched off around
            # it: SDPA is on CPU autocast's bf16 list and would cast the fp32 copies straight back.
            with torch.autocast("cpu", enabled=False):
                out = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask,
                                                     dropout_p=p, is_causal=is_causal).to(q.dtype)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=is_causal)
        B, H, Tq, dv = out.shape
        out = out.transpose(1, 2).reshape(B, Tq, H * dv)  # (B, H, Tq, d_v) -> (B, Tq, H*d_v)
        return self.out_proj(out), weights

    def forward(
        self,
        x: Tensor,
        memory: Optional[Tensor] = None,
        mask: Optional[Tensor] = None,
        is_causal: bool = False,
        need_weights: bool = False,
    ) -> Tuple[Tensor, Optional[Tensor]]:
        """Queries from x (B, T, D), keys/values from memory (B, S, D), or from x when None."""
        if memory is None:
            q, k, v = self.project_qkv(x)
        else:
            q = self.project_q(x)
            k, v = self.project_kv(memory)
        return self.attend(q, k, v, mask=mask, is_causal=is_causal, need_weights=need_weights)
