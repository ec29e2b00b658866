"""Greedy and beam search: cache == recomputation, beam 1 == greedy, beam beats greedy where it
should, the length penalty decides as its formula says, input order, empty lines, n-best."""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
from typing import Callable, Dict, List, Sequence

import pytest
import torch
from torch import nn

from rosettamt.config import DecodeConfig, ModelConfig
from rosettamt.data.tokenizer import BOS_ID, EOS_ID
from rosettamt.errors import UserError
from rosettamt.model.cache import DecoderCache, LayerCache
from rosettamt.model.transformer import DecoderOutput
from rosettamt.search import Hypothesis, beam_search, greedy_search, translate_ids
from rosettamt.data.packing import longest_first
from rosettamt.search.translate_ids import pad_sources, restore_order

A, B, C = 4, 5, 6  # token ids of the hand-made models (0-3 are PAD, UNK, BOS, EOS)

NextProbs = Callable[[List[int], List[int]], Dict[int, float]]


class FakeModel(nn.Module):
    """A model whose next-token distribution is a Python function of (source, prefix).

    It implements the search-facing interface (encode, decode, decode_step, new_cache) and keeps its decoding
    state in a real DecoderCache: the "self K" of a row holds the row's token history, so a
    wrong reorder() or select_sentences() shows up as a wrong distribution. It also records
    what the search asked of it.
    """

    def __init__(self, next_probs: NextProbs, vocab: int = 8) -> None:
        super().__init__()
        self.next_probs, self.vocab = next_probs, vocab
        self.encode_calls = 0
        self.decode_shapes: List[tuple] = []

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor) -> torch.Tensor:
        self.encode_calls += 1
        return src.float()[:, :, None]  # (B, S) -> (B, S, 1): the ids themselves are the "memory"

    def new_cache(self, memory: torch.Tensor, src_mask: torch.Tensor, beam_size: int = 1) -> DecoderCache:
        n = memory.shape[0] * beam_size
        history = memory.new_zeros(n, 1, 0, 1)  # (B*k, 1, 0, 1)
        layer = LayerCache(memory[:, None], memory[:, None], history, history.clone())  # cross: (B, 1, S, 1)
        return DecoderCache(beam_size=beam_size, length=0, layers=[layer], src_mask=src_mask)

    def decode(self, tgt, memory, src_mask, need_weights=False) -> DecoderOutput:
        self.decode_shapes.append(tuple(tgt.shape))
        return self._next(tgt, tgt, memory[:, :, 0].long(), src_mask)

    def decode_step(self, tgt, cache, need_weights=False) -> DecoderOutput:
        self.decode_shapes.append(tuple(tgt.shape))
        layer = cache.layers[0]
        layer.self_k = torch.cat([layer.self_k, tgt.float()[:, None, :, None]], dim=2)  # (N, 1, t, 1)
        cache.length += tgt.shape[1]
        k = cache.beam_size
        src = layer.cross_k[:, 0, :, 0].long().repeat_interleave(k, 0)  # (B, S) -> (B*k, S)
        return self._next(tgt, layer.self_k[:, 0, :, 0].long(), src, cache.src_mask.repeat_interleave(k, 0))

    def _next(self, tgt, prefixes, src, mask) -> DecoderOutput:
        """Logits (N, T, V): -inf except the last position, which holds next_probs of each row."""
        N, T = tgt.shape
        logits = torch.full((N, T, self.vocab), float("-inf"))
        for row in range(N):
            assert prefixes[row, 0] == BOS_ID
            source = src[row][mask[row]].tolist()[:-1]  # drop the source EOS
            for tok, p in self.next_probs(source, prefixes[row, 1:].tolist()).items():
                logits[row, -1, tok] = math.log(p)
        return DecoderOutput(logits, None)


def table_model(table: Dict[tuple, Dict[int, float]]) -> FakeModel:
    """Next-token probabilities looked up by prefix (missing prefix: EOS)."""
    return FakeModel(lambda source, prefix: table.get(tuple(prefix), {EOS_ID: 1.0}))


