"""SentencePiece tokenizer: trained once on the train split, cached by content hash.

Special ids are fixed for every tokenizer rosettamt trains, so the model, the
loss and the search code can use them as constants:
``PAD_ID = 0, UNK_ID = 1, BOS_ID = 2, EOS_ID = 3``.

A *joint* tokenizer is one model with a shared vocabulary for both languages
(so the embeddings can be tied); otherwise each side has its own model. Trained
models live in ``{cache_dir}/tokenizers/<hash>/`` where the hash covers the
training text and the settings: the same corpus and settings reuse the model,
changing either trains a new one. The serialized model bytes travel in
:meth:`Tokenizer.state_dict`, so a checkpoint alone can rebuild the tokenizer.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator

import sentencepiece as spm
from datasets import Dataset

from rosettamt.config import DataConfig, TokenizerConfig
from rosettamt.data.corpus import content_hash
from rosettamt.errors import UserError

log = logging.getLogger(__name__)

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
FORMAT = "rosettamt-spm-1"
TAG_PIECE = re.compile(r"<2[^<>\s]+>")  # langs.tag()'s shape


def _tag_pieces(proc: spm.SentencePieceProcessor) -> frozenset[int]:
    """Ids of the target-tag pieces (``<2de>``) a multilingual tokenizer holds as single pieces."""
    return frozenset(i for i in range(proc.get_piece_size()) if TAG_PIECE.fullmatch(proc.id_to_piece(i)))


def _encode(proc: spm.SentencePieceProcessor, texts: list[str]) -> list[list[int]]:
    """Ids of many texts. SentencePiece starts a thread pool for every list it encodes (~0.3-1 ms
    here, longer than encoding a sentence): worth it for a corpus, not for a request's few lines."""
    texts = list(texts)
    return proc.encode(texts, out_type=int, num_threads=1 if len(texts) < 1024 else -1)


def _untag(rows: list[list[int]], tags: frozenset[int]) -> list[list[int]]:
    if not tags:  # a bilingual tokenizer: nothing to do
        return rows
    return [[UNK_ID if i in tags else i for i in row] if tags.intersection(row) else row for row in rows]


class Tokenizer:
    """Source/target SentencePiece models behind one small API (ids exclude BOS/EOS)."""

    def __init__(self, src_model: bytes, tgt_model: bytes | None = None,
                 src_lang: str = "src", tgt_lang: str = "tgt") -> None:
        self.joint = tgt_model is None
        self._src_bytes, self._tgt_bytes = src_model, tgt_model
        self.src_lang, self.tgt_lang = src_lang, tgt_lang
        self._src = spm.SentencePieceProcessor(model_proto=src_model)
        self._tgt = self._src if tgt_model is None else spm.SentencePieceProcessor(model_proto=tgt_model)
        self.src_vocab_size: int = self._src.get_piece_size()
        self.tgt_vocab_size: int = self._tgt.get_piece_size()
        h = hashlib.sha256(src_model)
        h.update(b"joint" if tgt_model is None else tgt_model)
        self.content_hash: str = h.hexdigest()
        self._src_tags, self._tgt_tags = _tag_pieces(self._src), _tag_pieces(self._tgt)

    def encode_src(self, texts: list[str]) -> list[list[int]]:
        """Source pieces as ids, no BOS/EOS. A target tag typed in the text (``<2fr>``) is <unk>:
        only the tag rosettamt puts first picks the language."""
        return _untag(_encode(self._src, texts), self._src_tags)

    def encode_tgt(self, texts: list[str]) -> list[list[int]]:
        """Target pieces as ids, no BOS/EOS (tags in the text are <unk>, as on the source side)."""
        return _untag(_encode(self._tgt, texts), self._tgt_tags)

    def detokenize(self, ids: list[int]) -> str:
        """One line of target text from model output ids: stops at the first EOS, ignores PAD and
        BOS, and collapses whitespace, so a hypothesis is exactly one line of an output file."""
        ids = [int(i) for i in ids]
        if EOS_ID in ids:
            ids = ids[: ids.index(EOS_ID)]
        return " ".join(self._tgt.decode([i for i in ids if i not in (PAD_ID, BOS_ID)]).split())

    def piece_to_id(self, piece: str) -> int:
        """The source-side id of a piece (UNK_ID when the vocabulary lacks it)."""
        return int(self._src.piece_to_id(piece))

    def tag_id(self, lang: str) -> int:
        """The id of ``lang``'s target tag (``<2de>``); an error when this tokenizer has no such piece."""
        from rosettamt.langs import tag

        i = self.piece_to_id(tag(lang))
        if i == UNK_ID or self._src.id_to_piece(i) != tag(lang):
            raise UserError(f"this tokenizer has no target tag {tag(lang)} (a multilingual model's tokenizer "
                            "keeps one per target language)")
        return i

    def src_pieces(self, text: str) -> list[str]:
        """Subword strings of a source sentence (axis labels for attention plots)."""
        return self._src.encode(text, out_type=str)

    def tgt_pieces(self, ids: list[int]) -> list[str]:
        return [self._tgt.id_to_piece(int(i)) for i in ids]

    def state_dict(self) -> dict[str, Any]:
        """Plain data (bytes, str, bool) that torch.load(weights_only=True) accepts."""
        return {"format": FORMAT, "joint": self.joint, "src_model": self._src_bytes,
                "tgt_model": self._tgt_bytes, "src_lang": self.src_lang, "tgt_lang": self.tgt_lang}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "Tokenizer":
        try:
            joint = bool(state.get("joint", state.get("tgt_model") is None))
            tgt = None if joint else bytes(state["tgt_model"])
            langs = state.get("src_lang", "src"), state.get("tgt_lang", "tgt")
            return cls(bytes(state["src_model"]), tgt, *langs)
        except (KeyError, TypeError, RuntimeError) as err:
            raise UserError(f"the stored tokenizer is unreadable ({type(err).__name__}: {err})") from err

    # SentencePieceProcessor is a C++ object: pickle (datasets.map workers) through the bytes.
    def __getstate__(self) -> dict[str, Any]:
        return self.state_dict()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(Tokenizer.from_state_dict(state).__dict__)

    def __repr__(self) -> str:
        sizes = (f"vocab={self.src_vocab_size}" if self.joint
                 else f"src_vocab={self.src_vocab_size}, tgt_vocab={self.tgt_vocab_size}")
        return f"Tokenizer(joint={self.joint}, {sizes}, hash={self.content_hash[:12]})"


