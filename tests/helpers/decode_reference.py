"""Fixed decoding cases whose outputs were recorded before the decoding speed work (issue 18).

``tests/helpers/decode_reference.json`` holds the greedy and beam token ids that the search
produced for these cases with the code as it was at commit 6e01605 (before preallocated K/V
buffers, top-k per beam, int8, ...). tests/unit/test_decode_reference.py decodes the same cases
with today's code, every speed switch on and each one off, and allows no difference.

Cases: random-weight models (seeded, several shapes: pre/post-norm, learned positions, GELU,
d_k != d_v, tied embeddings) and the toy-trained checkpoint of tests/helpers/toy_checkpoint.py.
The toy model is trained at test time; its weights are fingerprinted, and where training does
not reproduce them bit for bit (another CPU), its comparison is skipped, not weakened.

Regenerate (only with the pre-change search, i.e. never after a change you want to check):
    PYTHONPATH=tests python -m helpers.decode_reference
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Dict, List

REFERENCE = Path(__file__).with_suffix(".json")

# (name, model options) for the random-weight models; vocabulary 40, 2+2 layers, d_model 32
RANDOM_MODELS = [
    ("pre", {}),
    ("post_learned_gelu", {"norm": "post", "positions": "learned", "activation": "gelu"}),
    ("dk_dv", {"d_k": 6, "d_v": 10, "n_heads": 3}),
    ("tied", {"tie_output": True, "tie_all": True}),
]
SEARCHES = [  # (name, strategy, beam, length_norm, length_penalty, max_len_a, max_len_b, nbest)
    ("greedy", "greedy", 1, "gnmt", 1.0, 1.5, 5, 1),
    ("beam4_gnmt", "beam", 4, "gnmt", 0.6, 1.5, 5, 1),
    ("beam5_average_nbest3", "beam", 5, "average", 1.0, 1.2, 3, 3),
    ("beam3_none", "beam", 3, "none", 1.0, 1.0, 4, 1),
]
TOY_SEARCHES = [("greedy", "greedy", 1, "gnmt", 1.0, 1.5, 10, 1), ("beam5", "beam", 5, "gnmt", 1.0, 1.5, 10, 2)]


def random_model(seed: int, options: Dict[str, Any]):
    import torch

    from rosettamt.config import ModelConfig
    from rosettamt.model import Seq2SeqTransformer

    torch.manual_seed(seed)
    settings = dict(d_model=32, encoder_layers=2, decoder_layers=2, n_heads=4, d_ff=64, dropout=0.0,
                    src_vocab_size=40, tgt_vocab_size=40, max_positions=64, tie_output=False, tie_all=False)
    return Seq2SeqTransformer(ModelConfig(**{**settings, **options})).eval()


def random_sources(n: int = 24, vocab: int = 40, seed: int = 7) -> List[List[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(4, vocab) for _ in range(rng.randint(1, 14))] for _ in range(n)]


def search_ids(model, sources: List[List[int]], search: tuple, max_tokens: int = 60) -> List[List[List[int]]]:
    """Every sentence's n-best token ids for one search setting (batches of max_tokens source tokens)."""
    from rosettamt.config import DecodeConfig
    from rosettamt.search import translate_ids

    _, strategy, beam, norm, alpha, a, b, nbest = search
    cfg = DecodeConfig(strategy=strategy, beam_size=beam, length_norm=norm, length_penalty=alpha,
                       max_len_a=a, max_len_b=b, nbest=nbest, max_tokens=max_tokens)
    return [[h.tokens for h in hyps] for hyps in translate_ids(model, sources, cfg, "cpu")]


def fingerprint(model) -> str:
    """A short digest of the weights' exact bytes: equal only for bit-identical models."""
    import hashlib

    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def toy_sources(toy_files: Dict[str, List[str]], tok) -> List[List[int]]:
    from helpers.toy_checkpoint import read_lines

    return tok.encode_src(read_lines(toy_files["test"][0])[:40])


def record(toy_ckpt: Path, toy_files: Dict[str, List[str]]) -> Dict[str, Any]:
    import torch

    from rosettamt.checkpoint import load_for_inference

    torch.set_num_threads(1)
    out: Dict[str, Any] = {"about": "greedy/beam token ids before the issue-18 decoding changes; "
                                    "see tests/helpers/decode_reference.py", "random": {}, "toy": {}}
    sources = random_sources()
    for seed, (name, options) in enumerate(RANDOM_MODELS):
        model = random_model(seed, options)
        out["random"][name] = {s[0]: search_ids(model, sources, s) for s in SEARCHES}
    model, tok, _ = load_for_inference(toy_ckpt, "cpu")
    out["toy"] = {"fingerprint": fingerprint(model),
                  **{s[0]: search_ids(model, toy_sources(toy_files, tok), s) for s in TOY_SEARCHES}}
    return out


def main() -> None:
    import tempfile

    from helpers.toy import write_toy_corpus
    from helpers.toy_checkpoint import build_toy_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        files = write_toy_corpus(Path(tmp) / "toy")
        ckpt = build_toy_checkpoint(files, Path(tmp) / "run")
        data = record(ckpt, files)
    REFERENCE.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {REFERENCE} ({REFERENCE.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