def copy_model(vocab: int = 40) -> FakeModel:
    """Copies the source, mostly: a source-dependent model to catch mixed-up sentences."""

    def probs(source: List[int], prefix: List[int]) -> Dict[int, float]:
        if len(prefix) < len(source):
            nxt = source[len(prefix)]
            other = A if nxt != A else B
            return {nxt: 0.8, other: 0.15, EOS_ID: 0.05}
        return {EOS_ID: 0.9, A: 0.1}

    return FakeModel(probs, vocab=vocab)


def one_batch(seqs: Sequence[Sequence[int]]):
    """Sources (pieces) -> padded (B, S) batch with EOS appended, as translate_ids builds it."""
    return pad_sources([list(s) + [EOS_ID] for s in seqs], "cpu")


def all_complete(table, max_len: int):
    """Every sequence the table model can finish within max_len tokens: (tokens, log_prob)."""
    out, frontier = [], [([], 0.0)]
    for _ in range(max_len + 1):
        nxt = []
        for prefix, lp in frontier:
            for tok, p in table.get(tuple(prefix), {EOS_ID: 1.0}).items():
                if tok == EOS_ID:
                    out.append((prefix, lp + math.log(p)))
                elif len(prefix) < max_len:
                    nxt.append((prefix + [tok], lp + math.log(p)))
        frontier = nxt
    return out


def random_model(seed: int, vocab: int = 30, **options) -> nn.Module:
    """A tiny Transformer with random weights (untied output, so it does not just repeat a token)."""
    from rosettamt.model import Seq2SeqTransformer

    torch.manual_seed(seed)
    settings = dict(d_model=32, encoder_layers=2, decoder_layers=2, n_heads=4, d_ff=64, dropout=0.0,
                    src_vocab_size=vocab, tgt_vocab_size=vocab, max_positions=64, tie_output=False, tie_all=False)
    cfg = ModelConfig(**{**settings, **options})
    return Seq2SeqTransformer(cfg).eval()


def ragged_sources(n: int, vocab: int, seed: int = 1, max_len: int = 11) -> List[List[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(4, vocab) for _ in range(rng.randint(1, max_len))] for _ in range(n)]


@pytest.fixture(scope="module")
def varied_model():
    """A random-weight model whose greedy outputs end at different steps and differ in content,
    so that dropping finished sentences and reordering beams are really exercised."""
    srcs = ragged_sources(12, 30)
    src, mask = one_batch(srcs)
    for seed in range(20):
        model = random_model(seed)
        hyps = greedy_search(model, src, mask, 1.0, 3)
        max_lens = (mask.sum(1) + 3).tolist()
        lengths = [len(h[0].tokens) for h in hyps]
        early = sum(n < m for n, m in zip(lengths, max_lens))
        if len(set(lengths)) >= 4 and early >= 2 and len({t for h in hyps for t in h[0].tokens}) >= 5:
            return model
    pytest.fail("no random seed gave a model with varied outputs; the model's init changed?")


# --- cache == recomputation ---------------------------------------------------------------------

@pytest.mark.parametrize("beam", [1, 4])
def test_cached_equals_uncached(varied_model, beam):
    srcs = ragged_sources(12, 30)
    src, mask = one_batch(srcs)
    if beam == 1:
        run = lambda cache: greedy_search(varied_model, src, mask, 1.0, 3, use_cache=cache)  # noqa: E731
    else:
        run = lambda cache: beam_search(varied_model, src, mask, beam, 0.6, "gnmt", 1.0, 3,  # noqa: E731
                                        nbest=beam, use_cache=cache)
    cached, uncached = run(True), run(False)
    assert [[h.tokens for h in hs] for hs in cached] == [[h.tokens for h in hs] for hs in uncached]
    for hs, ref in zip(cached, uncached):
        for h, r in zip(hs, ref):
            assert h.log_prob == pytest.approx(r.log_prob, abs=1e-4)
            assert h.score == pytest.approx(r.score, abs=1e-4)