def settings_key(train_split: Dataset, cfg: TokenizerConfig) -> str:
    """Hash of the training text and every setting that changes the trained model."""
    settings = {"format": FORMAT, "type": str(cfg.type), "vocab_size": cfg.vocab_size, "joint": cfg.joint,
                "character_coverage": cfg.character_coverage,
                "input_sentence_size": cfg.input_sentence_size, "seed": cfg.seed}
    payload = json.dumps(settings, sort_keys=True) + content_hash(train_split)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def train_or_load(train_split: Dataset, cfg: TokenizerConfig, data_cfg: DataConfig,
                  cache_dir: Path) -> tuple[Tokenizer, bool]:
    """The tokenizer for this train split and these settings: ``(tokenizer, cache_hit)``."""
    key = settings_key(train_split, cfg)
    final = Path(cache_dir) / "tokenizers" / key
    langs = (data_cfg.src_lang, data_cfg.tgt_lang)
    if (final / "meta.json").is_file():  # written last: present only in a complete directory
        cached = _load_cached(final, langs)
        if cached is not None:
            return cached, True

    log.info("training %s tokenizer (%s, vocab %d) on %d pairs", "joint" if cfg.joint else "separate",
             cfg.type, cfg.vocab_size, len(train_split))
    if cfg.joint:
        models = {"joint.model": _train(lambda: _texts(train_split, ("src", "tgt")), cfg)}
    else:
        models = {"src.model": _train(lambda: _texts(train_split, ("src",)), cfg),
                  "tgt.model": _train(lambda: _texts(train_split, ("tgt",)), cfg)}
    return _store(final, key, models, cfg, langs, len(train_split)), False


def train_or_load_multilingual(train: dict, cfg: TokenizerConfig, data_cfg: DataConfig,
                               cache_dir: Path) -> tuple[Tokenizer, bool]:
    """One joint tokenizer over every language of a multilingual run (``train``: direction -> its
    train split), its text balanced across languages, the target tags kept as single pieces.
    The cache key covers the settings, every direction's text, the tags and the sampling rule."""
    from rosettamt import langs as L
    from rosettamt.data import multilingual as M

    dirs = list(train)
    tags = L.target_tags(dirs)
    hashes = {L.pair_name(d): content_hash(ds) for d, ds in train.items()}
    settings = {"format": FORMAT, "type": str(cfg.type), "vocab_size": cfg.vocab_size, "joint": True,
                "character_coverage": cfg.character_coverage,
                "input_sentence_size": cfg.input_sentence_size, "seed": cfg.seed}
    payload = json.dumps(settings, sort_keys=True) + M.tokenizer_key(hashes, tags, data_cfg)
    key = "m" + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:31]
    final = Path(cache_dir) / "tokenizers" / key
    langs = (data_cfg.src_lang, data_cfg.tgt_lang)
    if (final / "meta.json").is_file():
        cached = _load_cached(final, langs)
        if cached is not None:
            return cached, True
    texts = M.language_texts(train)
    log.info("training joint multilingual tokenizer (%s, vocab %d) over %s with tags %s", cfg.type,
             cfg.vocab_size, ", ".join(sorted(texts)), " ".join(tags))
    models = {"joint.model": _train(lambda: M.balanced_sentences(texts, cfg, data_cfg), cfg,
                                    user_defined_symbols=tags)}
    pairs = sum(len(ds) for ds in train.values())
    return _store(final, key, models, cfg, langs, pairs, extra={"tags": tags,
                                                                "directions": [L.pair_name(d) for d in dirs]}), False


