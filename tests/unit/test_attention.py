"""MultiHeadAttention: shapes, masks, and agreement with a per-head reference written here."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rosettamt.model import MultiHeadAttention


def reference_attention(attn: MultiHeadAttention, x, memory, mask=None):
    """Textbook multi-head attention, one head at a time: matmul, scale, mask, softmax, matmul.

    mask: bool (B, Tq, Tk), True = attend. Returns (output (B, Tq, D), weights (B, H, Tq, Tk)).
    """
    H, dk, dv = attn.n_heads, attn.d_k, attn.d_v
    W, b = attn.in_proj.weight, attn.in_proj.bias
    Wq, Wk, Wv = W[: H * dk], W[H * dk : 2 * H * dk], W[2 * H * dk :]
    bq, bk, bv = b[: H * dk], b[H * dk : 2 * H * dk], b[2 * H * dk :]
    heads, weights = [], []
    for h in range(H):
        qs, ks, vs = slice(h * dk, (h + 1) * dk), slice(h * dk, (h + 1) * dk), slice(h * dv, (h + 1) * dv)
        q = x @ Wq[qs].T + bq[qs]
        k = memory @ Wk[ks].T + bk[ks]
        v = memory @ Wv[vs].T + bv[vs]
        scores = q @ k.transpose(1, 2) / math.sqrt(dk)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        w = torch.softmax(scores, dim=-1)
        heads.append(w @ v)
        weights.append(w)
    out = attn.out_proj(torch.cat(heads, dim=-1))
    return out, torch.stack(weights, dim=1)


def padding_mask(lengths, S):
    return torch.arange(S)[None, :] < torch.tensor(lengths)[:, None]  # (B, S)


def make_attention(d_model=16, n_heads=2, d_k=5, d_v=3, seed=0):
    torch.manual_seed(seed)
    attn = MultiHeadAttention(d_model, n_heads, d_k, d_v).eval()
    with torch.no_grad():  # non-zero biases, so that a wrong bias slice shows
        attn.in_proj.bias.normal_()
        attn.out_proj.bias.normal_()
    return attn


def test_cross_attention_shapes_with_different_lengths_and_head_sizes():
    attn = make_attention(d_model=16, n_heads=2, d_k=5, d_v=3)
    x, memory = torch.randn(3, 4, 16), torch.randn(3, 7, 16)
    out, w = attn(x, memory, need_weights=True)
    assert out.shape == (3, 4, 16)
    assert w.shape == (3, 2, 4, 7)
    out2, w2 = attn(x, memory)
    assert out2.shape == (3, 4, 16) and w2 is None
    assert attn.in_proj.weight.shape == (2 * (5 + 5 + 3), 16)
    assert attn.out_proj.weight.shape == (16, 2 * 3)


def test_rows_sum_to_one_and_padded_keys_get_exactly_zero():
    attn = make_attention()
    x, memory = torch.randn(3, 4, 16), torch.randn(3, 6, 16)
    mask = padding_mask([6, 3, 1], 6)
    _, w = attn(x, memory, mask=mask[:, None, None, :], need_weights=True)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 2, 4))
    padded = (~mask)[:, None, None, :].expand_as(w)
    assert torch.all(w[padded] == 0.0)
    assert torch.all(w[~padded] > 0.0)


def test_padded_keys_do_not_change_the_output():
    attn = make_attention()
    x, memory = torch.randn(2, 4, 16), torch.randn(2, 6, 16)
    mask = padding_mask([6, 2], 6)[:, None, None, :]
    noisy = memory.clone()
    noisy[1, 2:] = 100 * torch.randn(4, 16)
    for need in (False, True):
        a, _ = attn(x, memory, mask=mask, need_weights=need)
        b, _ = attn(x, noisy, mask=mask, need_weights=need)
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("need_weights", [False, True])
def test_matches_reference_cross_attention_with_padding(need_weights):
    attn = make_attention()
    x, memory = torch.randn(3, 4, 16), torch.randn(3, 7, 16)
    mask = padding_mask([7, 5, 2], 7)
    out, w = attn(x, memory, mask=mask[:, None, None, :], need_weights=need_weights)
    ref_out, ref_w = reference_attention(attn, x, memory, mask[:, None, :].expand(3, 4, 7))
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    if need_weights:
        torch.testing.assert_close(w, ref_w, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("need_weights", [False, True])
def test_matches_reference_causal_self_attention(need_weights):
    attn = make_attention(d_model=12, n_heads=3, d_k=4, d_v=6)
    x = torch.randn(2, 5, 12)
    out, w = attn(x, is_causal=True, need_weights=need_weights)
    causal = torch.ones(5, 5, dtype=torch.bool).tril().expand(2, 5, 5)
    ref_out, ref_w = reference_attention(attn, x, x, causal)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    if need_weights:
        torch.testing.assert_close(w, ref_w, atol=1e-6, rtol=1e-5)
        assert torch.all(w.triu(1) == 0.0)


@settings(max_examples=25, deadline=None)
@given(
    B=st.integers(1, 3),
    Tq=st.integers(1, 6),
    Tk=st.integers(1, 6),
    H=st.integers(1, 3),
    d_k=st.integers(1, 6),
    d_v=st.integers(1, 6),
    seed=st.integers(0, 1000),
)
def test_matches_reference_for_any_shape(B, Tq, Tk, H, d_k, d_v, seed):
    attn = make_attention(d_model=8, n_heads=H, d_k=d_k, d_v=d_v, seed=seed)
    g = torch.Generator().manual_seed(seed)
    x, memory = torch.randn(B, Tq, 8, generator=g), torch.randn(B, Tk, 8, generator=g)
    lengths = torch.randint(1, Tk + 1, (B,), generator=g).tolist()
    mask = padding_mask(lengths, Tk)
    ref_out, ref_w = reference_attention(attn, x, memory, mask[:, None, :].expand(B, Tq, Tk))
    for need in (False, True):
        out, w = attn(x, memory, mask=mask[:, None, None, :], need_weights=need)
        torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(w, ref_w, atol=1e-6, rtol=1e-4)


def test_self_attention_fused_projection_equals_separate_projections():
    attn = make_attention()
    x = torch.randn(2, 5, 16)
    q, k, v = attn.project_qkv(x)
    k2, v2 = attn.project_kv(x)
    torch.testing.assert_close(q, attn.project_q(x))
    torch.testing.assert_close(k, k2)
    torch.testing.assert_close(v, v2)
    assert q.shape == (2, 2, 5, 5) and v.shape == (2, 2, 5, 3)


def test_attention_dropout_only_in_training():
    torch.manual_seed(0)
    attn = MultiHeadAttention(16, 2, 8, 8, dropout=0.5)
    x = torch.randn(2, 5, 16)
    attn.train()
    assert not torch.allclose(attn(x)[0], attn(x)[0])
    attn.eval()
    torch.testing.assert_close(attn(x)[0], attn(x)[0])
    torch.testing.assert_close(attn(x)[0], attn(x, need_weights=True)[0], atol=1e-5, rtol=1e-5)


def test_bf16_autocast_training_on_cpu_matches_fp32_and_backpropagates():
    """Under CPU bf16 autocast the fused path attends in fp32 (faster there): same result as the
    fp32 module up to bf16 rounding, gradients reach the inputs, and causality still holds."""
    attn = make_attention(d_model=16, n_heads=4)
    x = torch.randn(2, 6, 16, requires_grad=True)
    ref, _ = attn(x, is_causal=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = attn(x, is_causal=True)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, atol=5e-2, rtol=5e-2)
    out.float()[:, 2].sum().backward()
    assert x.grad is not None and x.grad[:, :3].abs().sum() > 0
    assert torch.all(x.grad[:, 3:] == 0)  # position 2 saw nothing after it