def test_log_prob_matches_teacher_forcing(varied_model):
    """Each n-best hypothesis's log_prob is what the model gives the sequence when fed it whole:
    the bookkeeping through reorders and dropped sentences kept the right rows together."""
    srcs = ragged_sources(6, 30, seed=3)
    src, mask = one_batch(srcs)
    results = beam_search(varied_model, src, mask, 3, 1.0, "gnmt", 1.0, 3, nbest=3)
    for i, hyps in enumerate(results):
        for h in hyps:
            tgt_in = torch.tensor([[BOS_ID] + h.tokens])
            tgt_out = torch.tensor(h.tokens + [EOS_ID])
            with torch.no_grad():
                logits = varied_model(src[i : i + 1], mask[i : i + 1], tgt_in)[0]  # (T, V)
            expected = logits.log_softmax(-1).gather(1, tgt_out[:, None]).sum().item()
            assert h.log_prob == pytest.approx(expected, abs=1e-3)


def test_cached_search_encodes_once_and_feeds_one_token():
    model = copy_model()
    srcs = [[7, 8, 9], [10, 11], [12, 13, 14, 15, 16]]
    src, mask = one_batch(srcs)
    beam_search(model, src, mask, 3, 1.0, "gnmt", 1.0, 2)
    assert model.encode_calls == 1
    assert all(t == 1 for _, t in model.decode_shapes)  # no step re-feeds the prefix
    rows = [n for n, _ in model.decode_shapes]
    assert rows[:2] == [3, 9]  # one BOS row per sentence, then 3 beams each
    assert rows[-1] == 3 and rows[1:] == sorted(rows[1:], reverse=True)  # finished sentences left
    model = copy_model()
    beam_search(model, src, mask, 3, 1.0, "gnmt", 1.0, 2, use_cache=False)
    assert [t for _, t in model.decode_shapes] == list(range(1, len(model.decode_shapes) + 1))


def test_real_model_projects_cross_kv_once(varied_model, monkeypatch):
    calls = []
    for layer in varied_model.decoder:
        original = layer.cross_attn.project_kv
        monkeypatch.setattr(layer.cross_attn, "project_kv",
                            lambda memory, f=original: calls.append(memory.shape) or f(memory))
    src, mask = one_batch(ragged_sources(5, 30))
    beam_search(varied_model, src, mask, 4, 1.0, "gnmt", 1.0, 3)
    assert len(calls) == len(varied_model.decoder)  # once per layer for the whole search
    assert all(shape[0] == 5 for shape in calls)  # per sentence, not per beam


# --- beam vs greedy -----------------------------------------------------------------------------

def test_beam_size_one_equals_greedy(varied_model):
    src, mask = one_batch(ragged_sources(12, 30, seed=5))
    greedy = greedy_search(varied_model, src, mask, 1.2, 4, min_len=2)
    beam = beam_search(varied_model, src, mask, 1, 1.0, "gnmt", 1.2, 4, min_len=2)
    assert [h[0].tokens for h in greedy] == [h[0].tokens for h in beam]
    for g, b in zip(greedy, beam):
        assert g[0].log_prob == pytest.approx(b[0].log_prob, abs=1e-4)


TRAP = {  # greedy takes A (0.6) and is stuck with 0.6 * 0.35; B then EOS gives 0.4 * 0.9
    (): {A: 0.6, B: 0.4},
    (A,): {EOS_ID: 0.35, B: 0.33, C: 0.32},
    (B,): {EOS_ID: 0.9, C: 0.1},
}


def test_beam_finds_what_greedy_misses():
    src, mask = one_batch([[7, 8]])
    best_tokens, best_lp = max(all_complete(TRAP, 4), key=lambda x: x[1])
    greedy = greedy_search(table_model(TRAP), src, mask, 0.0, 4)[0][0]
    beam = beam_search(table_model(TRAP), src, mask, 2, 0.0, "none", 0.0, 4)[0][0]
    assert greedy.tokens != best_tokens  # the trap works
    assert greedy.log_prob < best_lp
    assert beam.tokens == best_tokens
    assert beam.log_prob == pytest.approx(best_lp, abs=1e-5)


LENGTHS = {  # a short sequence with a worse per-token probability vs a long one with a better
    (): {A: 0.55, B: 0.45},
    (B,): {EOS_ID: 1.0},
    (A,): {A: 0.9, EOS_ID: 0.1},
    (A, A): {A: 0.9, EOS_ID: 0.1},
    (A, A, A): {EOS_ID: 0.99, C: 0.01},
}


