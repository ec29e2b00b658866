"""Parallel text -> a ``datasets.DatasetDict`` of ``{src, tgt}`` strings, validated and cached.

Three sources (``data.source``): the Multi30k directory, a Hugging Face hub
dataset (or a local stand-in for one), or the user's own files. Each split is
read once, checked (aligned line counts, valid UTF-8), stripped of empty pairs
and written as an Arrow file under ``{cache_dir}/corpus/``, keyed by a hash of
the raw input; later runs memory-map that file instead of re-reading the text.
Bad input raises :class:`UserError` with a one-line message naming the file,
line or option.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from itertools import zip_longest
from pathlib import Path
from typing import Callable, Iterable, Iterator

from datasets import Dataset, DatasetDict, Features, Value
from datasets.arrow_writer import ArrowWriter

from rosettamt.config import MULTI30K_LANGS, MULTI30K_SPLITS, DataConfig, Source
from rosettamt.data.download import download_files, is_download_dir
from rosettamt.errors import UserError

log = logging.getLogger(__name__)

FORMAT = "rosettamt-corpus-1"  # bump when the cleaning rules change: invalidates the cache
FEATURES = Features({"src": Value("string"), "tgt": Value("string")})
CHUNK = 10_000  # pairs per Arrow record batch

Pairs = Callable[[], Iterator[tuple[str, str]]]


@dataclass
class SplitStats:
    """What loading one split did: pairs kept and empty pairs dropped."""

    pairs: int
    dropped_empty: int


# ---------------------------------------------------------------------------- public API


def load_corpus(cfg: DataConfig) -> DatasetDict:
    """Every split the config names (train, val, tests) as a ``{src, tgt}`` DatasetDict."""
    return load_corpus_with_stats(cfg)[0]


def load_corpus_with_stats(cfg: DataConfig) -> tuple[DatasetDict, dict[str, SplitStats]]:
    """Like :func:`load_corpus`, plus per-split counts (for rosettamt-prepare's report)."""
    wanted = wanted_splits(cfg)
    if cfg.source == Source.multi30k:
        sources = _multi30k_sources(cfg, wanted)
    elif cfg.source == Source.files:
        sources = _files_sources(cfg, wanted)
    elif cfg.source == Source.hub:
        sources = _hub_sources(cfg, wanted)
    else:  # pragma: no cover - the schema's enum rules this out
        raise UserError(f"unknown data.source={cfg.source}")
    root = Path(cfg.cache_dir) / "corpus"
    splits, stats = {}, {}
    for split, (key, pairs) in sources.items():
        splits[split], stats[split] = _materialize(split, key, pairs, root)
        if stats[split].dropped_empty:
            log.info("%s: dropped %d empty or whitespace-only pairs", split, stats[split].dropped_empty)
        if stats[split].pairs == 0:
            raise UserError(f"split {split!r} has no non-empty pairs ({_describe(cfg, split)})")
    return DatasetDict(splits), stats


def wanted_splits(cfg: DataConfig) -> list[str]:
    """The split names the config asks for, in order: train, val, then the test splits."""
    if not cfg.train_split:
        raise UserError("data.train_split is empty; the tokenizer and the trainer need a train split")
    names = [cfg.train_split] + ([cfg.val_split] if cfg.val_split else []) + list(cfg.test_splits)
    return list(dict.fromkeys(names))


_HASHES: dict[str, str] = {}  # datasets fingerprint -> content hash, within one process


def content_hash(ds: Dataset) -> str:
    """sha256 of a split's text: the same pairs give the same hash wherever they were read from."""
    if ds._fingerprint in _HASHES:  # the fingerprint changes whenever the data may have changed
        return _HASHES[ds._fingerprint]
    h = hashlib.sha256()
    for batch in ds.select_columns(["src", "tgt"]).iter(batch_size=CHUNK):
        for s, t in zip(batch["src"], batch["tgt"]):
            sb, tb = s.encode("utf-8"), t.encode("utf-8")
            h.update(b"%d:%d:" % (len(sb), len(tb)))  # length prefix: no separator ambiguity
            h.update(sb)
            h.update(tb)
    _HASHES[ds._fingerprint] = h.hexdigest()
    return _HASHES[ds._fingerprint]


def _option(cfg: DataConfig, split: str) -> str:
    """Which option asked for this split (for error messages)."""
    if split == cfg.train_split:
        return "data.train_split"
    return "data.val_split" if split == cfg.val_split else "data.test_splits"


def _describe(cfg: DataConfig, split: str) -> str:
    if cfg.source == Source.files:
        return f"data.files.{split}={cfg.files.get(split)}"
    return f"data.source={cfg.source}"


# ---------------------------------------------------------------------------- reading text


def _lines(path: Path) -> Iterator[str]:
    """Decoded lines of a plain or gzipped file, without the line break; UTF-8 errors name the line."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]  # UTF-8 byte order mark
                try:
                    yield raw.rstrip(b"\r\n").decode("utf-8")
                except UnicodeDecodeError as err:
                    raise UserError(f"{path}:{lineno}: invalid UTF-8 (byte 0x{raw[err.start]:02x} at "
                                    f"column {err.start + 1}); re-encode the file as UTF-8") from None
    except (gzip.BadGzipFile, EOFError) as err:
        raise UserError(f"{path}: not a readable gzip file ({err})") from None


def _count_lines(path: Path) -> int:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        return sum(1 for _ in f)


def _parallel_pairs(src: Path, tgt: Path) -> Iterator[tuple[str, str]]:
    """Pairs from two line-aligned files; different lengths -> error naming both files and counts."""
    end = object()
    for n, (s, t) in enumerate(zip_longest(_lines(src), _lines(tgt), fillvalue=end)):
        if s is end or t is end:
            n_src = n if s is end else _count_lines(src)
            n_tgt = n if t is end else _count_lines(tgt)
            raise UserError(f"parallel files differ in length: {src} has {n_src} lines but {tgt} has "
                            f"{n_tgt}; they must be aligned line by line")
        yield s, t  # type: ignore[misc]


def _tsv_pairs(path: Path) -> Iterator[tuple[str, str]]:
    """Pairs from a two-column ``source<TAB>target`` file."""
    for lineno, line in enumerate(_lines(path), 1):
        cols = line.split("\t")
        if len(cols) != 2:
            if not line.strip():
                yield "", ""  # a blank line: an empty pair, dropped and counted like the others
                continue
            raise UserError(f"{path}:{lineno}: expected 2 tab-separated columns (source, target), "
                            f"found {len(cols)}")
        yield cols[0], cols[1]


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _key(*parts: str) -> str:
    return hashlib.sha256("\0".join((FORMAT,) + parts).encode("utf-8")).hexdigest()[:32]


def _listing(path: Path, limit: int = 12) -> str:
    """A short 'what is there' for error messages."""
    if path.is_dir():
        names = sorted(p.name for p in path.iterdir() if not p.name.startswith("."))
        more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
        return f"{path} holds: {', '.join(names[:limit]) or 'nothing'}{more}"
    if path.exists():
        return f"{path} is not a directory"
    parent = path.parent
    while not parent.is_dir() and parent != parent.parent:
        parent = parent.parent
    return f"{path} does not exist; {_listing(parent, limit)}"


# ---------------------------------------------------------------------------- sources


def _multi30k_sources(cfg: DataConfig, wanted: list[str]) -> dict[str, tuple[str, Pairs]]:
    for option, lang in (("data.src_lang", cfg.src_lang), ("data.tgt_lang", cfg.tgt_lang)):
        if lang not in MULTI30K_LANGS:
            raise UserError(f"unknown language code {option}={lang!r}; "
                            f"Multi30k has: {', '.join(MULTI30K_LANGS)}")
    if cfg.src_lang == cfg.tgt_lang:
        raise UserError(f"data.src_lang and data.tgt_lang are both {cfg.src_lang!r}; pick two languages")
    splits = []
    for split in wanted:
        if split not in MULTI30K_SPLITS:
            raise UserError(f"{_option(cfg, split)} names split {split!r}, which Multi30k does not have; "
                            f"its splits are: {', '.join(MULTI30K_SPLITS)}")
        if split == "test_2017_flickr" and "cs" in (cfg.src_lang, cfg.tgt_lang):
            log.info("test_2017_flickr has no Czech side; skipping it for %s-%s", cfg.src_lang, cfg.tgt_lang)
            continue
        splits.append(split)

    root = Path(cfg.dir).expanduser()
    langs = (cfg.src_lang, cfg.tgt_lang)

    def find(split: str, lang: str) -> Path | None:
        for name in (f"{split}.{lang}.gz", f"{split}.{lang}"):
            if (root / name).is_file():
                return root / name
        return None

    missing = [f"{s}.{lang}.gz" for s in splits for lang in langs if find(s, lang) is None]
    if missing and cfg.download and is_download_dir(root):
        download_files(root, cfg.url, missing)
    for split in splits:
        for lang in langs:
            if find(split, lang) is None:
                if not root.is_dir():
                    raise UserError(f"data.dir={cfg.dir}: {_listing(root)}; point data.dir= at a directory "
                                    f"of {{split}}.{{lang}}.gz files (or set data.download=true)")
                raise UserError(f"data.dir={cfg.dir} has no {split}.{lang}.gz (nor {split}.{lang}) for "
                                f"{_option(cfg, split)}; {_listing(root)}")
    sources = {}
    for split in splits:
        src, tgt = find(split, cfg.src_lang), find(split, cfg.tgt_lang)
        assert src is not None and tgt is not None
        key = _key("pair", _file_digest(src), _file_digest(tgt))
        sources[split] = (key, lambda s=src, t=tgt: _parallel_pairs(s, t))
    return sources


def _files_sources(cfg: DataConfig, wanted: list[str]) -> dict[str, tuple[str, Pairs]]:
    have = [s for s, paths in cfg.files.items() if paths]
    sources = {}
    for split in wanted:
        paths = [Path(p).expanduser() for p in cfg.files.get(split) or []]
        if not paths:
            raise UserError(f"{_option(cfg, split)} names split {split!r} but data.files.{split} lists no "
                            f"files; splits with files: {', '.join(have) or 'none'}")
        if len(paths) > 2:
            raise UserError(f"data.files.{split} must be [src_file, tgt_file] or [tsv_file], "
                            f"got {len(paths)} paths")
        for p in paths:
            if not p.is_file():
                raise UserError(f"data.files.{split}: {_listing(p)}")
        if len(paths) == 2:
            key = _key("pair", _file_digest(paths[0]), _file_digest(paths[1]))
            sources[split] = (key, lambda s=paths[0], t=paths[1]: _parallel_pairs(s, t))
        else:
            key = _key("tsv", _file_digest(paths[0]))
            sources[split] = (key, lambda p=paths[0]: _tsv_pairs(p))
    return sources


def _open_hub(cfg: DataConfig) -> DatasetDict:
    """The hub dataset, or a local stand-in: a save_to_disk directory or a folder of data files."""
    from datasets import load_dataset, load_from_disk

    name = cfg.hub_name
    if not name:
        raise UserError("data.hub_name is not set (a hub dataset name or a local dataset directory)")
    local = Path(name).expanduser()
    try:
        if local.is_dir() and ((local / "dataset_dict.json").is_file() or (local / "state.json").is_file()):
            d = load_from_disk(str(local))
        elif local.is_dir():
            d = load_dataset(str(local), cache_dir=str(Path(cfg.cache_dir) / "hf"))
        else:
            d = load_dataset(name, cfg.hub_config, revision=cfg.hub_revision,
                             cache_dir=str(Path(cfg.cache_dir) / "hf"))
    except UserError:
        raise
    except Exception as err:  # the hub client raises many kinds; the user needs one line
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"cannot load data.hub_name={name!r} (config {cfg.hub_config!r}): {msg}") from err
    return d if isinstance(d, DatasetDict) else DatasetDict({"train": d})


def _hub_sources(cfg: DataConfig, wanted: list[str]) -> dict[str, tuple[str, Pairs]]:
    d = _open_hub(cfg)
    sources = {}
    for split in wanted:
        theirs = cfg.hub_splits.get(split, split)
        if theirs not in d:
            raise UserError(f"data.hub_name={cfg.hub_name!r} has no split {theirs!r} (for "
                            f"{_option(cfg, split)}={split}); its splits are: {', '.join(d)}; "
                            f"map with data.hub_splits.{split}=NAME")
        ds = d[theirs]
        columns = _hub_columns(cfg, ds)
        key = _key("hub", ds._fingerprint, json.dumps(columns))
        sources[split] = (key, lambda ds=ds, c=columns: _hub_pairs(ds, c))
    return sources


def _hub_columns(cfg: DataConfig, ds: Dataset) -> list[str]:
    """[src_col, tgt_col] for two-column records, or ['translation', src_lang, tgt_lang]."""
    cols = ds.column_names
    if cfg.src_column or cfg.tgt_column:
        for option, col in (("data.src_column", cfg.src_column), ("data.tgt_column", cfg.tgt_column)):
            if not col or col not in cols:
                raise UserError(f"{option}={col!r} is not a column of data.hub_name={cfg.hub_name!r}; "
                                f"its columns are: {', '.join(cols)}")
        return [cfg.src_column, cfg.tgt_column]  # type: ignore[list-item]
    if "translation" not in cols:
        raise UserError(f"data.hub_name={cfg.hub_name!r} has no 'translation' column; its columns are: "
                        f"{', '.join(cols)}; set data.src_column= and data.tgt_column=")
    feature = ds.features["translation"]
    langs = list(getattr(feature, "languages", None) or (feature.keys() if isinstance(feature, dict) else []))
    for option, lang in (("data.src_lang", cfg.src_lang), ("data.tgt_lang", cfg.tgt_lang)):
        if lang not in langs:
            raise UserError(f"unknown language code {option}={lang!r}; the translations of "
                            f"data.hub_name={cfg.hub_name!r} have: {', '.join(map(str, langs))}")
    return ["translation", cfg.src_lang, cfg.tgt_lang]


def _hub_pairs(ds: Dataset, columns: list[str]) -> Iterator[tuple[str, str]]:
    if columns[0] == "translation":
        _, src, tgt = columns
        for batch in ds.select_columns(["translation"]).iter(batch_size=CHUNK):
            for rec in batch["translation"]:
                yield rec.get(src) or "", rec.get(tgt) or ""
    else:
        for batch in ds.select_columns(columns).iter(batch_size=CHUNK):
            for s, t in zip(batch[columns[0]], batch[columns[1]]):
                yield s or "", t or ""


# ---------------------------------------------------------------------------- Arrow cache


def _materialize(split: str, key: str, pairs: Pairs, root: Path) -> tuple[Dataset, SplitStats]:
    """Clean one split's pairs into ``root/<key>.arrow`` once; afterwards memory-map it."""
    arrow, meta = root / f"{key}.arrow", root / f"{key}.json"
    if arrow.is_file() and meta.is_file():  # meta is written last: its presence means complete
        stats = SplitStats(**json.loads(meta.read_text(encoding="utf-8")))
        return Dataset.from_file(str(arrow), split=split), stats
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{key}.{os.getpid()}.tmp"
    kept = dropped = 0
    try:
        with ArrowWriter(features=FEATURES, path=str(tmp)) as writer:
            for chunk in _chunks(pairs(), CHUNK):
                src, tgt = [], []
                for s, t in chunk:
                    s, t = s.strip(), t.strip()
                    if not s or not t:
                        dropped += 1
                        continue
                    src.append(s)
                    tgt.append(t)
                if src:
                    writer.write_batch({"src": src, "tgt": tgt})
                    kept += len(src)
            writer.finalize()
        os.replace(tmp, arrow)
    finally:
        tmp.unlink(missing_ok=True)
    stats = SplitStats(pairs=kept, dropped_empty=dropped)
    meta_tmp = root / f".{key}.{os.getpid()}.json"
    meta_tmp.write_text(json.dumps(asdict(stats)), encoding="utf-8")
    os.replace(meta_tmp, meta)
    return Dataset.from_file(str(arrow), split=split), stats


def _chunks(it: Iterable[tuple[str, str]], n: int) -> Iterator[list[tuple[str, str]]]:
    buf: list[tuple[str, str]] = []
    for item in it:
        buf.append(item)
        if len(buf) == n:
            yield buf
            buf = []
    if buf:
        yield buf
