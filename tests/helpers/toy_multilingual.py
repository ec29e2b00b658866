"""A small trained multilingual checkpoint (en -> de and en -> fr) for the inference tests.

The toy "languages" are recognisable by eye and by test: the source is the toy English of
helpers.toy; "de" maps each word to its reversal + "x" (helpers.toy's target language), "fr" to
its upper-cased form + "q", each in reversed order. Only the target tag (``<2de>`` / ``<2fr>``,
prepended at the id level) tells the model which to produce. The tokenizer is one joint
SentencePiece model with the tags as user-defined symbols; the stored run config's data section
carries ``pairs`` (and ``src_lang``/``tgt_lang``: the default direction en-de), as a multilingual
training run stores it.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Dict, List, Tuple

from helpers.toy import SRC_WORDS
from helpers.toy_checkpoint import fit_toy
from helpers.toy_multiway import looks_like, toy_target  # noqa: F401 (looks_like: the tests import it from here)

PAIRS = ["en-de", "en-fr"]
_BUILT: Dict[str, Path] = {}


def toy_pairs(n: int, seed: int = 0) -> List[Tuple[str, str, str]]:
    """(source, target language, target) triples, both directions equally often."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        words = [rng.choice(SRC_WORDS) for _ in range(rng.randint(2, 7))]
        lang = "de" if i % 2 == 0 else "fr"
        out.append((" ".join(words).capitalize() + ".", lang, toy_target(words, lang)))
    return out


def train_tokenizer(texts: List[str]):
    import sentencepiece as spm

    from rosettamt.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer
    from rosettamt.langs import target_tags

    out = io.BytesIO()
    spm.set_random_generator_seed(1)
    spm.SentencePieceTrainer.train(sentence_iterator=iter(texts), model_writer=out, model_type="bpe",
                                   vocab_size=300, hard_vocab_limit=False, character_coverage=1.0,
                                   user_defined_symbols=target_tags([("en", "de"), ("en", "fr")]),
                                   pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID,
                                   num_threads=1, minloglevel=2)
    return Tokenizer(out.getvalue(), None, "en", "de")


def build_multilingual_checkpoint(out_dir: Path, steps: int = 300, seed: int = 0) -> Path:
    """Train the toy multilingual model and save it as <out_dir>/checkpoints/last.pt."""
    from rosettamt.checkpoint import save_checkpoint
    from rosettamt.config import DataConfig, ModelConfig, TokenizerConfig, TrainConfig, to_dict
    from rosettamt.data.tokenizer import PAD_ID

    triples = toy_pairs(3000, seed)
    tok = train_tokenizer([s for s, _, _ in triples] + [t for _, _, t in triples])
    tag_id = {lang: tok.tag_id(lang) for lang in ("de", "fr")}
    src_ids = [[tag_id[lang]] + ids for (_, lang, _), ids in zip(triples, tok.encode_src([s for s, _, _ in triples]))]
    tgt_ids = tok.encode_tgt([t for _, _, t in triples])
    model_cfg = ModelConfig(d_model=64, encoder_layers=2, decoder_layers=2, n_heads=4, d_ff=128, dropout=0.0,
                            max_positions=128, src_vocab_size=tok.src_vocab_size, tgt_vocab_size=tok.tgt_vocab_size,
                            joint_vocab=True, pad_id=PAD_ID)
    model = fit_toy(model_cfg, src_ids, tgt_ids, steps, seed, lr=3e-3)
    config = to_dict(TrainConfig(data=DataConfig(source="files", src_lang="en", tgt_lang="de"),
                                 tokenizer=TokenizerConfig(vocab_size=300), model=model_cfg))
    config["data"]["pairs"] = list(PAIRS)  # whether or not DataConfig declares it yet
    config["data"].pop("langs", None)
    path = out_dir / "checkpoints" / "last.pt"
    save_checkpoint({"model": model.state_dict(), "model_config": to_dict(model_cfg), "config": config,
                     "tokenizer": tok.state_dict(), "step": steps, "epoch": 0, "val_bleu": None}, path)
    return path


def multilingual_checkpoint(tmp_path_factory) -> Path:
    """The toy multilingual checkpoint, built once per test session."""
    if "path" not in _BUILT:
        _BUILT["path"] = build_multilingual_checkpoint(tmp_path_factory.mktemp("toy_multi"))
    return _BUILT["path"]