def formula(lp: float, length: int, norm: str, alpha: float) -> float:
    """The length normalisation as the docs state it (length counts EOS)."""
    if norm == "none":
        return lp
    if norm == "average":
        return lp / length
    return lp / ((5 + length) / 6) ** alpha


CHOICES = [("none", 0.0), ("gnmt", 0.0), ("gnmt", 1.0), ("gnmt", 2.0), ("average", 0.0)]


def test_length_table_makes_the_penalty_matter():
    """Under the formula, no penalty picks the short sequence and GNMT alpha=1 / average the long one."""
    complete = all_complete(LENGTHS, 6)
    best = {c: max(complete, key=lambda x: formula(x[1], len(x[0]) + 1, *c))[0] for c in CHOICES}
    assert best[("none", 0.0)] == best[("gnmt", 0.0)] == [B]
    assert best[("gnmt", 1.0)] == best[("average", 0.0)] == [A, A, A]


@pytest.mark.parametrize("norm,alpha", CHOICES)
def test_length_penalty_changes_the_choice_as_its_formula_says(norm, alpha):
    src, mask = one_batch([[7]])
    complete = all_complete(LENGTHS, 6)
    expected = max(complete, key=lambda x: formula(x[1], len(x[0]) + 1, norm, alpha))
    hyp = beam_search(table_model(LENGTHS), src, mask, 4, alpha, norm, 0.0, 6)[0][0]
    assert hyp.tokens == expected[0]
    assert hyp.score == pytest.approx(formula(expected[1], len(expected[0]) + 1, norm, alpha), abs=1e-5)


def test_min_and_max_len():
    eager = FakeModel(lambda source, prefix: {EOS_ID: 0.7, A: 0.2, B: 0.1})
    src, mask = one_batch([[7, 8, 9], [7]])  # source lengths with EOS: 4 and 2
    assert [len(h[0].tokens) for h in greedy_search(eager, src, mask, 1.0, 0, min_len=0)] == [0, 0]
    assert [len(h[0].tokens) for h in greedy_search(eager, src, mask, 1.0, 0)] == [1, 1]
    assert [len(h[0].tokens) for h in greedy_search(eager, src, mask, 1.0, 0, min_len=2)] == [2, 2]
    beams = beam_search(eager, src, mask, 3, 1.0, "gnmt", 1.0, 0, min_len=2, nbest=3)
    assert all(len(h.tokens) >= 2 for h in beams[0] + beams[1])
    never_ends = FakeModel(lambda source, prefix: {A: 0.6, B: 0.4 - 1e-9, EOS_ID: 1e-9})
    hyps = greedy_search(never_ends, src, mask, 2.0, 1)
    assert [len(h[0].tokens) for h in hyps] == [2 * 4 + 1, 2 * 2 + 1]  # max_len = a * src_len + b
    beams = beam_search(never_ends, src, mask, 2, 1.0, "none", 2.0, 1, nbest=2)
    assert [[len(h.tokens) for h in hs] for hs in beams] == [[9, 9], [5, 5]]


def test_nbest_sorted_distinct_and_scored():
    model = copy_model()
    srcs = ragged_sources(5, 40, seed=7, max_len=6)
    src, mask = one_batch(srcs)
    for norm, alpha in (("gnmt", 1.0), ("average", 0.0), ("none", 0.0)):
        results = beam_search(model, src, mask, 5, alpha, norm, 1.0, 2, nbest=4)
        for hyps in results:
            assert len(hyps) == 4
            scores = [h.score for h in hyps]
            assert scores == sorted(scores, reverse=True)
            assert len({tuple(h.tokens) for h in hyps}) == len(hyps)
            for h in hyps:
                assert h.score == pytest.approx(formula(h.log_prob, len(h.tokens) + 1, norm, alpha), abs=1e-6)
                assert EOS_ID not in h.tokens and BOS_ID not in h.tokens


# --- translate_ids: batching, order, empty lines --------------------------------------------------

@pytest.mark.parametrize("strategy", ["greedy", "beam"])
@pytest.mark.parametrize("max_tokens", [1, 12, 10_000])
def test_translate_ids_returns_input_order(strategy, max_tokens):
    rng = random.Random(max_tokens)
    srcs = ragged_sources(20, 40, seed=11)
    rng.shuffle(srcs)
    cfg = DecodeConfig(strategy=strategy, beam_size=3, max_tokens=max_tokens, max_len_a=1.0, max_len_b=2)
    hyps = translate_ids(copy_model(), srcs, cfg, "cpu")
    assert [h[0].tokens for h in hyps] == srcs  # the copy model gives each source back


