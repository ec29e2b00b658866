"""Cached ids, the token-bucketed sampler (bounds, padding, shuffling, resume, sharding) and collate."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import torch

from rosettamt.config import DataConfig, Source, TokenizerConfig
from rosettamt.data.packing import pack_by_tokens
from rosettamt.data.batching import (TokenBatchSampler, collate, collate_rows, encode_splits, lengths,
                                     make_batches, padding_fraction)
from rosettamt.data.corpus import load_corpus
from rosettamt.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, train_or_load


def _lens(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Skewed sentence lengths like real text; the target about as long as the source."""
    rng = np.random.default_rng(seed)
    src = np.clip(rng.lognormal(2.6, 0.5, n).astype(int), 1, 150)
    tgt = np.clip((src * rng.uniform(0.7, 1.4, n)).astype(int), 1, 150)
    return src, tgt


def _cost(b, src, tgt) -> int:
    return len(b) * int(max(np.max(src[b]), np.max(tgt[b])) + 1)


# ---------------------------------------------------------------------------- sampler


def test_batches_respect_max_tokens_counting_padding_and_cover_the_epoch():
    src, tgt = _lens()
    src[7], tgt[7] = 400, 3  # longer than max_tokens on its own
    sampler = TokenBatchSampler(src, tgt, max_tokens=300, seed=3)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(len(src)))  # each example exactly once
    for b in batches:
        assert _cost(b, src, tgt) <= 300 or b == [7]
    assert [7] in batches


def test_bucketing_pads_far_less_than_random_batches():
    src, tgt = _lens()
    sampler = TokenBatchSampler(src, tgt, max_tokens=1000, seed=1)
    cost = np.maximum(src, tgt) + 1
    random_batches = pack_by_tokens(np.random.default_rng(0).permutation(len(src)), cost, 1000)
    random_fraction = padding_fraction(random_batches, src + 1, tgt + 1)
    assert sampler.padding_fraction < 0.5 * random_fraction and sampler.padding_fraction < 0.2
    # the reported number is the real padding of the collated tensors of that epoch
    reported = sampler.padding_fraction
    batches = list(sampler)
    pads = real = 0
    for b in batches:
        batch = collate([[5] * int(src[i]) for i in b], [[5] * int(tgt[i]) for i in b], b)
        real += batch.n_src_tokens + batch.n_tgt_tokens
        pads += batch.src.numel() + batch.tgt_out.numel()
    assert abs((1 - real / pads) - reported) < 1e-9


def test_shuffle_is_reproducible_per_seed_and_epoch_and_reaches_inside_buckets():
    src, tgt = _lens()
    a, b = TokenBatchSampler(src, tgt, 500, seed=1), TokenBatchSampler(src, tgt, 500, seed=1)
    assert list(a) == list(b)  # epoch 0 on both
    a.set_epoch(5), b.set_epoch(5)
    e5 = list(a)
    assert e5 == list(b)
    a.set_epoch(0)
    e0 = list(a)
    assert e0 != e5 and len(e0) == len(e5)
    assert {frozenset(x) for x in e0} != {frozenset(x) for x in e5}  # compositions change, not only order
    assert list(TokenBatchSampler(src, tgt, 500, seed=2)) != e0
    fixed = TokenBatchSampler(src, tgt, 500, shuffle=False)
    assert list(fixed) == list(fixed)  # epoch 0 then epoch 1: same order without shuffling


@pytest.mark.parametrize("stop", [0, 1, 17, 40])
def test_resume_mid_epoch_yields_exactly_the_rest(stop):
    src, tgt = _lens(1500)
    full = TokenBatchSampler(src, tgt, 400, seed=9)
    full.set_epoch(3)
    expected = list(full)

    first = TokenBatchSampler(src, tgt, 400, seed=9)
    first.set_epoch(3)
    it = iter(first)
    seen = [next(it) for _ in range(stop)]
    state = first.state_dict()
    assert state == {"epoch": 3, "position": stop}

    resumed = TokenBatchSampler(src, tgt, 400, seed=9)
    resumed.load_state_dict(state)
    resumed.set_epoch(3)  # the trainer's loop calls this again: the position is kept
    assert seen + list(resumed) == expected
    assert resumed.state_dict() == {"epoch": 4, "position": 0}  # finished: next epoch from its start
    resumed.set_epoch(4)
    following = TokenBatchSampler(src, tgt, 400, seed=9)
    following.set_epoch(4)
    assert list(resumed) == list(following)


@pytest.mark.parametrize("world_size", [2, 3, 4])
def test_rank_shards_are_disjoint_equal_and_cover_the_epoch(world_size):
    src, tgt = _lens(1000)
    shards = []
    for rank in range(world_size):
        s = TokenBatchSampler(src, tgt, 700, seed=4, rank=rank, world_size=world_size)
        s.set_epoch(2)
        shards.append(list(s))
        assert len(s) == len(shards[-1])
    assert len({len(sh) for sh in shards}) == 1  # same count on every rank: DDP never waits
    examples = [i for sh in shards for b in sh for i in b]
    assert sorted(examples) == list(range(len(src)))  # disjoint and covering
    for sh in shards:
        assert all(_cost(b, src, tgt) <= 700 for b in sh)

    dropped = [list(TokenBatchSampler(src, tgt, 700, seed=4, rank=r, world_size=world_size, drop_uneven=True))
               for r in range(world_size)]
    assert len({len(sh) for sh in dropped}) == 1
    flat = [i for sh in dropped for b in sh for i in b]
    assert len(flat) == len(set(flat))


