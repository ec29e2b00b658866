"""The decoding cache: step-by-step cached decoding equals one full forward pass over the prefix."""

from __future__ import annotations

import pytest
import torch

from rosettamt.model import DecoderCache
from test_model import V, make_model  # the same tiny random model

ATOL = 1e-5


def ragged_batch(lengths, seed=1):
    """Source ids (B, S) padded with 0 after each length, and the mask (B, S) True = real."""
    g = torch.Generator().manual_seed(seed)
    S = max(lengths)
    mask = torch.arange(S)[None, :] < torch.tensor(lengths)[:, None]
    src = torch.randint(4, V, (len(lengths), S), generator=g).masked_fill(~mask, 0)
    return src, mask


def full_logits(model, memory, src_mask, tgt, k):
    """Reference: no cache, memory repeated per beam row, whole prefix at once."""
    return model.decode(tgt, memory.repeat_interleave(k, 0), src_mask.repeat_interleave(k, 0)).logits


def step_logits(model, cache, tgt):
    """Feed tgt (N, T) one position at a time through the cache; logits (N, T, V)."""
    return torch.cat([model.decode_step(tgt[:, t : t + 1], cache).logits for t in range(tgt.shape[1])], 1)


CONFIGS = [
    {},
    {"norm": "post"},
    {"positions": "learned", "activation": "gelu"},
    {"d_k": 6, "d_v": 10, "joint_vocab": False},
]