def test_translate_ids_matches_one_sentence_at_a_time(varied_model):
    srcs = ragged_sources(9, 30, seed=13)
    cfg = DecodeConfig(strategy="beam", beam_size=3, max_tokens=30, max_len_a=1.0, max_len_b=3)
    batched = translate_ids(varied_model, srcs, cfg, "cpu")
    for s, hyps in zip(srcs, batched):
        alone = translate_ids(varied_model, [s], cfg, "cpu")[0]
        assert [h.tokens for h in alone] == [h.tokens for h in hyps]


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_empty_source_gives_empty_translation(strategy):
    srcs = [[7, 8, 9], [], [10, 11], [], [12]]
    cfg = DecodeConfig(strategy=strategy, beam_size=2, max_len_a=1.0, max_len_b=2)
    model = copy_model()
    hyps = translate_ids(model, srcs, cfg, "cpu")
    assert [h[0].tokens for h in hyps] == srcs
    assert all(h.tokens == [] for h in hyps[1] + hyps[3])
    assert translate_ids(model, [[]], cfg, "cpu") == [[Hypothesis([], 0.0, 0.0)]]
    assert translate_ids(model, [], cfg, "cpu") == []


def test_translate_ids_keeps_training_mode_and_shows_progress(capsys):
    model = copy_model().train()
    cfg = DecodeConfig(strategy="greedy", max_len_a=1.0, max_len_b=2)
    translate_ids(model, [[7, 8]] * 3, cfg, "cpu", progress=True)
    assert model.training
    err = capsys.readouterr().err
    assert "3/3" in err


# --- batching helpers ---------------------------------------------------------------------------

def test_length_sorted_batches_cover_every_index_within_budget():
    rng = random.Random(0)
    for _ in range(50):
        lengths = [rng.randint(1, 30) for _ in range(rng.randint(0, 60))]
        budget = rng.randint(1, 200)
        batches = longest_first(lengths, budget)
        assert sorted(itertools.chain(*batches)) == list(range(len(lengths)))
        for batch in batches:
            assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= budget
        flat = [lengths[i] for i in itertools.chain(*batches)]
        assert flat == sorted(flat, reverse=True)
        outputs = [[f"out{i}" for i in batch] for batch in batches]
        assert restore_order(batches, outputs, len(lengths)) == [f"out{i}" for i in range(len(lengths))]


def test_pad_sources_mask():
    src, mask = pad_sources([[5, 6, 3], [3]], "cpu")
    assert src.tolist() == [[5, 6, 3], [3, 0, 0]]
    assert mask.tolist() == [[True, True, True], [True, False, False]]


def test_beam_wider_than_the_vocabulary():
    model = FakeModel(lambda source, prefix: {A: 0.5, B: 0.3, EOS_ID: 0.2}, vocab=6)
    src, mask = one_batch([[7, 8], [9]])
    results = beam_search(model, src, mask, 8, 1.0, "gnmt", 1.0, 1, nbest=8)
    for hyps in results:
        assert len({tuple(h.tokens) for h in hyps}) == len(hyps) >= 3
        assert all(math.isfinite(h.score) and set(h.tokens) <= {A, B} for h in hyps)


