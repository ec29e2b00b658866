#!/usr/bin/env python
"""Give a checkpoint trained before rosettamt stored language profiles the profiles its training
corpus implies, so that rosettamt-serve's /detect and source=auto detect with it (and its exports
carry langid.json).

    python scripts/add_langid.py outputs/en_de/checkpoints/best-step0017100-bleu40.67.pt --out en_de_langid.pt
    python scripts/add_langid.py old.pt --out new.pt data.dir=../shared/data/multi30k   # the corpus moved

The corpus is read as the run read it, from the data config stored in the checkpoint (later
``data.KEY=VALUE`` arguments change it, e.g. where the files are now); the profiles are built as
training builds them (rosettamt.langid). ``--out`` is written atomically and never replaces an
existing file; the checkpoint itself is not changed.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any, Dict, List


def data_config(ckpt: Dict[str, Any], overrides: List[str], where: str) -> Any:
    """The run's DataConfig, with ``data.KEY=VALUE`` overrides applied."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from rosettamt.config import DataConfig, from_dict
    from rosettamt.errors import UserError

    stored = (ckpt.get("config") or {}).get("data") if isinstance(ckpt.get("config"), dict) else None
    if not isinstance(stored, dict):
        raise UserError(f"{where} stores no data config: nothing says which corpus it was trained on")
    bad = [o for o in overrides if not o.startswith("data.") or "=" not in o]
    if bad:
        raise UserError(f"{bad[0]!r}: only data.KEY=VALUE overrides are taken")
    try:
        merged = OmegaConf.merge(stored, OmegaConf.from_dotlist([o[len("data."):] for o in overrides]))
        return from_dict(DataConfig, OmegaConf.to_container(merged))
    except OmegaConfBaseException as err:
        first = str(err).strip().splitlines()[0]
        raise UserError(f"{where}: the stored data config with these overrides is invalid ({first})") from None


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
        cfg = data_config(ckpt, args.overrides, f"checkpoint {args.checkpoint}")
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
