"""SentencePiece tokenizer: special ids, joint vs separate, the content-hash cache, state round trip."""

from __future__ import annotations

import io
import logging
import pickle

import pytest
import torch
from datasets import Dataset

from rosettamt.config import DataConfig, SpmType, TokenizerConfig
from rosettamt.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer, train_or_load

DATA = DataConfig(src_lang="en", tgt_lang="xx")


@pytest.fixture(scope="module")
def train_split(toy_files) -> Dataset:
    src, tgt = (open(p, encoding="utf-8").read().splitlines() for p in toy_files["train"])
    return Dataset.from_dict({"src": src, "tgt": tgt})


@pytest.fixture(scope="module")
def joint(train_split, tmp_path_factory) -> Tokenizer:
    tok, hit = train_or_load(train_split, TokenizerConfig(vocab_size=120), DATA, tmp_path_factory.mktemp("c"))
    assert not hit
    return tok


def test_special_ids_are_fixed_and_decode_stops_at_eos(joint, train_split):
    sp = joint._src
    assert (sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id()) == (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)
    ids = joint.encode_tgt(train_split["tgt"][:50])
    assert all(i not in (PAD_ID, BOS_ID, EOS_ID) for seq in ids for i in seq)  # pieces only
    text = train_split["tgt"][0]
    seq = joint.encode_tgt([text])[0]
    assert joint.detokenize([BOS_ID] + seq + [EOS_ID] + seq + [PAD_ID]) == text
    assert joint.detokenize(seq[:2] + [PAD_ID] + seq[2:]) == text


def test_joint_vocabulary_is_shared(joint, train_split):
    assert joint.joint and joint.src_vocab_size == joint.tgt_vocab_size == 120
    word = train_split["tgt"][0].split()[0]
    assert joint.encode_src([word]) == joint.encode_tgt([word])  # one model, same ids on both sides
    assert joint.state_dict()["tgt_model"] is None


def test_separate_models_learn_their_own_language(train_split, tmp_path):
    tok, _ = train_or_load(train_split, TokenizerConfig(vocab_size=100, joint=False), DATA, tmp_path)
    assert not tok.joint and isinstance(tok.state_dict()["tgt_model"], bytes)
    target_word = train_split["tgt"][0].split()[0]  # e.g. "godx": a whole piece only in the target model
    assert len(tok.encode_tgt([target_word])[0]) < len(tok.encode_src([target_word])[0])
    assert tok.src_pieces(train_split["src"][0])[0].startswith("▁")


def test_cache_hit_then_miss_on_settings_or_text_change(train_split, tmp_path, caplog):
    cfg = TokenizerConfig(vocab_size=80, type=SpmType.unigram)
    first, hit1 = train_or_load(train_split, cfg, DATA, tmp_path)
    with caplog.at_level(logging.INFO, logger="rosettamt"):
        second, hit2 = train_or_load(train_split, cfg, DATA, tmp_path)
    assert (hit1, hit2) == (False, True) and "cache hit" in caplog.text
    assert second.content_hash == first.content_hash
    assert len(list((tmp_path / "tokenizers").iterdir())) == 1

    _, hit = train_or_load(train_split, TokenizerConfig(vocab_size=90, type=SpmType.unigram), DATA, tmp_path)
    assert not hit
    bpe, hit = train_or_load(train_split, TokenizerConfig(vocab_size=80), DATA, tmp_path)
    assert not hit and bpe.content_hash != first.content_hash
    edited = Dataset.from_dict({"src": ["Changed."] + train_split["src"][1:], "tgt": train_split["tgt"]})
    _, hit = train_or_load(edited, cfg, DATA, tmp_path)
    assert not hit and len(list((tmp_path / "tokenizers").iterdir())) == 4


def test_incomplete_cache_directory_is_never_used(train_split, tmp_path):
    cfg = TokenizerConfig(vocab_size=80)
    tok, _ = train_or_load(train_split, cfg, DATA, tmp_path)
    (cache,) = (tmp_path / "tokenizers").iterdir()
    (cache / "meta.json").unlink()  # as if a crash had left a half-written directory in place
    (cache / "joint.model").write_bytes(b"garbage")
    again, hit = train_or_load(train_split, cfg, DATA, tmp_path)
    assert not hit and again.encode_src(["A dog."]) == tok.encode_src(["A dog."])
    assert [p.name for p in (tmp_path / "tokenizers").iterdir()] == [cache.name]  # no temp dirs left


def test_too_large_vocabulary_is_relaxed_for_a_tiny_corpus(train_split, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="rosettamt"):
        tok, _ = train_or_load(train_split.select(range(50)), TokenizerConfig(vocab_size=5000), DATA, tmp_path)
    assert 10 < tok.src_vocab_size < 5000 and "tokenizer.vocab_size=5000" in caplog.text


def test_state_dict_rebuilds_the_tokenizer_from_a_checkpoint(joint, train_split, tmp_path):
    buf = io.BytesIO()
    torch.save({"tokenizer": joint.state_dict()}, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)["tokenizer"]  # plain data only
    rebuilt = Tokenizer.from_state_dict(state)
    texts = train_split["src"][:20]
    assert rebuilt.encode_src(texts) == joint.encode_src(texts) and rebuilt.content_hash == joint.content_hash
    unpickled = pickle.loads(pickle.dumps(joint))  # datasets.map workers get it this way
    assert unpickled.encode_tgt(texts) == joint.encode_tgt(texts)


def test_pieces_for_attention_plots(joint, train_split):
    text = train_split["src"][3]
    pieces = joint.src_pieces(text)
    assert "".join(pieces).replace("▁", " ").strip() == text
    ids = joint.encode_tgt([train_split["tgt"][3]])[0]
    tgt_pieces = joint.tgt_pieces(ids)
    assert len(tgt_pieces) == len(ids) and "".join(tgt_pieces).replace("▁", " ").strip() == train_split["tgt"][3]
