"""A toy language pair that a tiny model learns in a few hundred steps.

The "target language" maps every source word to a fixed other word and reverses
the word order, so a model must use cross-attention (not copy) to translate.
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path

SRC_WORDS = ("a the dog cat man woman runs sits on in red blue big small park street "
             "ball car house tree eats sees with under near").split()
LEXICON = {w: f"{w[::-1]}x" for w in SRC_WORDS}


def toy_pair(rng: random.Random, min_len: int = 2, max_len: int = 9) -> tuple[str, str]:
    words = [rng.choice(SRC_WORDS) for _ in range(rng.randint(min_len, max_len))]
    return " ".join(words).capitalize() + ".", " ".join(LEXICON[w] for w in reversed(words)) + " ."


def write_toy_corpus(root: Path, sizes: dict[str, int] | None = None, seed: int = 0) -> dict[str, list[str]]:
    """Write {split}.src / {split}.tgt files; returns split -> [src_path, tgt_path]."""
    sizes = sizes or {"train": 2000, "val": 100, "test": 100}
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, n in sizes.items():
        pairs = [toy_pair(rng) for _ in range(n)]
        src, tgt = root / f"{split}.src", root / f"{split}.tgt"
        src.write_text("\n".join(p[0] for p in pairs) + "\n", encoding="utf-8")
        tgt.write_text("\n".join(p[1] for p in pairs) + "\n", encoding="utf-8")
        files[split] = [str(src), str(tgt)]
    return files


def write_multi30k_slice(src_dir: Path, dst_dir: Path, n: int = 500,
                         langs: tuple[str, ...] = ("en", "de"),
                         splits: tuple[str, ...] = ("train", "val", "test_2016_flickr", "test_2017_flickr")) -> Path:
    """The first n lines of each Multi30k split, gzipped like the original (kept outside the repo)."""
    dst_dir.mkdir(parents=True, exist_ok=True)
    for split in splits:
        for lang in langs:
            with gzip.open(src_dir / f"{split}.{lang}.gz", "rt", encoding="utf-8") as f:
                lines = [next(f) for _ in range(n)]
            with gzip.open(dst_dir / f"{split}.{lang}.gz", "wt", encoding="utf-8") as f:
                f.writelines(lines)
    return dst_dir
