"""A small trained checkpoint of the toy language pair, for the translation tests.

Built by hand from the public pieces (tokenizer, model, save_checkpoint) rather
than by the trainer, so the translation tests depend only on the checkpoint
format. 150 Adam steps on the toy pair take a few seconds and give a model
whose output clearly depends on its input (a good part of it right), so tests
can tell a translation from a neighbouring line's.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Dict, List

_BUILT: Dict[str, Path] = {}


def read_lines(path: str) -> List[str]:
    return Path(path).read_text(encoding="utf-8").splitlines()


def build_toy_checkpoint(toy_files: Dict[str, List[str]], out_dir: Path, steps: int = 150,
                         seed: int = 0) -> Path:
    """Train the tiny toy model and save it as <out_dir>/checkpoints/last.pt, as a trainer run would."""
    from datasets import Dataset

    from rosettamt.config import DataConfig, ModelConfig, TokenizerConfig
    from rosettamt.data.tokenizer import PAD_ID, train_or_load

    src, tgt = (read_lines(p) for p in toy_files["train"])
    data_cfg = DataConfig(source="files", src_lang="src", tgt_lang="tgt", files=toy_files)
    tok_cfg = TokenizerConfig(vocab_size=150)
    tok, _ = train_or_load(Dataset.from_dict({"src": src, "tgt": tgt}), tok_cfg, data_cfg, out_dir / "cache")
    model_cfg = ModelConfig(d_model=64, encoder_layers=2, decoder_layers=2, n_heads=4, d_ff=128, dropout=0.0,
                            max_positions=128, src_vocab_size=tok.src_vocab_size,
                            tgt_vocab_size=tok.tgt_vocab_size, joint_vocab=tok.joint, pad_id=PAD_ID)
    return train_and_save(model_cfg, tok, data_cfg, tok_cfg, src, tgt, out_dir, steps, seed, lr=3e-3)


def train_and_save(model_cfg, tok, data_cfg, tok_cfg, src: List[str], tgt: List[str], out_dir: Path, steps: int,
                   seed: int, lr: float) -> Path:
    """Adam on random 64-pair batches of the toy pair (teacher forcing, plain cross-entropy), then
    save as <out_dir>/checkpoints/last.pt with the configs a trainer run would store."""
    from rosettamt.checkpoint import save_checkpoint
    from rosettamt.config import TrainConfig, to_dict
    from rosettamt.langid import LangId

    model = fit_toy(model_cfg, tok.encode_src(src), tok.encode_tgt(tgt), steps, seed, lr)
    train_cfg = TrainConfig(data=data_cfg, tokenizer=tok_cfg, model=model_cfg)
    path = out_dir / "checkpoints" / "last.pt"
    langid = LangId.build({data_cfg.src_lang: src, data_cfg.tgt_lang: tgt}).state_dict()  # as training stores
    save_checkpoint({"model": model.state_dict(), "model_config": to_dict(model_cfg), "config": to_dict(train_cfg),
                     "tokenizer": tok.state_dict(), "step": steps, "epoch": 0, "val_bleu": None, "langid": langid},
                    path)
    return path


def toy_checkpoint(toy_files: Dict[str, List[str]], tmp_path_factory) -> Path:
    """The toy checkpoint, built once per test session whichever test file asks first."""
    if "path" not in _BUILT:
        _BUILT["path"] = build_toy_checkpoint(toy_files, tmp_path_factory.mktemp("toy_run"))
    return _BUILT["path"]


def other_tokenizer_checkpoint(ckpt: Path, out_dir: Path) -> Path:
    """The toy checkpoint with another tokenizer of the same vocabulary size (trained on upper-cased
    text): same shapes, so only the tokenizer's content tells the two apart."""
    from datasets import Dataset

    from rosettamt.checkpoint import load_checkpoint, save_checkpoint
    from rosettamt.config import DataConfig, TokenizerConfig
    from rosettamt.data.tokenizer import train_or_load

    state = load_checkpoint(ckpt)
    files = state["config"]["data"]["files"]
    src, tgt = ([line.upper() for line in read_lines(p)] for p in files["train"])
    data_cfg = DataConfig(source="files", src_lang="src", tgt_lang="tgt", files=files)
    tok, _ = train_or_load(Dataset.from_dict({"src": src, "tgt": tgt}), TokenizerConfig(vocab_size=150), data_cfg,
                           out_dir / "cache")
    assert (tok.src_vocab_size, tok.tgt_vocab_size) == (state["model_config"]["src_vocab_size"],
                                                        state["model_config"]["tgt_vocab_size"])
    state["tokenizer"] = tok.state_dict()
    path = out_dir / "other_tokenizer.pt"
    save_checkpoint(state, path)
    return path


def fit_toy(model_cfg, src_ids: List[List[int]], tgt_ids: List[List[int]], steps: int, seed: int, lr: float):
    """A fresh model trained by Adam on random 64-pair batches of the given id sequences (teacher
    forcing, plain cross-entropy); returned in eval mode."""
    import torch

    from rosettamt.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
    from rosettamt.model import Seq2SeqTransformer

    torch.manual_seed(seed)
    model = Seq2SeqTransformer(model_cfg)

    def pad(rows: List[List[int]]) -> torch.Tensor:
        out = torch.full((len(rows), max(map(len, rows))), PAD_ID, dtype=torch.long)
        for i, r in enumerate(rows):
            out[i, : len(r)] = torch.tensor(r)
        return out  # (B, T)

    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.98))
    rng = random.Random(seed)
    model.train()
    for _ in range(steps):
        rows = rng.sample(range(len(src_ids)), 64)
        s = pad([src_ids[i] + [EOS_ID] for i in rows])  # (B, S)
        t_in = pad([[BOS_ID] + tgt_ids[i] for i in rows])  # (B, T)
        t_out = pad([tgt_ids[i] + [EOS_ID] for i in rows])  # (B, T)
        logits = model(s, s != PAD_ID, t_in)  # (B, T, V)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), t_out.flatten(), ignore_index=PAD_ID)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return model
