"""Today's search translates the fixed cases exactly as the search before the speed work did
(tests/helpers/decode_reference.json, recorded at commit 6e01605), with every speed switch on,
each one off alone, and all off."""

from __future__ import annotations

import json

import pytest
import torch

from helpers import decode_reference as ref
from rosettamt import speed

SETTINGS = [{}] + [{name: False} for name in speed.SWITCHES] + [{name: False for name in speed.SWITCHES}]
IDS = ["all-on"] + [f"{name}-off" for name in speed.SWITCHES] + ["all-off"]


@pytest.fixture(scope="module")
def recorded():
    return json.loads(ref.REFERENCE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("switches", SETTINGS, ids=IDS)
def test_random_models_decode_as_before(recorded, switches):
    torch.set_num_threads(1)
    sources = ref.random_sources()
    with speed.switched(**switches):
        for seed, (name, options) in enumerate(ref.RANDOM_MODELS):
            model = ref.random_model(seed, options)
            for search in ref.SEARCHES:
                got = ref.search_ids(model, sources, search)
                want = recorded["random"][name][search[0]]
                differ = [i for i, (a, b) in enumerate(zip(got, want)) if a != b]
                assert not differ, f"{name} {search[0]}: sentences {differ} differ from the recorded outputs"


@pytest.mark.parametrize("switches", [SETTINGS[0], SETTINGS[-1]], ids=["all-on", "all-off"])
def test_one_sentence_at_a_time_decodes_as_the_recorded_batches(recorded, switches):
    """Batch 1 (no padding: what no_pad_mask and skip_reorder change) gives the recorded outputs too."""
    torch.set_num_threads(1)
    sources = ref.random_sources()
    model = ref.random_model(0, ref.RANDOM_MODELS[0][1])
    with speed.switched(**switches):
        for search in ref.SEARCHES:
            got = ref.search_ids(model, sources, search, max_tokens=1)  # one sentence per batch
            assert got == recorded["random"][ref.RANDOM_MODELS[0][0]][search[0]], search[0]


@pytest.mark.parametrize("switches", [SETTINGS[0], SETTINGS[-1]], ids=["all-on", "all-off"])
def test_toy_checkpoint_decodes_as_before(recorded, ckpt, toy_files, switches):
    from rosettamt.checkpoint import load_for_inference

    torch.set_num_threads(1)
    model, tok, _ = load_for_inference(ckpt, "cpu")
    if ref.fingerprint(model) != recorded["toy"]["fingerprint"]:
        pytest.skip("the toy model trained to different weights on this machine; its recorded outputs do not apply")
    sources = ref.toy_sources(toy_files, tok)
    with speed.switched(**switches):
        for search in ref.TOY_SEARCHES:
            got = ref.search_ids(model, sources, search)
            assert got == recorded["toy"][search[0]], search[0]


def test_switches_are_restored_and_unknown_names_refused():
    before = dict(speed.SWITCHES)
    with speed.switched(kv_buffers=False):
        assert not speed.on("kv_buffers")
    assert speed.SWITCHES == before
    with pytest.raises(ValueError, match="no_such"):
        speed.set_switches("no_such")