@pytest.mark.parametrize("overrides", CONFIGS)
@pytest.mark.parametrize("k", [1, 3])
def test_cached_steps_equal_full_forward(overrides, k):
    model = make_model(**overrides)
    src, src_mask = ragged_batch([7, 3, 5])
    tgt = torch.randint(4, V, (3 * k, 6), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        memory = model.encode(src, src_mask)
        cache = model.new_cache(memory, src_mask, beam_size=k)
        steps = step_logits(model, cache, tgt)
        full = full_logits(model, memory, src_mask, tgt, k)
    torch.testing.assert_close(steps, full, atol=ATOL, rtol=0)
    assert cache.length == 6
    assert all(layer.self_k.shape == (3 * k, 4, 6, layer.self_k.shape[-1]) for layer in cache.layers)


def test_cross_keys_and_values_are_stored_once_per_sentence():
    model = make_model(d_k=6, d_v=10)
    src, src_mask = ragged_batch([7, 3])
    memory = model.encode(src, src_mask)
    cache = model.new_cache(memory, src_mask, beam_size=5)
    for layer in cache.layers:
        assert layer.cross_k.shape == (2, 4, 7, 6)
        assert layer.cross_v.shape == (2, 4, 7, 10)
        assert layer.self_k.shape == (10, 4, 0, 6) and layer.self_v.shape == (10, 4, 0, 10)


def test_prefix_chunk_then_single_steps():
    """Several new positions in one cached call (causal inside the chunk), then one at a time."""
    model = make_model()
    src, src_mask = ragged_batch([6, 2, 4])
    tgt = torch.randint(4, V, (6, 7), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        memory = model.encode(src, src_mask)
        cache = model.new_cache(memory, src_mask, beam_size=2)
        first = model.decode_step(tgt[:, :4], cache).logits
        rest = step_logits(model, cache, tgt[:, 4:])
        full = full_logits(model, memory, src_mask, tgt, 2)
    torch.testing.assert_close(torch.cat([first, rest], 1), full, atol=ATOL, rtol=0)


def within_sentence_shuffle(B, k, seed):
    g = torch.Generator().manual_seed(seed)
    rows = torch.stack([b * k + torch.randint(0, k, (k,), generator=g) for b in range(B)]).reshape(-1)
    assert not torch.equal(rows, torch.arange(B * k))
    return rows


@pytest.mark.parametrize("positions", ["sinusoidal", "learned"])
def test_reorder_then_continue_equals_full_forward_of_reordered_prefixes(positions):
    model = make_model(positions=positions)
    B, k = 3, 3
    src, src_mask = ragged_batch([5, 7, 2])
    g = torch.Generator().manual_seed(4)
    prefix = torch.randint(4, V, (B * k, 4), generator=g)
    suffix = torch.randint(4, V, (B * k, 3), generator=g)
    rows = within_sentence_shuffle(B, k, seed=5)
    with torch.no_grad():
        memory = model.encode(src, src_mask)
        cache = model.new_cache(memory, src_mask, beam_size=k)
        step_logits(model, cache, prefix)
        cache.reorder(rows)
        steps = step_logits(model, cache, suffix)
        full = full_logits(model, memory, src_mask, torch.cat([prefix[rows], suffix], 1), k)
    torch.testing.assert_close(steps, full[:, 4:], atol=ATOL, rtol=0)


@pytest.mark.parametrize("kv_buffers", [True, False])
def test_the_step_after_a_reorder_writes_into_the_slot_the_reorder_left(kv_buffers):
    """kv_buffers: the reorder's copy has room for one more position and the next step fills it in
    place (no second copy of the history); off, the step concatenates into a new tensor. The
    logits equal the full forward either way."""
    from rosettamt import speed

    model = make_model()
    B, k = 2, 3
    src, src_mask = ragged_batch([5, 3])
    tgt = torch.randint(4, V, (B * k, 4), generator=torch.Generator().manual_seed(6))
    rows = within_sentence_shuffle(B, k, seed=7)
    with torch.no_grad(), speed.switched(kv_buffers=kv_buffers):
        memory = model.encode(src, src_mask)
        cache = model.new_cache(memory, src_mask, beam_size=k)
        step_logits(model, cache, tgt[:, :3])
        cache.reorder(rows)
        after_reorder = [layer.self_k.data_ptr() for layer in cache.layers]
        last = step_logits(model, cache, tgt[:, 3:])
        in_place = [layer.self_k.data_ptr() == ptr for layer, ptr in zip(cache.layers, after_reorder)]
        full = full_logits(model, memory, src_mask, torch.cat([tgt[rows, :3], tgt[:, 3:]], 1), k)
    assert in_place == [kv_buffers] * len(cache.layers)
    assert all(layer.self_k.shape[2] == 4 and layer.self_k.is_contiguous() for layer in cache.layers)
    torch.testing.assert_close(last, full[:, 3:], atol=ATOL, rtol=0)


def test_select_sentences_then_continue():
    model = make_model()
    B, k = 4, 2
    src, src_mask = ragged_batch([5, 7, 2, 6])
    g = torch.Generator().manual_seed(6)
    prefix = torch.randint(4, V, (B * k, 3), generator=g)
    keep = torch.tensor([3, 1])  # drop sentences 0 and 2, and change the order
    kept_rows = torch.tensor([6, 7, 2, 3])
    suffix = torch.randint(4, V, (len(keep) * k, 3), generator=g)
    with torch.no_grad():
        memory = model.encode(src, src_mask)
        cache = model.new_cache(memory, src_mask, beam_size=k)
        step_logits(model, cache, prefix)
        cache.select_sentences(keep)
        assert cache.batch_size == 2 and cache.layers[0].cross_k.shape[0] == 2
        # memory / src_mask are not read with a cache: pass the stale full-batch ones on purpose
        steps = step_logits(model, cache, suffix)
        full = full_logits(model, memory[keep], src_mask[keep], torch.cat([prefix[kept_rows], suffix], 1), k)
    torch.testing.assert_close(steps, full[:, 3:], atol=ATOL, rtol=0)


def test_cached_cross_attention_weights_equal_full_ones():
    model = make_model()
    src, src_mask = ragged_batch([5, 2])
    tgt = torch.randint(4, V, (4, 5), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        memory = model.encode(src, src_mask)
        cache = model.new_cache(memory, src_mask, beam_size=2)
        per_step = [model.decode_step(tgt[:, t : t + 1], cache, need_weights=True) for t in range(5)]
        full_logits_, full_w = model.decode(tgt, memory.repeat_interleave(2, 0), src_mask.repeat_interleave(2, 0),
                                            need_weights=True)
    for layer in range(2):
        steps_w = torch.cat([w[layer] for _, w in per_step], dim=2)  # (N, H, T, S)
        assert steps_w.shape == (4, 4, 5, 5)
        torch.testing.assert_close(steps_w, full_w[layer], atol=1e-6, rtol=0)
        assert torch.all(steps_w[2:, :, :, 2:] == 0.0)  # sentence 1 (rows 2, 3) has 2 real tokens
    torch.testing.assert_close(torch.cat([lg for lg, _ in per_step], 1), full_logits_, atol=ATOL, rtol=0)


def test_wrong_number_of_rows_is_rejected():
    model = make_model()
    src, src_mask = ragged_batch([5, 2])
    memory = model.encode(src, src_mask)
    cache = model.new_cache(memory, src_mask, beam_size=3)
    with pytest.raises(ValueError, match="beam_size 3"):
        model.decode_step(torch.ones(2, 1, dtype=torch.long), cache)


def test_cache_is_plain_data():
    model = make_model()
    src, src_mask = ragged_batch([3])
    cache = model.new_cache(model.encode(src, src_mask), src_mask)
    assert isinstance(cache, DecoderCache) and cache.length == 0 and cache.beam_size == 1
    assert len(cache.layers) == 2
    assert all(isinstance(t, torch.Tensor) for layer in cache.layers for t in vars(layer).values())


def test_output_t_copy_follows_fused_adamw_updates():
    """Fused AdamW changes the weights in place without bumping their version counter: validation
    after training steps must not decode with the transposed output weight made before them."""
    from rosettamt import speed

    model = make_model()
    opt = torch.optim.AdamW(model.parameters(), lr=0.05, fused=True)
    src = torch.randint(4, V, (2, 5))
    src_mask = torch.ones_like(src, dtype=torch.bool)
    tgt = torch.randint(4, V, (2, 3))

    def step_logits() -> torch.Tensor:
        model.eval()  # what train/validate.py does before decoding
        with torch.no_grad():
            cache = model.new_cache(model.encode(src, src_mask), src_mask)
            return model.decode_step(tgt[:, :1], cache).logits

    with speed.switched(output_t=True):
        step_logits()  # the transposed copy is made here
        for _ in range(3):  # then training steps change every weight in place
            model.train()
            loss = model(src, src_mask, tgt).logsumexp(-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with_copy = step_logits()
    with speed.switched(output_t=False):
        plain = step_logits()
    assert torch.allclose(with_copy, plain, atol=1e-5), (with_copy - plain).abs().max()


def test_output_t_copy_is_made_once_across_translate_calls():
    """A server or the prompt translates one request at a time: the transposed output weight is made
    for the first call and reused, not rebuilt per request (translate_ids leaves an eval model be)."""
    from rosettamt import speed
    from rosettamt.config import DecodeConfig
    from rosettamt.search.translate_ids import translate_ids

    model = make_model().eval()
    cfg = DecodeConfig(strategy="beam", beam_size=3, max_len_a=0, max_len_b=6)
    with speed.switched(output_t=True):
        translate_ids(model, [[5, 6, 7]], cfg, "cpu")
        first = model._output_t
        translate_ids(model, [[8, 9]], cfg, "cpu")
        assert model._output_t is first
        model.train()  # training invalidates it; translate_ids puts the model back in training mode
        translate_ids(model, [[5, 6, 7]], cfg, "cpu")
        assert model.training and model._output_t is not first