def reference_beam(model, src: torch.Tensor, k: int, alpha: float, norm: str, max_len: int,
                   min_len: int, nbest: int) -> List[Hypothesis]:
    """Textbook beam search for one sentence: Python lists, every prefix recomputed, no early stop
    beyond the standard rule (EOS among the best k finishes a hypothesis; k finished: done)."""
    mask = torch.ones_like(src, dtype=torch.bool)
    memory = model.encode(src, mask)
    beams: List[tuple] = [([], 0.0)]
    finished: List[Hypothesis] = []
    for t in range(max_len + 1):
        cands = []
        for tokens, total in beams:
            with torch.no_grad():
                lp = model.decode(torch.tensor([[BOS_ID] + tokens]), memory, mask).logits[0, -1].log_softmax(-1)
            for v, p in enumerate(lp.tolist()):
                allowed = v not in (0, BOS_ID) and (v != EOS_ID or t >= min_len) and (v == EOS_ID or t < max_len)
                if allowed:
                    cands.append((total + p, tokens, v))
        cands = sorted(cands, key=lambda c: -c[0])[: 2 * k]
        for rank, (total, tokens, v) in enumerate(cands):
            if v == EOS_ID and rank < k:
                finished.append(Hypothesis(tokens, formula(total, len(tokens) + 1, norm, alpha), total))
        beams = [(tokens + [v], total) for total, tokens, v in cands if v != EOS_ID][:k]
        if len(finished) >= k or not beams:
            break
    return sorted(finished, key=lambda h: -h.score)[:nbest]


@pytest.mark.parametrize("norm,alpha", [("none", 0.0), ("average", 0.0), ("gnmt", 1.0)])
def test_batched_beam_equals_textbook_beam(varied_model, norm, alpha):
    """Batching, dropping finished sentences, the first-step fan-out and the safe early stop
    change nothing: each sentence gets what a one-sentence textbook beam search gives."""
    srcs = ragged_sources(6, 30, seed=17)
    src, mask = one_batch(srcs)
    batched = beam_search(varied_model, src, mask, 4, alpha, norm, 1.0, 2, min_len=2, nbest=2)
    for i, s in enumerate(srcs):
        row = torch.tensor([s + [EOS_ID]])
        ref = reference_beam(varied_model, row, 4, alpha, norm, len(s) + 1 + 2, 2, 2)
        assert [h.tokens for h in batched[i]] == [h.tokens for h in ref]
        assert [h.score for h in batched[i]] == pytest.approx([h.score for h in ref], abs=1e-4)


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_lengths_fit_the_model_positions(strategy):
    """Learned positions stop at max_positions: long sources are cut, outputs capped, nothing fails."""
    model = random_model(0, positions="learned", max_positions=16)
    srcs = [list(range(4, 30)) * 2, [5]]  # 52 pieces: longer than the model can read
    cfg = DecodeConfig(strategy=strategy, beam_size=3, max_len_a=3.0, max_len_b=5, min_len=15)
    hyps = translate_ids(model, srcs, cfg, "cpu")
    assert [len(h[0].tokens) for h in hyps] == [15, 11]  # min_len capped by max_len: 15, 3 * (1 + EOS) + 5
    with pytest.raises(UserError, match="min_len=100 must be below the model's max_positions=16"):
        translate_ids(model, srcs, dataclasses.replace(cfg, min_len=100), "cpu")  # no output can be that long


@pytest.mark.parametrize("option,value", [("beam_size", 0), ("nbest", 0), ("max_tokens", 0), ("min_len", -1)])
def test_impossible_decode_settings_are_user_errors(option, value):
    cfg = DecodeConfig(**{"strategy": "beam", "beam_size": 2, option: value})
    with pytest.raises(UserError, match=f"decode.{option}={value}"):
        translate_ids(copy_model(), [[7]], cfg, "cpu")


def test_beams_keep_moves_every_field_of_the_kept_sentences_together():
    from rosettamt.search.beam import Beams

    beams = Beams.start(torch.tensor([5, 6, 7]), torch.tensor([1, 2, 3]), torch.device("cpu"))
    beams.prefix = torch.arange(3 * 2 * 4).view(6, 4)  # 3 sentences x 2 beams, 4 positions
    beams.scores = torch.tensor([[0.0, -1.0], [-2.0, -3.0], [-4.0, -5.0]])
    beams.n_finished = torch.tensor([0, 1, 2])
    beams.keep(torch.tensor([2, 0]))
    assert beams.sentence.tolist() == [2, 0] and beams.max_len.tolist() == [7, 5]
    assert beams.max_len_dev.tolist() == [7, 5]
    assert beams.min_len.tolist() == [3, 1] and beams.n_finished.tolist() == [2, 0]
    assert beams.scores.tolist() == [[-4.0, -5.0], [0.0, -1.0]]
    assert beams.prefix.tolist() == [list(range(16, 20)), list(range(20, 24)), list(range(0, 4)), list(range(4, 8))]
