"""The seams of the corpus: each source through load_corpus, and cache names that must not drift.

The cache file names and content hashes below were computed before the corpus
module was split; if they change, every prepared cache on disk turns into a miss.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from datasets import Dataset

from rosettamt.config import DataConfig, Source
from rosettamt.data.corpus import SOURCES, content_hash, load_corpus
from rosettamt.errors import UserError

TRAIN_HASH = "d6baae1fb8953bfe8a21660e0c3e0ad17cc22de8c435932af49cdafc8fd0ed2a"


def _toy(tmp_path: Path) -> Path:
    d = tmp_path / "text"
    d.mkdir()
    (d / "train.en").write_bytes(b"Hello world\nGood day\n\n")
    (d / "train.de").write_bytes(b"Hallo Welt\nGuten Tag\nleer\n")
    (d / "val.tsv").write_bytes(b"Danke\tThanks\nBitte\tPlease\n")
    m = d / "m30k"
    m.mkdir()
    for lang, text in (("en", b"Hello world\nGood day\n"), ("de", b"Hallo Welt\nGuten Tag\n")):
        (m / f"train.{lang}.gz").write_bytes(gzip.compress(text, mtime=0))
    return d


def _name(ds: Dataset) -> str:
    return Path(ds.cache_files[0]["filename"]).name


def test_every_source_has_a_loader():
    assert set(SOURCES) == set(Source)


def test_cache_names_and_content_hashes_are_stable(tmp_path):
    d = _toy(tmp_path)
    files = DataConfig(source=Source.files, files={"train": [str(d / "train.en"), str(d / "train.de")],
                                                   "val": [str(d / "val.tsv")]},
                       val_split="val", test_splits=[], cache_dir=str(tmp_path / "cache"))
    corpus = load_corpus(files)
    assert _name(corpus["train"]) == "219ccdb4398757fef9d6259f54bb82de.arrow"
    assert _name(corpus["val"]) == "911465d1aa3c01741cc7cbc32c40445d.arrow"
    assert content_hash(corpus["train"]) == TRAIN_HASH
    assert content_hash(corpus["val"]) == "47409250d6cd1afc1772866355d6212956de9b4e9ef02d359cf4bfd79894701b"
    m30k = DataConfig(source=Source.multi30k, dir=str(d / "m30k"), download=False, src_lang="en", tgt_lang="de",
                      val_split="", test_splits=[], cache_dir=str(tmp_path / "cache"))
    train = load_corpus(m30k)["train"]
    assert _name(train) == "434f7ea42c9aa75f6a31565aacbc29eb.arrow"
    assert content_hash(train) == TRAIN_HASH  # same pairs, other files: same hash
    tiny = Dataset.from_dict({"src": ["a"], "tgt": ["b"]})
    assert content_hash(tiny) == "4138c7729c26f0ae561c3cc6baceef71ffcee3ff7b135f1d424d58048a8ff56b"


@pytest.mark.parametrize("source", list(Source))
def test_a_bad_path_is_one_line_naming_it(source, tmp_path):
    bad = tmp_path / "no-such-place-xyz"
    cfg = {Source.multi30k: lambda: DataConfig(source=source, dir=str(bad), download=False),
           Source.files: lambda: DataConfig(source=source, files={"train": [str(bad)]}, val_split="",
                                            test_splits=[]),
           Source.hub: lambda: DataConfig(source=source, hub_name=str(bad), val_split="", test_splits=[])}[source]()
    cfg.cache_dir = str(tmp_path / "cache")
    with pytest.raises(UserError) as err:
        load_corpus(cfg)
    msg = str(err.value)
    assert "\n" not in msg and str(bad) in msg
