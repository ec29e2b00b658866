"""The equality checks: does the exported model compute and translate what rosettamt does?

Used three ways: by the exports themselves before anything is written (teacher-forced log-probs
of a fixed batch of ragged id sequences must agree, so a conversion that computes something else
fails loudly), by the tests, and by scripts/export_check.py on a real model and test set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Sequence, Tuple

import torch

from rosettamt.config import DecodeConfig, LengthNorm, Strategy
from rosettamt.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from rosettamt.errors import UserError

TOLERANCE = 1e-3  # on log-probs of magnitude ~10; fp32 conversions agree to ~1e-5


def probe_batch(cfg: Any, n: int = 4, seed: int = 0) -> Tuple[List[List[int]], List[List[int]]]:
    """Ragged source and target id sequences (no BOS/EOS) drawn from the model's vocabularies."""
    g = torch.Generator().manual_seed(seed)
    limit = max(1, min(12, cfg.max_positions - 2))
    lengths = torch.randint(1, limit + 1, (2, n), generator=g).tolist()
    src = [torch.randint(4, max(5, cfg.src_vocab_size), (k,), generator=g).tolist() for k in lengths[0]]
    tgt = [torch.randint(4, max(5, cfg.tgt_vocab_size), (k,), generator=g).tolist() for k in lengths[1]]
    return src, tgt


def pad(rows: Sequence[Sequence[int]]) -> torch.Tensor:
    """Ragged id lists -> (B, T) right-padded with PAD."""
    out = torch.full((len(rows), max(len(r) for r in rows)), PAD_ID, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(list(r), dtype=torch.long)
    return out


def rosetta_logits(model: Any, src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]]) -> torch.Tensor:
    """rosettamt's teacher-forced logits (B, T+1, V) for sources + EOS and BOS + targets."""
    s = pad([list(x) + [EOS_ID] for x in src])  # (B, S)
    t = pad([[BOS_ID] + list(y) for y in tgt])  # (B, T+1)
    with torch.inference_mode():
        return model(s, s != PAD_ID, t).float()


def hf_logits(hf_model: Any, src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]]) -> torch.Tensor:
    """The transformers model's teacher-forced logits (B, T+1, V), same inputs as rosetta_logits."""
    s = pad([list(x) + [EOS_ID] for x in src])  # (B, S)
    t = pad([[BOS_ID] + list(y) for y in tgt])  # (B, T+1)
    with torch.inference_mode():
        return hf_model(input_ids=s, attention_mask=(s != PAD_ID).long(), decoder_input_ids=t).logits.float()


def max_logit_diff(model: Any, hf_model: Any, src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]]) -> float:
    """Largest |difference| between the two models' logits over the real (non-padding) target positions."""
    a, b = rosetta_logits(model, src, tgt), hf_logits(hf_model, src, tgt)
    real = pad([[BOS_ID] + list(y) for y in tgt]) != PAD_ID  # (B, T+1)
    return float((a - b).abs()[real].max())


def check_hf_logits(source: Any, hf_model: Any) -> None:
    """Refuse a transformers conversion whose teacher-forced logits differ from rosettamt's."""
    src, tgt = probe_batch(source.cfg)
    diff = max_logit_diff(source.model, hf_model, src, tgt)
    if not diff <= TOLERANCE:
        raise UserError(f"format=hf: the converted model's logits differ from rosettamt's by {diff:.2e} "
                        f"(> {TOLERANCE}); nothing was written")


def check_ct2_scores(source: Any, folder: Path) -> float:
    """Refuse a float32 CTranslate2 export whose teacher-forced log-probs differ from rosettamt's;
    returns the largest difference."""
    import ctranslate2

    from rosettamt.export.common import spm_pieces

    state = source.tokenizer.state_dict()
    src_vocab = spm_pieces(bytes(state["src_model"]))
    tgt_vocab = src_vocab if state["joint"] else spm_pieces(bytes(state["tgt_model"]))
    src, tgt = probe_batch(source.cfg)
    logp = torch.log_softmax(rosetta_logits(source.model, src, tgt), dim=-1)  # (B, T+1, V)
    translator = ctranslate2.Translator(str(folder), device="cpu", intra_threads=1)
    results = translator.score_batch([[src_vocab[i] for i in s] for s in src], [[tgt_vocab[i] for i in t] for t in tgt])
    diff = 0.0
    for row, (ids, result) in enumerate(zip(tgt, results)):
        want = logp[row, torch.arange(len(ids) + 1), torch.tensor(list(ids) + [EOS_ID])]  # (T+1,) incl. EOS
        diff = max(diff, float((want - torch.tensor(result.log_probs)).abs().max()))
    if not diff <= TOLERANCE:
        raise UserError(f"format=ctranslate2: the exported model's log-probs differ from rosettamt's by "
                        f"{diff:.2e} (> {TOLERANCE}); nothing was written")
    return diff


def hf_generate(hf_model: Any, src_ids: Sequence[Sequence[int]], decode: DecodeConfig,
                max_len: int | None = None) -> List[List[int]]:
    """transformers' generate() on rosettamt's source ids (+ EOS), with decode's search settings and
    at most ``max_len`` tokens before EOS (rosettamt's max_len; EOS is forced after it, as rosettamt
    does); returns the target ids without BOS, EOS and padding."""
    beam = decode.beam_size if decode.strategy == Strategy.beam else 1
    penalty = {LengthNorm.none: 0.0, LengthNorm.average: 1.0}.get(decode.length_norm, decode.length_penalty)
    s = pad([list(x) + [EOS_ID] for x in src_ids])  # (B, S)
    extra: dict = {"max_length": max_len + 2} if max_len is not None else {}  # BOS + max_len tokens + EOS
    with torch.inference_mode():
        if beam > 1:
            extra.update(length_penalty=penalty, early_stopping=True)
        out = hf_model.generate(input_ids=s, attention_mask=(s != PAD_ID).long(), num_beams=beam,
                                min_length=decode.min_len + 1, **extra)
    result = []
    for row in out.tolist():
        row = row[1:]  # the decoder start token
        result.append(row[: row.index(EOS_ID)] if EOS_ID in row else [t for t in row if t != PAD_ID])
    return result


def agreement(a: Sequence[Sequence[int]], b: Sequence[Sequence[int]]) -> float:
    """Share of positions where the two token sequences are identical."""
    if len(a) != len(b):
        raise ValueError(f"{len(a)} outputs against {len(b)}")
    return sum(list(x) == list(y) for x, y in zip(a, b)) / max(len(a), 1)
