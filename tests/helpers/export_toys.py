"""Tiny trained toy models of every shape the exports must handle (pre/post norm, tied/untied,
joint/separate vocabularies, sinusoidal/learned positions, odd head sizes).

Trained for a few seconds on the toy pair, so that their translations are real sequences of
several tokens of different lengths: a random model's output (often EOS at once) would make
"the export translates the same" true for the wrong reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

from helpers.toy_checkpoint import read_lines, train_and_save

# name -> (joint vocabulary, ModelConfig overrides)
VARIANTS: Dict[str, tuple] = {
    # post-norm, separate vocabularies, untied output, GELU, no embedding scale
    "post_separate_untied": (False, dict(norm="post", tie_output=False, tie_all=False, activation="gelu",
                                         scale_embedding=False)),
    # pre-norm, joint vocabulary, shared embeddings, untied output, learned positions
    "pre_learned_untied_output": (True, dict(norm="pre", positions="learned", tie_output=False)),
    # post-norm, joint vocabulary, separate source/target embeddings, tied output
    "post_joint_untied_src": (True, dict(norm="post", tie_all=False)),
    # pre-norm, heads of 12 with d_model 32 (d_k * n_heads != d_model)
    "pre_head12": (True, dict(norm="pre", d_k=12, d_v=12)),
}

_BUILT: Dict[str, Path] = {}


def train_variant(toy_files: Dict[str, List[str]], out_dir: Path, joint: bool, steps: int = 120,
                  seed: int = 0, **model: Any) -> Path:
    """Train a d_model=32 toy model with these ModelConfig fields; save it as a rosettamt checkpoint."""
    from datasets import Dataset

    from rosettamt.config import DataConfig, ModelConfig, TokenizerConfig, from_dict
    from rosettamt.data.tokenizer import PAD_ID, train_or_load

    src, tgt = (read_lines(p) for p in toy_files["train"])
    data_cfg = DataConfig(source="files", src_lang="src", tgt_lang="tgt", files=toy_files)
    tok_cfg = TokenizerConfig(vocab_size=150 if joint else 90, joint=joint)
    tok, _ = train_or_load(Dataset.from_dict({"src": src, "tgt": tgt}), tok_cfg, data_cfg, out_dir / "cache")
    fields = dict(d_model=32, encoder_layers=2, decoder_layers=2, n_heads=4, d_ff=64, dropout=0.0,
                  max_positions=64, src_vocab_size=tok.src_vocab_size, tgt_vocab_size=tok.tgt_vocab_size,
                  joint_vocab=tok.joint, pad_id=PAD_ID, **model)
    model_cfg = from_dict(ModelConfig, fields)
    return train_and_save(model_cfg, tok, data_cfg, tok_cfg, src, tgt, out_dir, steps, seed, lr=5e-3)


def variant_checkpoint(name: str, toy_files: Dict[str, List[str]], tmp_path_factory) -> Path:
    """The checkpoint of VARIANTS[name], trained once per test session."""
    if name not in _BUILT:
        joint, model = VARIANTS[name]
        _BUILT[name] = train_variant(toy_files, tmp_path_factory.mktemp(name), joint, **model)
    return _BUILT[name]
