"""Corpus loading: the three sources, every validation error, the Arrow cache and the download step."""

from __future__ import annotations

import functools
import gzip
import http.server
import logging
import os
import socket
import threading
from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict

from rosettamt.config import DataConfig, Source
from rosettamt.data.corpus import content_hash, load_corpus, load_corpus_with_stats
from rosettamt.data.download import MARKER
from rosettamt.errors import UserError


def _m30k(root: Path, tmp_path: Path, **kw) -> DataConfig:
    return DataConfig(source=Source.multi30k, dir=str(root), download=False,
                      cache_dir=str(tmp_path / "cache"), **kw)


def _files(files: dict, tmp_path: Path, **kw) -> DataConfig:
    kw.setdefault("test_splits", [])
    kw.setdefault("val_split", "val" if "val" in files else "")
    return DataConfig(source=Source.files, files=files, cache_dir=str(tmp_path / "cache"), **kw)


def _write(path: Path, lines: list[str] | bytes) -> str:
    data = lines if isinstance(lines, bytes) else ("\n".join(lines) + "\n").encode("utf-8")
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return str(path)


def _mini_m30k(root: Path, langs=("en", "de", "cs"), n: int = 3, gz: bool = True) -> Path:
    """A tiny Multi30k-shaped directory (no Czech test_2017, like the real one)."""
    root.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val", "test_2016_flickr", "test_2017_flickr"):
        for lang in langs:
            if split == "test_2017_flickr" and lang == "cs":
                continue
            _write(root / (f"{split}.{lang}" + (".gz" if gz else "")), [f"{split} {lang} {i}" for i in range(n)])
    return root


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


# ---------------------------------------------------------------------------- multi30k


def test_multi30k_slice_loads_every_split_memory_mapped(multi30k_slice, multi30k_dir, tmp_path):
    cfg = _m30k(multi30k_slice, tmp_path, src_lang="de", tgt_lang="en")
    corpus = load_corpus(cfg)
    assert list(corpus) == ["train", "val", "test_2016_flickr", "test_2017_flickr"]
    for split, ds in corpus.items():
        assert ds.column_names == ["src", "tgt"] and len(ds) == 500
        assert ds.cache_files and all(Path(f["filename"]).is_relative_to(tmp_path / "cache") for f in ds.cache_files)
    with gzip.open(multi30k_dir / "val.de.gz", "rt", encoding="utf-8") as f:
        first_de = next(f).strip()
    with gzip.open(multi30k_dir / "val.en.gz", "rt", encoding="utf-8") as f:
        first_en = next(f).strip()
    assert corpus["val"][0] == {"src": first_de, "tgt": first_en}  # direction follows src_lang/tgt_lang


def test_plain_files_and_czech_without_test_2017(tmp_path, caplog):
    root = _mini_m30k(tmp_path / "m", gz=False)
    with caplog.at_level(logging.INFO, logger="rosettamt"):
        corpus = load_corpus(_m30k(root, tmp_path, src_lang="cs", tgt_lang="en"))
    assert list(corpus) == ["train", "val", "test_2016_flickr"]
    assert corpus["train"][1] == {"src": "train cs 1", "tgt": "train en 1"}
    assert "test_2017_flickr" in caplog.text


def test_unknown_language_code_lists_the_known_ones(tmp_path):
    root = _mini_m30k(tmp_path / "m")
    with pytest.raises(UserError) as err:
        load_corpus(_m30k(root, tmp_path, src_lang="xx", tgt_lang="en"))
    msg = _one_line(err)
    assert "data.src_lang='xx'" in msg and all(lang in msg for lang in ("en", "de", "fr", "cs"))


def test_unknown_split_name_lists_the_multi30k_splits(tmp_path):
    root = _mini_m30k(tmp_path / "m")
    with pytest.raises(UserError) as err:
        load_corpus(_m30k(root, tmp_path, test_splits=["test_2018"]))
    msg = _one_line(err)
    assert "test_2018" in msg and "test_2016_flickr" in msg and "data.test_splits" in msg