def _store(final: Path, key: str, models: dict[str, bytes], cfg: TokenizerConfig, langs: tuple[str, str],
           train_pairs: int, extra: dict | None = None) -> Tokenizer:
    """Write the trained model(s) into the cache directory ``final`` (atomically) and load them."""
    # Build the whole directory under a temp name, then rename: a half-written one is never used.
    tmp = final.parent / f".{key}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for name, data in models.items():
            (tmp / name).write_bytes(data)
        meta = {"format": FORMAT, "joint": cfg.joint if extra is None else True, "type": str(cfg.type),
                "vocab_size": cfg.vocab_size, "src_lang": langs[0], "tgt_lang": langs[1],
                "train_pairs": train_pairs, **(extra or {})}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        if final.exists() and not (final / "meta.json").is_file():
            shutil.rmtree(final)  # incomplete (not written by this code's rename): never trust it
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "meta.json").is_file():  # not a concurrent run that finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _load_dir(final, langs)


def _load_cached(path: Path, langs: tuple[str, str]) -> Tokenizer | None:
    """The cached tokenizer in ``path``; None (and the folder removed) when it is damaged."""
    from rosettamt.data.corpus_cache import damaged_cache

    try:
        tokenizer = _load_dir(path, langs)
    except Exception as err:  # cut or overwritten model files: retrain rather than fail
        damaged_cache(path, err)
        return None
    log.info("tokenizer cache hit: %s", path)
    return tokenizer


def _load_dir(path: Path, langs: tuple[str, str]) -> Tokenizer:
    if (path / "joint.model").is_file():
        return Tokenizer((path / "joint.model").read_bytes(), None, *langs)
    return Tokenizer((path / "src.model").read_bytes(), (path / "tgt.model").read_bytes(), *langs)


def _texts(ds: Dataset, columns: tuple[str, ...]) -> Iterator[str]:
    """Sentences streamed from the memory-mapped split (never one big Python list)."""
    for batch in ds.select_columns(list(columns)).iter(batch_size=10_000):
        for col in columns:
            yield from batch[col]


def _train(sentences: Callable[[], Iterator[str]], cfg: TokenizerConfig,
           user_defined_symbols: list[str] | None = None) -> bytes:
    """Train one SentencePiece model; a vocabulary too large for a small corpus is relaxed once.

    ``user_defined_symbols`` (a multilingual run's target tags) are kept as single pieces."""
    spm.set_random_generator_seed(cfg.seed)
    options = dict(model_type=str(cfg.type), vocab_size=cfg.vocab_size,
                   character_coverage=cfg.character_coverage,
                   input_sentence_size=cfg.input_sentence_size, shuffle_input_sentence=True,
                   pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID,
                   num_threads=max(1, min(os.cpu_count() or 1, 16)), minloglevel=2)
    if user_defined_symbols:
        options["user_defined_symbols"] = list(user_defined_symbols)
    try:
        return _run_trainer(sentences(), options)
    except RuntimeError as err:
        if "Vocabulary size too high" not in str(err):
            raise UserError(f"SentencePiece training failed: {_spm_message(err)}") from err
        limit = re.search(r"<= (\d+)", str(err))
        log.warning("tokenizer.vocab_size=%d is too large for this train split%s; training with "
                    "hard_vocab_limit=false (a smaller vocabulary)", cfg.vocab_size,
                    f" (at most {limit.group(1)})" if limit else "")
    try:
        return _run_trainer(sentences(), {**options, "hard_vocab_limit": False})
    except RuntimeError as err:
        raise UserError(f"SentencePiece cannot train tokenizer.vocab_size={cfg.vocab_size} on this train "
                        f"split: {_spm_message(err)}; set a smaller tokenizer.vocab_size") from err


def _run_trainer(sentences: Iterator[str], options: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=sentences, model_writer=out, **options)
    return out.getvalue()


def _spm_message(err: Exception) -> str:
    """The human part of a SentencePiece error, on one line."""
    text = " ".join(str(err).split())
    return re.sub(r"^.*?\] ", "", text)
