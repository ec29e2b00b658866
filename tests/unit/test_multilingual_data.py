"""Multilingual data and training (issue 20): config checks, balanced sampling, the joint tokenizer with
target tags, tagged ids, mixed batches, per-direction validation; and bilingual runs unchanged."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.toy import write_toy_corpus
from helpers.toy_multiway import multiway_overrides, write_multiway_corpus
from helpers.train_toy import compose_train, toy_overrides
from rosettamt import config as C
from rosettamt.config import Sampling
from rosettamt.data import multilingual as M
from rosettamt.data.tokenizer import UNK_ID
from rosettamt.errors import UserError
from rosettamt.langs import tag


@pytest.fixture(scope="module")
def multiway(tmp_path_factory) -> Path:
    return write_multiway_corpus(tmp_path_factory.mktemp("multiway"), {"train": 600, "val": 40, "test": 40})


@pytest.fixture(scope="module")
def prepared(multiway, tmp_path_factory):
    """en->de and en->fr: the same English sources, told apart only by the tag."""
    from rosettamt.data.pipeline import prepare_data

    cfg = compose_train(multiway_overrides(multiway, tmp_path_factory.mktemp("cache"), "data.pairs=[en-de,en-fr]"))
    C.check_train(cfg)
    return cfg, prepare_data(cfg.data, cfg.tokenizer, cfg.seed)


# ---------------------------------------------------------------------------- config


@pytest.mark.parametrize("overrides, message", [
    (["data.langs=[en,de]", "data.pairs=[en-de]"], "not both"),
    (["data.pairs=[en-de,ende]"], "src-tgt"),
    (["data.pairs=[en-de,en-de]"], "repeats a direction"),
    (["data.langs=[en]"], "at least two languages"),
    (["data.langs=[en,de]", "tokenizer=separate"], "tokenizer.joint=true"),
    (["data.langs=[en,de]", "data.sampling_temperature=0"], "data.sampling_temperature=0"),
    (["+data.pair_files.en-de.train=[a,b]"], "data.pair_files is for multilingual runs"),
    (["data.pairs=[en-de]", "+data.pair_files.de-en.train=[a,b]"], "de-en that are not trained"),
])
def test_bad_multilingual_settings_are_one_line_errors(overrides, message):
    cfg = compose_train(["model=tiny", *overrides])
    with pytest.raises(UserError, match=message) as err:
        C.check_train(cfg)
    assert "\n" not in str(err.value)


def test_sampling_must_be_a_known_rule():
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException):
        compose_train(["data.langs=[en,de]", "data.sampling=sometimes"])


def test_default_direction_is_kept_when_trained_else_the_first_direction():
    cfg = compose_train(["data.langs=[en,de,fr]", "data.src_lang=fr", "data.tgt_lang=en"])
    assert C.check_directions(cfg.data) is not None and (cfg.data.src_lang, cfg.data.tgt_lang) == ("fr", "en")
    cfg = compose_train(["data.pairs=[de-fr,cs-en]"])  # en-de (the default) is not trained
    C.check_train(cfg)
    assert (cfg.data.src_lang, cfg.data.tgt_lang) == ("de", "fr")


def test_bilingual_config_has_no_directions():
    cfg = compose_train(["model=tiny"])
    C.check_train(cfg)
    assert C.check_directions(cfg.data) is None and cfg.data.langs is None and cfg.data.pairs is None


def test_files_need_a_pair_per_direction():
    cfg = compose_train(["data=files", "data.pairs=[en-de,de-en]", "data.files.train=[a.en,a.de]"])
    with pytest.raises(UserError, match=r"data.pair_files.en-de.train"):
        M.direction_config(cfg.data, ("en", "de"))
    cfg = compose_train(["data=files", "data.pairs=[en-de,de-en]", "data.files.train=['t.{src}','t.{tgt}']",
                         "+data.pair_files.de-en.train=[x.de,x.en]"])
    assert M.direction_config(cfg.data, ("en", "de")).files["train"] == ["t.en", "t.de"]
    assert M.direction_config(cfg.data, ("de", "en")).files == {"train": ["x.de", "x.en"]}
    hub = compose_train(["data=hub", "data.hub_name=x", "data.hub_config='{src}-{tgt}'", "data.langs=[de,en]"])
    one = M.direction_config(hub.data, ("de", "en"))
    assert (one.hub_config, one.src_lang, one.tgt_lang, one.langs) == ("de-en", "de", "en", None)


def test_a_split_missing_from_pair_files_names_pair_files(tmp_path):
    from helpers.toy_multiway import write_multiway_corpus

    from rosettamt.data.pipeline import prepare_data

    root = write_multiway_corpus(tmp_path / "mw", sizes={"train": 50, "val": 5, "test": 5})
    cfg = compose_train(["data=files", "data.pairs=[en-de,de-en]",
                         f"+data.pair_files.en-de.train=[{root}/train.en,{root}/train.de]",
                         f"+data.pair_files.de-en.train=[{root}/train.de,{root}/train.en]",
                         f"data.cache_dir={tmp_path / 'cache'}"])
    with pytest.raises(UserError, match=r"^direction en-de: .*data.pair_files.en-de.val lists no files"):
        prepare_data(cfg.data, cfg.tokenizer)


# ---------------------------------------------------------------------------- sampling


def test_direction_counts_follow_the_temperature_rule():
    sizes = [9000, 1000]
    assert M.direction_counts(sizes, Sampling.temperature, 1.0) == [9000, 1000]  # T=1: as the data is
    assert M.direction_counts(sizes, Sampling.uniform, 1.0) == [5000, 5000]
    p = M.direction_probabilities(sizes, Sampling.temperature, 5.0)
    assert np.allclose(p, np.array([9000, 1000]) ** 0.2 / (np.array([9000, 1000]) ** 0.2).sum())
    counts = M.direction_counts(sizes, Sampling.temperature, 5.0)
    assert sum(counts) == 10000 and 5000 < counts[0] < 9000
    assert M.direction_counts([5, 5, 5], Sampling.temperature, 3.0, total=10) in ([4, 3, 3],)


def test_the_sampler_draws_each_direction_as_often_as_the_rule_says():
    from rosettamt.data.batching import TokenBatchSampler

    sizes = [300, 30]
    data = C.DataConfig(sampling=Sampling.uniform)
    groups = M.direction_groups(["en-de", "en-fr"], sizes, data)
    assert groups.counts == [165, 165]
    lens = np.random.default_rng(0).integers(1, 20, size=sum(sizes))
    sampler = TokenBatchSampler(lens, lens, 200, seed=3, groups=groups)
    seen = np.concatenate([np.asarray(b) for b in sampler.epoch_batches(0)])
    assert (seen < 300).sum() == 165 and (seen >= 300).sum() == 165  # the small direction is repeated
    assert len(np.unique(seen[seen < 300])) == 165  # the large one is drawn without repeats
    assert np.bincount(seen[seen >= 300] - 300, minlength=30).min() == 5  # 165 = 5 full passes + 15
    again = TokenBatchSampler(lens, lens, 200, seed=3, groups=groups)
    assert all((a == b).all() for a, b in zip(sampler.epoch_batches(1), again.epoch_batches(1)))
    assert not all(len(a) == len(b) and (a == b).all() for a, b in zip(sampler.epoch_batches(0),
                                                                         sampler.epoch_batches(1)))


# ---------------------------------------------------------------------------- tokenizer and ids


def test_the_tags_are_single_pieces_and_every_source_starts_with_its_targets_tag(prepared):
    cfg, data = prepared
    tok = data.tokenizer
    assert tok.joint and data.directions == [("en", "de"), ("en", "fr")]
    for lang in ("de", "fr"):
        assert tok._src.encode(tag(lang))[-1] == tok.tag_id(lang)  # one piece
        assert tok.encode_src([tag(lang)])[0][-1] == UNK_ID  # typed in a text it is no tag
        assert tok._src.id_to_piece(tok.tag_id(lang)) == tag(lang)
    assert tok.tag_id("de") != tok.tag_id("fr")
    with pytest.raises(UserError, match="<2cs>"):
        tok.tag_id("cs")
    for name, lang in (("en-de", "de"), ("en-fr", "fr")):
        for split in ("train", "val", "test"):
            ids = data.dir_ids[name][split]
            firsts = {row[0] for row in ids["src_ids"]}
            assert firsts == {tok.tag_id(lang)}, (name, split)
            plain = tok.encode_src(data.dir_corpus[name][split]["src"][:5])
            assert [row[1:] for row in ids["src_ids"][:5]] == plain  # the tag, then the usual ids
    # the training split is both directions; the same English source appears under both tags
    train = data.ids[cfg.data.train_split]
    assert len(train) == len(data.dir_ids["en-de"]["train"]) + len(data.dir_ids["en-fr"]["train"])
    assert data.groups.names == ["en-de", "en-fr"] and data.groups.starts == [0, len(data.dir_ids["en-de"]["train"])]


def test_the_tokenizer_text_is_balanced_across_languages(caplog):
    from datasets import Dataset

    big = Dataset.from_dict({"src": [f"big {i}" for i in range(900)], "tgt": [f"gross {i}" for i in range(900)]})
    small = Dataset.from_dict({"src": [f"big {i}" for i in range(900)], "tgt": [f"petit {i}" for i in range(100)] * 9})
    texts = M.language_texts({("en", "de"): big, ("en", "fr"): small})
    assert {k: len(v) for k, v in texts.items()} == {"en": 900, "de": 900, "fr": 100}
    tok = C.TokenizerConfig(input_sentence_size=0)
    uniform = list(M.balanced_sentences(texts, tok, C.DataConfig(sampling=Sampling.uniform)))
    assert len(uniform) == 1900 and sum(s.startswith("petit") for s in uniform) in (633, 634)
    proportional = list(M.balanced_sentences(texts, tok, C.DataConfig(sampling_temperature=1.0)))
    assert sum(s.startswith("petit") for s in proportional) == 100


def test_the_tokenizer_cache_key_changes_with_the_tags():
    data = C.DataConfig()
    hashes = {"en-de": "a", "en-fr": "b"}
    assert M.tokenizer_key(hashes, ["<2de>", "<2fr>"], data) != M.tokenizer_key(hashes, ["<2de>", "<2en>"], data)
    assert M.tokenizer_key(hashes, ["<2de>", "<2fr>"], data) == M.tokenizer_key(dict(hashes), ["<2de>", "<2fr>"], data)
    uniform = C.DataConfig(sampling=Sampling.uniform)
    assert M.tokenizer_key(hashes, ["<2de>"], data) != M.tokenizer_key(hashes, ["<2de>"], uniform)


def test_multi30k_directions_skip_the_split_czech_lacks(multi30k_dir, tmp_path, caplog):
    from helpers.toy import write_multi30k_slice
    from rosettamt.data.pipeline import prepare_data

    root = write_multi30k_slice(multi30k_dir, tmp_path / "m30k", n=200, langs=("en", "de", "cs"),
                                splits=("train", "val", "test_2016_flickr"))
    with gzip.open(multi30k_dir / "test_2017_flickr.en.gz", "rt", encoding="utf-8") as f:
        lines = [next(f) for _ in range(50)]
    for lang in ("en", "de"):
        with gzip.open(multi30k_dir / f"test_2017_flickr.{lang}.gz", "rt", encoding="utf-8") as f:
            lines = [next(f) for _ in range(50)]
        with gzip.open(root / f"test_2017_flickr.{lang}.gz", "wt", encoding="utf-8") as f:
            f.writelines(lines)
    cfg = compose_train([f"data.dir={root}", f"data.cache_dir={tmp_path / 'cache'}", "data.download=false",
                         "data.pairs=[en-de,en-cs,cs-de]", "tokenizer.vocab_size=500", "model=tiny"])
    C.check_train(cfg)
    with caplog.at_level(logging.INFO):
        data = prepare_data(cfg.data, cfg.tokenizer, cfg.seed)
    assert "test_2017_flickr" in data.dir_ids["en-de"] and "test_2017_flickr" not in data.dir_ids["en-cs"]
    assert "test_2017_flickr has no Czech side; skipping it for en-cs" in caplog.text
    assert len(data.ids["test_2017_flickr"]) == 50 and len(data.ids["test_2016_flickr"]) == 600
    assert set(data.tokenizer.state_dict()) and data.tokenizer.tag_id("cs") != data.tokenizer.tag_id("de")


# ---------------------------------------------------------------------------- training


def test_batches_mix_directions_and_validation_is_per_direction_and_averaged(multiway, tmp_path):
    from rosettamt.train.loop import train

    cfg = compose_train(multiway_overrides(multiway, tmp_path / "cache", "data.pairs=[en-de,en-fr]",
                                           "trainer.max_steps=10", "trainer.val_every=5", "trainer.save_every=5",
                                           "trainer.val_max_sentences=8"))
    firsts = []
    result = train(cfg, tmp_path / "run", on_batch=lambda step, b: firsts.append(b.src[:, 0].tolist()))
    from rosettamt.data.tokenizer import Tokenizer
    from rosettamt.checkpoint import load_checkpoint

    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    tok = Tokenizer.from_state_dict(ckpt["tokenizer"])
    tags = {tok.tag_id("de"), tok.tag_id("fr")}
    assert all(set(f) <= tags for f in firsts)  # the tag reaches the encoder: the first source id
    assert any(len(set(f)) == 2 for f in firsts)  # batches mix directions
    assert ckpt["config"]["data"]["pairs"] == ["en-de", "en-fr"]  # what inference reads the directions from
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    vals = [r for r in records if r["kind"] == "val"]
    assert vals and all(set(r["directions"]) == {"en-de", "en-fr"} for r in vals)
    for r in vals:
        per = r["directions"]
        assert r["bleu"] == pytest.approx((per["en-de"]["bleu"] + per["en-fr"]["bleu"]) / 2)
        assert r["chrf"] == pytest.approx((per["en-de"]["chrf"] + per["en-fr"]["chrf"]) / 2)
        assert r["sentences"] == 16 and per["en-de"]["sentences"] == 8
    log = (tmp_path / "run" / "train.log").read_text()
    line = next(line for line in log.splitlines() if "validation step 10:" in line)
    assert "en-de " in line and "en-fr " in line
    assert result.step == 10


def test_validate_directions_is_the_mean_of_each_directions_validate(prepared):
    from rosettamt.model import Seq2SeqTransformer
    from rosettamt.train.validate import build_valset, validate, validate_directions

    cfg, data = prepared
    cfg.model.src_vocab_size = cfg.model.tgt_vocab_size = data.tokenizer.src_vocab_size
    cfg.model.joint_vocab = True
    torch.manual_seed(0)
    model = Seq2SeqTransformer(cfg.model).eval()
    valsets = {n: build_valset(data.dir_ids[n]["val"], data.dir_corpus[n]["val"], 512, 6) for n in data.dir_ids}
    args = (data.tokenizer, cfg.decode, torch.device("cpu"), None, 0.1, 0)
    each = {n: validate(model, v, *args) for n, v in valsets.items()}
    both = validate_directions(model, valsets, *args)
    assert both["loss"] == pytest.approx(sum(e["loss"] for e in each.values()) / 2)
    assert both["bleu"] == pytest.approx(sum(e["bleu"] for e in each.values()) / 2)
    assert both["directions"]["en-fr"]["chrf"] == pytest.approx(each["en-fr"]["chrf"])
    assert valsets["en-de"].src_ids[0][0] == data.tokenizer.tag_id("de")


# ---------------------------------------------------------------------------- bilingual runs unchanged

# Recorded with the code before multilingual support (commit 6e01605, torch 2.13.0 on CPU): the toy
# pair below, 12 steps. The tokenizer cache key, the id cache files and every batch (indices and
# ids) must stay exactly these; the weights too where the same torch build runs.
BEFORE = {
    "tokenizer": "48ad2dcf759aefed19f2b90340da7fb1",
    "ids": ["ids/ad8bcdd3baf2928b59875c6eaeb4b179/test.95b459ba94062499.arrow",
            "ids/ad8bcdd3baf2928b59875c6eaeb4b179/train.73b32a3d9cf5e071.max128.arrow",
            "ids/ad8bcdd3baf2928b59875c6eaeb4b179/val.13f5a167287e3efc.arrow"],
    "batches": "63e74386ed632328d9b92d42ca593980d01dbafd5cd19dc0be4889b29e78b8d8",
    "weights": "1ea6fd6a7babd851fdff92ec425e0f8c22d7ec5cb6ca40cb0bf054996d632b08",
    "torch": "2.13.0",
}


def test_a_bilingual_run_is_what_it_was_before_multilingual_support(tmp_path):
    from rosettamt.train.loop import train

    files = write_toy_corpus(tmp_path / "corpus", {"train": 400, "val": 30, "test": 30})
    cfg = compose_train(toy_overrides(files, tmp_path / "cache", "trainer.max_steps=12", "trainer.val_every=6"))
    seen = []
    result = train(cfg, tmp_path / "run", on_batch=lambda s, b: seen.append((s, b.src.tolist()[:3], b.indices.tolist())))
    assert sorted(p.name for p in (tmp_path / "cache" / "tokenizers").iterdir()) == [BEFORE["tokenizer"]]
    ids = sorted(str(p.relative_to(tmp_path / "cache")) for p in (tmp_path / "cache" / "ids").rglob("*.arrow"))
    assert ids == BEFORE["ids"]
    assert hashlib.sha256(json.dumps(seen).encode()).hexdigest() == BEFORE["batches"]
    if torch.__version__.split("+")[0] == BEFORE["torch"]:
        h = hashlib.sha256()
        for _, v in sorted(result.model.state_dict().items()):
            h.update(v.numpy().tobytes())
        assert h.hexdigest() == BEFORE["weights"]
    assert "directions" not in (tmp_path / "run" / "metrics.jsonl").read_text()


def test_hub_multiway_translation_records_give_every_direction(multiway, tmp_path):
    from datasets import Dataset, DatasetDict

    from rosettamt.data.pipeline import prepare_data

    def records(split):
        lines = {lang: (multiway / f"{split}.{lang}").read_text(encoding="utf-8").splitlines() for lang in ("en", "de", "fr")}
        return Dataset.from_dict({"translation": [dict(zip(lines, row)) for row in zip(*lines.values())]})

    DatasetDict({"train": records("train"), "validation": records("val"), "test": records("test")}).save_to_disk(
        str(tmp_path / "hub"))
    cfg = compose_train(["data=hub", f"data.hub_name={tmp_path / 'hub'}", "data.langs=[en,de,fr]",
                         f"data.cache_dir={tmp_path / 'cache'}", "tokenizer.vocab_size=200", "model=tiny"])
    C.check_train(cfg)
    assert (cfg.data.src_lang, cfg.data.tgt_lang) == ("de", "en")  # data=hub's default direction, trained: kept
    data = prepare_data(cfg.data, cfg.tokenizer, cfg.seed)
    assert sorted(data.dir_corpus) == ["de-en", "de-fr", "en-de", "en-fr", "fr-de", "fr-en"]
    en = (multiway / "val.en").read_text(encoding="utf-8").splitlines()
    fr = (multiway / "val.fr").read_text(encoding="utf-8").splitlines()
    assert data.dir_corpus["fr-en"]["val"][0] == {"src": fr[0], "tgt": en[0]}
    assert {row[0] for row in data.dir_ids["fr-en"]["test"]["src_ids"]} == {data.tokenizer.tag_id("en")}


def test_a_multilingual_run_resumes_bit_identically_across_epochs(tmp_path):
    from rosettamt.train.loop import train

    root = write_multiway_corpus(tmp_path / "corpus", {"train": 80, "val": 10, "test": 10}, seed=3)

    def cfg(*extra):
        return compose_train(multiway_overrides(root, tmp_path / "cache", "data.pairs=[en-de,de-fr]",
                                                "data.sampling=uniform", "model.dropout=0.2", "trainer.val_every=0",
                                                "trainer.save_every=7", "trainer.val_max_sentences=4", *extra))

    full = train(cfg("trainer.max_steps=24"), tmp_path / "full")
    train(cfg("trainer.max_steps=9"), tmp_path / "part")
    again = train(cfg("trainer.max_steps=24", "trainer.resume=true"), tmp_path / "part")
    assert again.epoch >= 1
    assert all(torch.equal(a, b) for a, b in zip(full.model.state_dict().values(), again.model.state_dict().values()))


def test_a_directions_missing_file_is_named_with_its_direction(multiway, tmp_path):
    from rosettamt.data.pipeline import prepare_data

    cfg = compose_train(multiway_overrides(multiway, tmp_path / "cache", "data.pairs=[en-de,en-cs]"))
    with pytest.raises(UserError, match=r"^direction en-cs: data.files.train: .*train.cs") as err:
        prepare_data(cfg.data, cfg.tokenizer, cfg.seed)
    assert "\n" not in str(err.value)


def test_per_direction_validation_scores_reach_tensorboard(tmp_path):
    from rosettamt.train.metrics import MetricsLog

    calls = []

    class Writer:
        def add_scalar(self, tag, value, step):
            calls.append((tag, value, step))

    log = MetricsLog(tmp_path, tensorboard=False)
    log._tb = Writer()
    log.write({"kind": "val", "step": 5, "bleu": 2.0, "directions": {"en-de": {"bleu": 3.0, "chrf": 9.0}}})
    assert ("val/bleu", 2.0, 5) in calls and ("val/en-de/bleu", 3.0, 5) in calls and ("val/en-de/chrf", 9.0, 5) in calls
    assert json.loads((tmp_path / "metrics.jsonl").read_text())["directions"]["en-de"]["bleu"] == 3.0