# ---------------------------------------------------------------------------- collate


def test_collate_builds_shifted_targets_padding_and_masks():
    src_ids, tgt_ids = [[11, 12, 13], [14]], [[21], [22, 23, 24, 25]]
    b = collate(src_ids, tgt_ids, [7, 3])
    assert b.src.tolist() == [[11, 12, 13, EOS_ID], [14, EOS_ID, PAD_ID, PAD_ID]]
    assert b.src_mask.tolist() == [[True] * 4, [True, True, False, False]]
    assert b.tgt_in.tolist() == [[BOS_ID, 21, PAD_ID, PAD_ID, PAD_ID], [BOS_ID, 22, 23, 24, 25]]
    assert b.tgt_out.tolist() == [[21, EOS_ID, PAD_ID, PAD_ID, PAD_ID], [22, 23, 24, 25, EOS_ID]]
    assert b.indices.tolist() == [7, 3] and (b.n_src_tokens, b.n_tgt_tokens) == (6, 7)
    assert b.src.dtype == b.tgt_in.dtype == torch.long and b.src_mask.dtype == torch.bool
    assert b.to("cpu").src.equal(b.src)


def test_collate_random_batches_round_trip():
    rng = np.random.default_rng(5)
    src_ids = [list(rng.integers(4, 50, rng.integers(0, 9))) for _ in range(12)]
    tgt_ids = [list(rng.integers(4, 50, rng.integers(0, 9))) for _ in range(12)]
    b = collate(src_ids, tgt_ids, list(range(12)))
    for row, (s, t) in enumerate(zip(src_ids, tgt_ids)):
        assert b.src[row][b.src_mask[row]].tolist() == s + [EOS_ID]
        assert b.tgt_in[row, : len(t) + 1].tolist() == [BOS_ID] + t and b.tgt_out[row, : len(t) + 1].tolist() == t + [EOS_ID]
        assert (b.tgt_in[row, len(t) + 1 :] == PAD_ID).all() and (b.tgt_out[row, len(t) + 1 :] == PAD_ID).all()
    assert b.n_tgt_tokens == int((b.tgt_out != PAD_ID).sum())


# ---------------------------------------------------------------------------- ids on disk


@pytest.fixture(scope="module")
def toy_prepared(toy_files, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    cfg = DataConfig(source=Source.files, files=toy_files, src_lang="en", tgt_lang="xx", test_splits=["test"],
                     max_len=8, cache_dir=str(cache))
    corpus = load_corpus(cfg)
    tok, _ = train_or_load(corpus["train"], TokenizerConfig(vocab_size=120), cfg, cache)
    return cfg, corpus, tok, cache


def test_encode_splits_filters_long_train_pairs_only_and_caches(toy_prepared, caplog):
    cfg, corpus, tok, cache = toy_prepared
    with caplog.at_level(logging.INFO, logger="rosettamt"):
        ids = encode_splits(corpus, tok, cfg, cache)
    assert ids["train"].column_names == ["src_ids", "tgt_ids"]
    src, tgt = lengths(ids["train"])
    assert src.max() <= 8 and tgt.max() <= 8
    n_long = sum(len(s) > 8 or len(t) > 8 for s, t in zip(tok.encode_src(corpus["train"]["src"]),
                                                          tok.encode_tgt(corpus["train"]["tgt"])))
    assert 0 < n_long and len(ids["train"]) == len(corpus["train"]) - n_long
    assert f"train: filtered {n_long} pairs" in caplog.text
    for split in ("val", "test"):  # never dropped, even when long
        assert len(ids[split]) == len(corpus[split]) and max(lengths(ids[split])[0]) > 8
        assert ids[split]["src_ids"][:5] == tok.encode_src(corpus[split]["src"][:5])
    path = ids["val"].cache_files[0]["filename"]
    assert path.startswith(str(cache / "ids")) and os.path.basename(os.path.dirname(path)) != "ids"
    mtime = os.stat(path).st_mtime_ns
    again = encode_splits(corpus, tok, cfg, cache)
    assert again["val"].cache_files[0]["filename"] == path and os.stat(path).st_mtime_ns == mtime


def test_make_batches_and_collate_rows_for_decoding(toy_prepared):
    cfg, corpus, tok, cache = toy_prepared
    ids = encode_splits(corpus, tok, cfg, cache)["test"]
    batches = make_batches(ids, max_tokens=60, src_only=True)
    assert batches == make_batches(ids, max_tokens=60, src_only=True)
    assert sorted(i for b in batches for i in b) == list(range(len(ids)))
    src, _ = lengths(ids)
    assert all(len(b) * (src[b].max() + 1) <= 60 for b in batches)
    batch = collate_rows(ids, batches[0])
    row = int(batch.indices[0])
    assert tok.detokenize(batch.tgt_out[0].tolist()) == corpus["test"][row]["tgt"]
