"""Inputs rosettamt must not take on trust (issue 15), checked in-process: the Translator's items and
options, atomic outputs, the data config stored in a checkpoint, checkpoints to average."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from rosettamt.atomic import atomic_open, check_creatable, writable_dir
from rosettamt.checkpoint import load_checkpoint, save_checkpoint
from rosettamt.config import DataConfig
from rosettamt.errors import UserError
from rosettamt.evaluate.corpus_config import corpus_config, stored_data


@pytest.mark.parametrize("items,message", [
    (["A dog.", None], "item 1 is NoneType"),
    ([3.5], "item 0 is float"),
    (["ok", b"bytes"], "item 1 is bytes"),
    (b"A dog.", "got bytes"),
    (7, "got int"),
])
def test_translate_refuses_items_that_are_not_strings(translator, items, message):
    with pytest.raises(TypeError, match=message):
        translator.translate(items)


def test_translate_refuses_absurd_options(translator):
    assert translator.translate(["A dog runs."], min_len=5)  # sane values still work
    for options, message in [({"length_penalty": math.nan}, "length_penalty=nan"),
                             ({"min_len": 10**9}, "min_len=1000000000 must be below the model's max_positions=128"),
                             ({"beam_size": 0}, "beam_size=0")]:
        with pytest.raises(UserError, match=message):
            translator.translate(["A dog runs."], **options)


def test_atomic_open_replaces_the_file_only_when_the_block_completes(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old\n")
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(path, "w") as f:
            f.write("half")
            raise KeyboardInterrupt
    assert path.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    with pytest.raises(FileNotFoundError):  # an error about another file is not a write error of this one
        with atomic_open(path, "w") as f:
            open(tmp_path / "missing")
    with atomic_open(path, "w") as f:
        f.write("new\n")
    assert path.read_text() == "new\n" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_folders_that_cannot_be_written_are_named_before_any_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match=rf"data.cache_dir={blocker}/c: {blocker} is a file, not a directory"):
        writable_dir(blocker / "c", "data.cache_dir")
    with pytest.raises(UserError, match="is a file, not a directory"):
        check_creatable(blocker, "output_dir")
    assert writable_dir(tmp_path / "a" / "b", "x").is_dir()
    if os.geteuid() != 0:  # root may write read-only folders
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        with pytest.raises(UserError, match="is not writable"):
            check_creatable(ro / "sub", "hydra.run.dir")


def test_only_the_safe_fields_of_a_stored_data_config_are_used(tmp_path):
    stored = {"config": {"data": {"source": "multi30k", "src_lang": "de", "tgt_lang": "en", "dir": "/elsewhere",
                                  "url": "http://example.invalid/x", "download": True, "cache_dir": "/etc/x",
                                  "files": {"test": ["/etc/passwd", "/etc/passwd"]}, "hub_name": "evil/set",
                                  "num_proc": 512, "test_splits": ["val"]}}}
    data = stored_data(stored, tmp_path / "x.pt")
    default = DataConfig()
    assert (data.src_lang, data.tgt_lang, data.test_splits) == ("de", "en", ["val"])
    assert (data.dir, data.url, data.cache_dir, data.files, data.hub_name, data.num_proc) == (
        default.dir, default.url, default.cache_dir, {}, None, default.num_proc)
    assert data.download is False
    user, _ = corpus_config(stored, tmp_path / "x.pt", None, tmp_path / "corpus", ["download=true", "cache_dir=c"])
    assert (user.dir, user.download, user.cache_dir, user.src_lang) == (str(tmp_path / "corpus"), True, "c", "de")
    for bad, message in [({"config": {"data": ["x"]}}, "config.data is a list"),
                         ({"config": {"data": {"src_lang": {"a": 1}}}}, "config.data.src_lang is invalid")]:
        with pytest.raises(UserError, match=message):
            stored_data(bad, tmp_path / "x.pt")
    with pytest.raises(UserError, match="data.nope"):
        corpus_config(stored, tmp_path / "x.pt", None, None, ["nope=1"])


def test_average_refuses_different_tokenizers_and_models_naming_both_files(ckpt, tmp_path):
    from helpers.toy_checkpoint import other_tokenizer_checkpoint
    from rosettamt.train.average import average_checkpoints

    other = other_tokenizer_checkpoint(ckpt, tmp_path)
    with pytest.raises(UserError, match=rf"cannot average {ckpt} and {other}: their tokenizers differ"):
        average_checkpoints([ckpt, other])
    changed = load_checkpoint(ckpt)
    changed["model_config"]["dropout"] = 0.3  # same shapes, another model config
    save_checkpoint(changed, tmp_path / "changed.pt")
    with pytest.raises(UserError, match=rf"cannot average {ckpt} and {tmp_path / 'changed.pt'}: different models"):
        average_checkpoints([ckpt, tmp_path / "changed.pt"])


def test_train_refuses_a_min_len_the_model_cannot_generate_before_any_data_work(toy_files, tmp_path):
    from helpers.train_toy import compose_train, toy_overrides
    from rosettamt.train.loop import train

    cfg = compose_train(toy_overrides(toy_files, tmp_path / "cache", "decode.min_len=100000"))
    with pytest.raises(UserError, match="decode.min_len=100000 must be below the model's max_positions"):
        train(cfg, tmp_path / "run")
    assert not (tmp_path / "cache").exists()


def test_what_a_checkpoint_says_about_itself_reaches_banners_only_when_sane(ckpt, tmp_path):
    from rosettamt.checkpoint.model_state import stored_info
    from rosettamt.translate import Translator

    state = load_checkpoint(ckpt)
    state.update(config=[1], step="7; rm -rf", val_bleu=[3])
    save_checkpoint(state, tmp_path / "odd.pt")
    assert Translator.from_checkpoint(tmp_path / "odd.pt", device="cpu").checkpoint_info == {
        "src_lang": None, "tgt_lang": None, "step": None, "val_bleu": None}
    assert stored_info({"config": {"data": {"src_lang": "\x1b[2Jen", "tgt_lang": "de"}}, "step": 5}) == {
        "src_lang": None, "tgt_lang": "de", "step": 5, "val_bleu": None}