def test_missing_split_file_says_what_the_directory_holds(tmp_path):
    root = _mini_m30k(tmp_path / "m")
    (root / "val.de.gz").unlink()
    with pytest.raises(UserError) as err:
        load_corpus(_m30k(root, tmp_path))
    msg = _one_line(err)
    assert "val.de.gz" in msg and "train.de.gz" in msg and "val.en.gz" in msg


def test_missing_directory_says_what_exists(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(UserError) as err:
        load_corpus(_m30k(tmp_path / "nope" / "multi30k", tmp_path))
    msg = _one_line(err)
    assert "does not exist" in msg and "elsewhere" in msg and "data.dir=" in msg


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_unreachable_is_one_line_naming_data_dir(tmp_path):
    cfg = DataConfig(dir=str(tmp_path / "m30k"), download=True, url=f"http://127.0.0.1:{_closed_port()}/raw",
                     cache_dir=str(tmp_path / "cache"))
    with pytest.raises(UserError) as err:
        load_corpus(cfg)
    msg = _one_line(err)
    assert "network unreachable" in msg and "data.dir=" in msg
    assert not any(p.suffix == ".gz" for p in (tmp_path / "m30k").iterdir())  # nothing half-written


@pytest.fixture
def http_root(tmp_path):
    """A local HTTP server standing in for the Multi30k repository."""
    root = _mini_m30k(tmp_path / "served", langs=("en", "de"), n=4)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_fills_an_empty_directory_but_never_a_local_copy(http_root, tmp_path, caplog):
    target = tmp_path / "m30k"
    cfg = DataConfig(dir=str(target), download=True, url=http_root, cache_dir=str(tmp_path / "cache"))
    corpus = load_corpus(cfg)
    assert len(corpus["train"]) == 4 and (target / MARKER).is_file() and (target / "val.de.gz").is_file()
    with caplog.at_level(logging.WARNING, logger="rosettamt"):  # another URL: the files there are the old ones
        load_corpus(DataConfig(dir=str(target), download=True, url=http_root + "/mirror/",
                               cache_dir=str(tmp_path / "cache")))
    assert f"holds files fetched from {http_root}; data.url={http_root}/mirror/" in caplog.text
    # a user's own directory (no marker, not empty) missing a file is an error, not a download
    own = _mini_m30k(tmp_path / "own", langs=("en", "de"))
    (own / "train.de.gz").unlink()
    with pytest.raises(UserError, match="train.de.gz"):
        load_corpus(DataConfig(dir=str(own), download=True, url=http_root, cache_dir=str(tmp_path / "cache")))
    assert not (own / MARKER).exists()


class _BadServer(http.server.BaseHTTPRequestHandler):
    """Replies as broken servers and proxies do: /short announces more bytes than it sends,
    /page is an HTML error page with status 200, /trickle sends a byte at a time, /ssh is not HTTP."""

    body = gzip.compress(b"ein satz\n" * 200)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        mode = self.path.split("/")[1]
        if mode == "ssh":
            self.wfile.write(b"SSH-2.0-OpenSSH_9.0\r\n")
            return
        data = b"<html>rate limited</html>" if mode == "page" else self.body
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if mode == "short":
            self.wfile.write(data[: len(data) // 2])
        elif mode == "trickle":
            for i in range(len(data)):
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
                threading.Event().wait(0.05)
        else:
            self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize("mode, message", [
    ("short", r"was cut short \(\d+ of \d+ bytes\)"),
    ("page", "is not a complete gzip file"),
    ("trickle", r"took more than 1 s"),
    ("ssh", "failed \\((BadStatusLine|RemoteDisconnected|HTTPException)"),
    ("ok", None),
])
def test_a_download_is_kept_only_when_it_is_whole(mode, message, tmp_path):
    from rosettamt.data.download import download_files

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _BadServer)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/{mode}"
        if message is None:
            download_files(tmp_path, base, ["train.de.gz"], deadline=60)
            assert (tmp_path / "train.de.gz").read_bytes() == _BadServer.body
            return
        with pytest.raises(UserError, match=message) as err:
            download_files(tmp_path, base, ["train.de.gz"], deadline=1)
        assert "\n" not in str(err.value) and base in str(err.value)
        assert sorted(p.name for p in tmp_path.iterdir()) == [MARKER]  # no file, no leftover .part
    finally:
        server.shutdown()


@pytest.mark.parametrize("url", ["", "corpus/multi30k", "ftp://example.org/m30k"])
def test_a_data_url_that_is_no_url_is_one_line(url, tmp_path):
    from rosettamt.data.download import download_files

    with pytest.raises(UserError, match=r"data.url=.* is not an http://, https:// or file:// URL"):
        download_files(tmp_path / "m30k", url, ["train.de.gz"])
    assert not (tmp_path / "m30k").exists()


# ---------------------------------------------------------------------------- validation


def test_line_count_mismatch_names_both_files_and_counts(tmp_path):
    src = _write(tmp_path / "train.en", ["a", "b", "c"])
    tgt = _write(tmp_path / "train.de", ["x", "y"])
    with pytest.raises(UserError) as err:
        load_corpus(_files({"train": [src, tgt]}, tmp_path))
    msg = _one_line(err)
    assert f"{src} has 3 lines" in msg and f"{tgt} has 2" in msg


def test_invalid_utf8_names_file_and_line(tmp_path):
    src = _write(tmp_path / "train.en.gz", ["ok", "fine", "still fine"])
    tgt = _write(tmp_path / "train.de.gz", "gut\ngut\n".encode() + b"caf\xe9\n")  # latin-1, line 3
    with pytest.raises(UserError) as err:
        load_corpus(_files({"train": [src, tgt]}, tmp_path))
    assert f"{tgt}:3:" in _one_line(err) and "UTF-8" in str(err.value)


def test_empty_pairs_are_dropped_and_counted_per_split(tmp_path, caplog):
    src = _write(tmp_path / "train.en", ["one", "", "three", "   ", "five"])
    tgt = _write(tmp_path / "train.de", ["eins", "zwei", "\t", "vier", "fünf"])
    val = _write(tmp_path / "val.tsv", ["a\tb", "", "c\t "])
    with caplog.at_level(logging.INFO, logger="rosettamt"):
        corpus, stats = load_corpus_with_stats(_files({"train": [src, tgt], "val": [val]}, tmp_path))
    assert corpus["train"]["src"] == ["one", "five"] and corpus["train"]["tgt"] == ["eins", "fünf"]
    assert (stats["train"].pairs, stats["train"].dropped_empty) == (2, 3)
    assert (stats["val"].pairs, stats["val"].dropped_empty) == (1, 2)
    assert "train: dropped 3" in caplog.text and "val: dropped 2" in caplog.text


def test_tsv_with_wrong_column_count_names_the_line(tmp_path):
    tsv = _write(tmp_path / "train.tsv", ["a\tb", "c\td\te"])
    with pytest.raises(UserError) as err:
        load_corpus(_files({"train": [tsv]}, tmp_path))
    assert f"{tsv}:2:" in _one_line(err) and "found 3" in str(err.value)


def test_files_missing_split_and_missing_file(toy_files, tmp_path):
    with pytest.raises(UserError) as err:
        load_corpus(_files({"train": toy_files["train"], "val": []}, tmp_path))
    msg = _one_line(err)
    assert "'val'" in msg and "data.files.val" in msg and "splits with files: train" in msg
    with pytest.raises(UserError) as err:
        load_corpus(_files({"train": [toy_files["train"][0], str(tmp_path / "gone.de")], "val": toy_files["val"]},
                           tmp_path))
    assert "gone.de does not exist" in _one_line(err)


def test_files_source_and_cache_reuse(toy_files, tmp_path):
    cfg = _files(toy_files, tmp_path, test_splits=["test"])
    corpus = load_corpus(cfg)
    assert {s: len(d) for s, d in corpus.items()} == {"train": 2000, "val": 100, "test": 100}
    first = corpus["train"].cache_files[0]["filename"]
    mtime = os.stat(first).st_mtime_ns
    again = load_corpus(cfg)
    assert again["train"].cache_files[0]["filename"] == first and os.stat(first).st_mtime_ns == mtime
    # changing the text changes the cache key
    edited = tmp_path / "train.edited"
    lines = Path(toy_files["train"][1]).read_text(encoding="utf-8").splitlines()
    _write(edited, ["changed"] + lines[1:])
    cfg2 = _files({**toy_files, "train": [toy_files["train"][0], str(edited)]}, tmp_path, test_splits=["test"])
    changed = load_corpus(cfg2)["train"]
    assert changed.cache_files[0]["filename"] != first and changed[0]["tgt"] == "changed"
    assert content_hash(changed) != content_hash(corpus["train"])


def test_content_hash_depends_on_text_not_on_where_it_came_from(toy_files, tmp_path):
    from_files = load_corpus(_files({"train": toy_files["train"]}, tmp_path))["train"]
    in_memory = Dataset.from_dict({"src": from_files["src"], "tgt": from_files["tgt"]})
    assert content_hash(in_memory) == content_hash(from_files)
    swapped = Dataset.from_dict({"src": from_files["tgt"], "tgt": from_files["src"]})
    assert content_hash(swapped) != content_hash(from_files)


# ---------------------------------------------------------------------------- hub (local stand-ins)


PAIRS = {"train": [("Hallo Welt", "Hello world"), ("Guten Tag", "Good day"), ("", "empty source")],
         "validation": [("Danke", "Thanks")], "test": [("Bitte", "Please")]}


def _hub_cfg(path: Path, tmp_path: Path, **kw) -> DataConfig:
    kw = {"hub_splits": {"train": "train", "val": "validation", "test": "test"}, "src_lang": "de",
          "tgt_lang": "en", "val_split": "val", "test_splits": ["test"], **kw}
    return DataConfig(source=Source.hub, hub_name=str(path), cache_dir=str(tmp_path / "cache"), **kw)


@pytest.fixture
def translation_dir(tmp_path) -> Path:
    d = DatasetDict({s: Dataset.from_dict({"id": list(range(len(p))),
                                           "translation": [{"de": a, "en": b} for a, b in p]})
                     for s, p in PAIRS.items()})
    d.save_to_disk(str(tmp_path / "translation_records"))
    return tmp_path / "translation_records"


def test_hub_translation_records_from_save_to_disk(translation_dir, tmp_path):
    corpus, stats = load_corpus_with_stats(_hub_cfg(translation_dir, tmp_path))
    assert list(corpus) == ["train", "val", "test"]
    assert corpus["train"][:] == {"src": ["Hallo Welt", "Guten Tag"], "tgt": ["Hello world", "Good day"]}
    assert stats["train"].dropped_empty == 1 and corpus["val"][0] == {"src": "Danke", "tgt": "Thanks"}
    reverse = load_corpus(_hub_cfg(translation_dir, tmp_path, src_lang="en", tgt_lang="de"))
    assert reverse["test"][0] == {"src": "Please", "tgt": "Bitte"}


def test_hub_two_columns_and_a_local_parquet_folder(tmp_path):
    folder = tmp_path / "parquet"
    folder.mkdir()
    for split, pairs in PAIRS.items():
        Dataset.from_dict({"de_text": [a for a, _ in pairs], "en_text": [b for _, b in pairs]}).to_parquet(
            str(folder / f"{split}.parquet"))
    cfg = _hub_cfg(folder, tmp_path, src_column="de_text", tgt_column="en_text")
    corpus = load_corpus(cfg)
    assert corpus["train"]["tgt"] == ["Hello world", "Good day"] and corpus["test"][0]["src"] == "Bitte"
    saved = tmp_path / "columns"
    DatasetDict({s: Dataset.from_dict({"de_text": [a for a, _ in p], "en_text": [b for _, b in p]})
                 for s, p in PAIRS.items()}).save_to_disk(str(saved))
    assert load_corpus(_hub_cfg(saved, tmp_path, src_column="de_text", tgt_column="en_text"))["val"][0] == \
        {"src": "Danke", "tgt": "Thanks"}


def test_a_local_hub_folder_edited_with_its_mtime_kept_is_read_again(tmp_path):
    """datasets keys a folder of data files by path and modification time: a file rewritten with
    the same size and its old mtime put back (cp -p, rsync -t, a checkout tool) used to be served
    from the cache, old text and all. The change time (which no tool can set back) now counts too."""
    import json as _json

    folder = tmp_path / "jsonl"
    folder.mkdir()

    def write(split, pairs):
        (folder / f"{split}.jsonl").write_text("".join(_json.dumps({"de_text": a, "en_text": b}) + "\n"
                                                       for a, b in pairs), encoding="utf-8")

    for split, pairs in PAIRS.items():
        write(split, pairs)
    cfg = _hub_cfg(folder, tmp_path, src_column="de_text", tgt_column="en_text")
    assert load_corpus(cfg)["train"]["tgt"] == ["Hello world", "Good day"]
    train = folder / "train.jsonl"
    before = train.stat()
    write("train", [("Hallo Welt", "Hallo world"), ("Guten Tag", "Good day"), ("", "empty source")])
    os.utime(train, ns=(before.st_atime_ns, before.st_mtime_ns))  # same size, same mtime, new text
    assert train.stat().st_size == before.st_size and train.stat().st_mtime_ns == before.st_mtime_ns
    assert load_corpus(cfg)["train"]["tgt"] == ["Hallo world", "Good day"]
    assert load_corpus(cfg)["train"]["tgt"] == ["Hallo world", "Good day"]  # and cached as such


def test_hub_records_that_are_missing_or_not_text(tmp_path):
    records = [{"de": "Hallo", "en": "Hello"}, None, {"de": "Danke", "en": "Thanks"}]
    d = DatasetDict({s: Dataset.from_dict({"translation": records}) for s in ("train", "validation", "test")})
    d.save_to_disk(str(tmp_path / "holes"))
    corpus, stats = load_corpus_with_stats(_hub_cfg(tmp_path / "holes", tmp_path))
    assert corpus["train"]["src"] == ["Hallo", "Danke"] and stats["train"].dropped_empty == 1  # None: dropped
    numbers = DatasetDict({s: Dataset.from_dict({"translation": [{"de": 1, "en": 2}]})
                           for s in ("train", "validation", "test")})
    numbers.save_to_disk(str(tmp_path / "numbers"))
    with pytest.raises(UserError, match=r"has int data under 'de', not text") as err:
        load_corpus(_hub_cfg(tmp_path / "numbers", tmp_path))
    assert "numbers" in _one_line(err)
    columns = DatasetDict({s: Dataset.from_dict({"src": ["a b"], "num": [3], "toks": [["a", "b"]]})
                           for s in ("train", "validation", "test")})
    columns.save_to_disk(str(tmp_path / "columns"))
    for column, kind in (("num", "int64"), ("toks", "List")):
        with pytest.raises(UserError, match=rf"data.src_column='{column}' .* holds {kind}.* a text column is needed"):
            load_corpus(_hub_cfg(tmp_path / "columns", tmp_path, src_column=column, tgt_column="src"))


def test_hub_variable_language_records_take_the_first_text_of_each_language(tmp_path, caplog):
    from datasets import Features, TranslationVariableLanguages

    features = Features({"translation": TranslationVariableLanguages(languages=["de", "en", "fr"])})
    records = [{"de": "Hallo", "en": ["Hello", "Hi"], "fr": "Salut"}, {"de": "Danke", "en": "Thanks"}]
    DatasetDict({s: Dataset.from_dict({"translation": records}, features=features)
                 for s in ("train", "validation", "test")}).save_to_disk(str(tmp_path / "varlang"))
    with caplog.at_level(logging.WARNING, logger="rosettamt"):
        corpus = load_corpus(_hub_cfg(tmp_path / "varlang", tmp_path, hub_revision="v2"))
    assert corpus["train"][:] == {"src": ["Hallo", "Danke"], "tgt": ["Hello", "Thanks"]}
    assert "data.hub_revision=v2 are not used" in caplog.text  # a local folder has no revisions


def test_hub_errors_say_what_exists(translation_dir, tmp_path):
    with pytest.raises(UserError) as err:  # split mapping to a split the dataset does not have
        load_corpus(_hub_cfg(translation_dir, tmp_path, hub_splits={"val": "dev"}))
    assert "'dev'" in _one_line(err) and "train, validation, test" in str(err.value)
    with pytest.raises(UserError) as err:
        load_corpus(_hub_cfg(translation_dir, tmp_path, src_lang="fr"))
    assert "'fr'" in _one_line(err) and "de, en" in str(err.value)
    with pytest.raises(UserError) as err:
        load_corpus(_hub_cfg(translation_dir, tmp_path, src_column="source", tgt_column="target"))
    assert "'source'" in _one_line(err) and "id, translation" in str(err.value)
    with pytest.raises(UserError) as err:  # nothing can be downloaded here: one line, not a traceback
        load_corpus(_hub_cfg(tmp_path / "no-such-dataset-xyz", tmp_path))
    assert "data.hub_name=" in _one_line(err)


def _damaged_gzip(path: Path, n: int = 2000) -> tuple[Path, Path]:
    """The same gzip twice: flipped bytes in the middle of the stream, and cut short."""
    data = gzip.compress("".join(f"line {i} of some text to compress\n" for i in range(n)).encode())
    middle = bytearray(data)
    for i in range(len(data) // 2, len(data) // 2 + 16):
        middle[i] ^= 0xFF
    bad = path.with_name("bad." + path.name)
    bad.write_bytes(bytes(middle))
    cut = path.with_name("cut." + path.name)
    cut.write_bytes(data[: len(data) * 2 // 3])
    return bad, cut


def test_gzip_damaged_in_the_middle_or_cut_short_is_one_line(tmp_path):
    good = _write(tmp_path / "train.en.gz", [f"line {i} of some text to compress" for i in range(2000)])
    short = _write(tmp_path / "short.en.gz", ["only", "three", "lines"])  # ends first: the other is counted
    bad, cut = _damaged_gzip(tmp_path / "train.de.gz")
    for i, broken in enumerate((bad, cut)):
        for j, pair in enumerate(([good, str(broken)], [str(broken), good], [short, str(broken)])):
            with pytest.raises(UserError) as err:
                load_corpus(_files({"train": pair}, tmp_path / f"cache{i}{j}"))
            msg = _one_line(err)
            assert str(broken) in msg and "gzip" in msg and "damaged after line" in msg


def test_nul_bytes_are_removed_with_a_warning_naming_file_and_line(tmp_path, caplog):
    src = _write(tmp_path / "train.en", b"fine\nbro\x00ken\x00 line\nok\n")
    tgt = _write(tmp_path / "train.de", ["gut", "kaputt", "ok"])
    with caplog.at_level(logging.WARNING, logger="rosettamt"):
        corpus = load_corpus(_files({"train": [src, tgt]}, tmp_path))
    assert corpus["train"]["src"] == ["fine", "broken line", "ok"]
    assert f"{src}:2: NUL bytes on 1 line(s)" in caplog.text
