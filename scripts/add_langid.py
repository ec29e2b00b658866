#!/usr/bin/env python
"""Give a checkpoint trained before rosettamt stored language profiles the profiles its training
corpus implies, so that rosettamt-serve's /detect and source=auto detect with it (and its exports
carry langid.json).

    python scripts/add_langid.py outputs/en_de/checkpoints/best.pt --out en_de_langid.pt data.dir=data/multi30k
    python scripts/add_langid.py old.pt --out new.pt "data.files.train=[corpus/train.en,corpus/train.de]"

The checkpoint says what was read (source kind, languages, split and column names); where the
corpus lies comes from ``data.KEY=VALUE`` arguments, as rosettamt-evaluate takes them: a
checkpoint may come from anywhere, so no place or address stored in it is read or fetched
(``data.dir=DIR`` for Multi30k, ``data.files.train=[SRC,TGT]`` for files, ``data.hub_name=`` for
the hub; ``data.download=true`` to fetch). The profiles are built as training builds them
(rosettamt.langid), from the training split. ``--out`` is written atomically and never replaces
an existing file; the checkpoint itself is not changed.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List


def data_config(ckpt: Dict[str, Any], path: Path, overrides: List[str]) -> Any:
    """What to read: from the checkpoint only what names no place and fetches nothing (as
    rosettamt-evaluate takes it: source kind, languages, split and column names), the rest from
    ``data.KEY=VALUE`` overrides: the checkpoint may come from anywhere."""
    from rosettamt.errors import UserError
    from rosettamt.evaluate.corpus_config import corpus_config

    bad = [o for o in overrides if not o.startswith("data.") or "=" not in o]
    if bad:
        raise UserError(f"{bad[0]!r}: only data.KEY=VALUE overrides are taken")
    return corpus_config(ckpt, path, None, None, [o[len("data."):] for o in overrides])[0]


def corpus_profiles(cfg: Any) -> Any:
    """The LangId of the training split of every direction of ``cfg``, as training builds it."""
    from rosettamt.data.corpus import load_corpus
    from rosettamt.data.multilingual import direction_config, directions_of
    from rosettamt.langid import LangId, direction_texts

    cfg = dataclasses.replace(cfg, val_split="", test_splits=[])  # the training split is all it reads
    dirs = directions_of(cfg)
    parts = ([(d, load_corpus(direction_config(cfg, d))) for d in dirs] if dirs
             else [((cfg.src_lang, cfg.tgt_lang), load_corpus(cfg))])
    return LangId.build(direction_texts(parts, cfg.train_split))


def main(argv: List[str]) -> int:
    from rosettamt.checkpoint import load_checkpoint, save_checkpoint
    from rosettamt.errors import UserError

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--out", type=Path, required=True, help="the new checkpoint (must not exist)")
    ap.add_argument("overrides", nargs="*", help="data.KEY=VALUE changes to the stored data config")
    args = ap.parse_intermixed_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        if args.out.exists():
            raise UserError(f"--out {args.out} exists; choose a new name (the checkpoint is never replaced)")
        ckpt = load_checkpoint(args.checkpoint)
        cfg = data_config(ckpt, args.checkpoint, args.overrides)
        with tempfile.TemporaryDirectory(prefix="rosettamt-add-langid-") as tmp:  # no cache left behind ...
            if not any(o.startswith("data.cache_dir=") for o in args.overrides):  # ... unless one is named
                cfg = dataclasses.replace(cfg, cache_dir=tmp)
            profiles = corpus_profiles(cfg)
        ckpt["langid"] = profiles.state_dict()
        save_checkpoint({k: v for k, v in ckpt.items() if k != "format"}, args.out, named=True)
    except UserError as err:
        print(f"add_langid: error: {err}", file=sys.stderr)
        return 2
    print(f"{args.out}: profiles of {', '.join(profiles.languages)} added")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
