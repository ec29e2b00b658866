"""Translator.nbest_with_attention: the n-best list of translate() with every decoder layer's
cross-attention behind each candidate (what the server's page draws)."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.toy_checkpoint import read_lines


@pytest.fixture(scope="module")
def sources(toy_files):
    return read_lines(toy_files["test"][0])[:6]


def test_candidates_are_translates_nbest_with_attention_of_every_layer(translator, sources):
    for sentence in sources:
        cands = translator.nbest_with_attention(sentence, nbest=3, beam_size=4)
        ref = translator.translate([sentence], nbest=3, beam_size=4)[0]
        assert [c.text for c in cands] == [r.text for r in ref]
        assert np.allclose([c.score for c in cands], [r.score for r in ref], atol=1e-5)
        for c in cands:
            layers, heads, rows, cols = c.weights.shape
            assert (layers, heads) == (translator.n_decoder_layers, translator.n_heads)
            assert (rows, cols) == (len(c.tgt_tokens), len(c.src_tokens))
            assert c.src_tokens[-1] == c.tgt_tokens[-1] == "</s>"
            assert np.allclose(c.weights.sum(-1), 1.0, atol=1e-4)


def test_last_layer_equals_translate_with_attention(translator, sources):
    text, src, tgt, weights = translator.translate_with_attention(sources[0], layer=-1, beam_size=4)
    best = translator.nbest_with_attention(sources[0], nbest=1, beam_size=4)[0]
    assert (best.text, best.src_tokens, best.tgt_tokens) == (text, src, tgt)
    assert np.allclose(best.weights[-1], weights)


def test_empty_line_gives_one_empty_candidate(translator):
    (cand,) = translator.nbest_with_attention("  ", nbest=2, beam_size=2)
    assert (cand.text, cand.score, cand.src_tokens, cand.tgt_tokens) == ("", 0.0, ["</s>"], ["</s>"])
    assert cand.weights.shape[2:] == (1, 1)


def test_translate_nbest_is_translate_with_scores(translator, sources):
    for nbest, beam in ((1, 1), (1, 4), (3, 4)):
        lists = translator.translate_nbest(sources + [""], beam_size=beam, nbest=nbest)
        plain = translator.translate(sources + [""], beam_size=beam, nbest=nbest)
        assert all(len(c) >= 1 and all(isinstance(x.score, float) for x in c) for c in lists)
        assert lists[-1] == [("", 0.0)]
        if nbest == 1:
            assert [c[0].text for c in lists] == plain
        else:
            assert lists == plain
