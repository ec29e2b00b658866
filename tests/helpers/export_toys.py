"""Tiny trained toy models of every shape the exports must handle (pre/post norm, tied/untied,
joint/separate vocabularies, sinusoidal/learned positions, odd head sizes).

Trained for a few seconds on the toy pair, so that their translations are real sequences of
several tokens of different lengths: a random model's output (often EOS at once) would make
"the export translates the same" true for the wrong reason.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Dict, List

from helpers.toy_checkpoint import read_lines

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
    import torch
    from datasets import Dataset

    from rosettamt.checkpoint import save_checkpoint
    from rosettamt.config import DataConfig, ModelConfig, TokenizerConfig, TrainConfig, from_dict, to_dict
    from rosettamt.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, train_or_load
    from rosettamt.model import Seq2SeqTransformer

    src, tgt = (read_lines(p) for p in toy_files["train"])
    data_cfg = DataConfig(source="files", src_lang="src", tgt_lang="tgt", files=toy_files)
    tok_cfg = TokenizerConfig(vocab_size=150 if joint else 90, joint=joint)
    tok, _ = train_or_load(Dataset.from_dict({"src": src, "tgt": tgt}), tok_cfg, data_cfg, out_dir / "cache")
    fields = dict(d_model=32, encoder_layers=2, decoder_layers=2, n_heads=4, d_ff=64, dropout=0.0,
                  max_positions=64, src_vocab_size=tok.src_vocab_size, tgt_vocab_size=tok.tgt_vocab_size,
                  joint_vocab=tok.joint, pad_id=PAD_ID, **model)
    model_cfg = from_dict(ModelConfig, fields)
    torch.manual_seed(seed)
    net = Seq2SeqTransformer(model_cfg)
    src_ids, tgt_ids = tok.encode_src(src), tok.encode_tgt(tgt)

    def pad(rows: List[List[int]]) -> torch.Tensor:
        out = torch.full((len(rows), max(map(len, rows))), PAD_ID, dtype=torch.long)
        for i, r in enumerate(rows):
            out[i, : len(r)] = torch.tensor(r)
        return out  # (B, T)

    opt = torch.optim.Adam(net.parameters(), lr=5e-3, betas=(0.9, 0.98))
    rng = random.Random(seed)
    net.train()
    for _ in range(steps):
        rows = rng.sample(range(len(src)), 64)
        s = pad([src_ids[i] + [EOS_ID] for i in rows])  # (B, S)
        t_in = pad([[BOS_ID] + tgt_ids[i] for i in rows])  # (B, T)
        t_out = pad([tgt_ids[i] + [EOS_ID] for i in rows])  # (B, T)
        logits = net(s, s != PAD_ID, t_in)  # (B, T, V)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), t_out.flatten(), ignore_index=PAD_ID)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    train_cfg = TrainConfig(data=data_cfg, tokenizer=tok_cfg, model=model_cfg)
    path = out_dir / "checkpoints" / "last.pt"
    save_checkpoint({"model": net.state_dict(), "model_config": to_dict(model_cfg), "config": to_dict(train_cfg),
                     "tokenizer": tok.state_dict(), "step": steps, "epoch": 0, "val_bleu": None}, path)
    return path


def variant_checkpoint(name: str, toy_files: Dict[str, List[str]], tmp_path_factory) -> Path:
    """The checkpoint of VARIANTS[name], trained once per test session."""
    if name not in _BUILT:
        joint, model = VARIANTS[name]
        _BUILT[name] = train_variant(toy_files, tmp_path_factory.mktemp(name), joint, **model)
    return _BUILT[name]
