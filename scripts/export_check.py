#!/usr/bin/env python
"""Do the exports translate like rosettamt? Export a trained model to every format and compare on a test set.

    python scripts/export_check.py outputs/RUN --data-dir ../shared/data/multi30k --split test_2016_flickr
    python scripts/export_check.py CHECKPOINT.pt --src-file test.src --ref-file test.tgt --limit 200

Exports the checkpoint (a run directory's best, or the file) as CTranslate2 float32 and int8,
Hugging Face and (when spaCy is installed) Argos; decodes the sources greedily and with beam search
(--beam, length_norm=average: the normalisation all three engines share) through rosettamt,
CTranslate2 float32, CTranslate2 int8 and transformers' generate(); and reports for each the share
of sentences whose tokens equal rosettamt's, BLEU (sacreBLEU, as rosettamt-evaluate), the
sentences that differ (with whether rosettamt's length limit bound them), and the export sizes.
Writes JSON to scripts/results/export_check-<name>.json (--json to choose). Not a timed test.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List


def read(path: Path) -> List[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n").rstrip() for line in f]


def sources_and_refs(args: argparse.Namespace, src_lang: str, tgt_lang: str) -> tuple:
    if args.src_file:
        src, ref = read(Path(args.src_file)), read(Path(args.ref_file))
    else:
        folder = Path(args.data_dir)
        pick = lambda lang: next(p for p in (folder / f"{args.split}.{lang}.gz", folder / f"{args.split}.{lang}")
                                 if p.is_file())  # noqa: E731
        src, ref = read(pick(src_lang)), read(pick(tgt_lang))
    if len(src) != len(ref):
        sys.exit(f"export_check: {len(src)} sources but {len(ref)} references")
    return src[: args.limit or None], ref[: args.limit or None]


def hf_outputs(model: Any, src_ids: List[List[int]], cfg: Any, limits: List[int], max_tokens: int) -> List[List[int]]:
    """transformers' generate() over rosettamt's batches (longest first by max_tokens), each with the
    largest of its sentences' rosettamt length limits."""
    from rosettamt.data.packing import longest_first
    from rosettamt.export.check import hf_generate

    out: List[List[int]] = [[] for _ in src_ids]
    rows = [i for i, ids in enumerate(src_ids) if ids]
    for batch in longest_first([len(src_ids[i]) + 1 for i in rows], max_tokens):
        batch = [rows[j] for j in batch]
        for i, tokens in zip(batch, hf_generate(model, [src_ids[i] for i in batch], cfg, max(limits[i] for i in batch))):
            out[i] = tokens
    return out


def compare(name: str, outputs: List[List[int]], reference: List[List[int]], limits: List[int], tokenizer: Any,
            refs: List[str], tgt_lang: str, seconds: float) -> Dict[str, Any]:
    from rosettamt.evaluate.scoring import score

    hyps = [tokenizer.detokenize(o) for o in outputs]
    differ = [i for i, (a, b) in enumerate(zip(outputs, reference)) if list(a) != list(b)]
    return {"engine": name, "identical_share": 1 - len(differ) / max(len(outputs), 1), "differing": len(differ),
            "differing_at_length_limit": sum(len(reference[i]) >= limits[i] for i in differ),
            "bleu": score(hyps, refs, tgt_lang, False)["bleu"], "seconds": seconds,
            "examples": [{"line": i, "rosettamt": tokenizer.detokenize(reference[i]), name: hyps[i],
                          "rosettamt_at_length_limit": len(reference[i]) >= limits[i]} for i in differ[:10]]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a run directory (its best checkpoint) or a checkpoint file")
    p.add_argument("--data-dir", help="folder of {split}.{lang}(.gz), e.g. ../shared/data/multi30k")
    p.add_argument("--split", default="test_2016_flickr")
    p.add_argument("--src-file")
    p.add_argument("--ref-file")
    p.add_argument("--limit", type=int, default=0, help="first N sentences (0 = all)")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--exports-dir", help="keep the exports here (default: a temporary folder)")
    p.add_argument("--json", help="default: scripts/results/export_check-<name>.json")
    args = p.parse_args()
    if not args.src_file and not args.data_dir or bool(args.src_file) != bool(args.ref_file):
        sys.exit("export_check: give --data-dir (with --split) or both --src-file and --ref-file")

    import torch

    from rosettamt.checkpoint import resolve_checkpoint
    from rosettamt.config import DecodeConfig, ExportConfig
    from rosettamt.engine.ct2 import CT2Engine
    from rosettamt.engine.native import NativeEngine
    from rosettamt.export import export
    from rosettamt.export.command import file_sizes
    from rosettamt.export.common import load_source

    torch.set_num_threads(args.threads)
    model_path = Path(args.model)
    checkpoint = resolve_checkpoint(run_dir=model_path) if model_path.is_dir() else resolve_checkpoint(model_path)
    source = load_source(checkpoint)
    src_lang, tgt_lang = source.langs
    src, refs = sources_and_refs(args, src_lang, tgt_lang)
    exports = Path(args.exports_dir or tempfile.mkdtemp(prefix="export_check_"))
    made: Dict[str, Path] = {}
    formats = [("ctranslate2", "float32"), ("ctranslate2-int8", "int8"), ("hf", "float32"), ("argos", "float32")]
    for name, quant in formats:
        fmt = name.split("-")[0]
        try:
            made[name] = export(ExportConfig(checkpoint=str(checkpoint), format=fmt, output=str(exports / name),
                                             overwrite=True, quantization=quant))
        except Exception as err:  # noqa: BLE001 - report what could not be exported and go on
            print(f"export_check: format={name}: {err}", file=sys.stderr)

    tokenizer = source.tokenizer
    src_ids = tokenizer.encode_src(src)
    native = NativeEngine(source.model, "cpu")
    report: Dict[str, Any] = {"checkpoint": str(checkpoint), "sentences": len(src), "split": args.split if not
                              args.src_file else Path(args.src_file).name, "threads": args.threads,
                              "sizes_bytes": {k: sum(file_sizes(v).values()) for k, v in made.items()},
                              "searches": {}}
    for cfg in (DecodeConfig(strategy="greedy"), DecodeConfig(strategy="beam", beam_size=args.beam, length_norm="average")):
        tag = "greedy" if cfg.strategy == "greedy" else f"beam{cfg.beam_size}"
        limits = [min(int(cfg.max_len_a * (len(i) + 1) + cfg.max_len_b), source.cfg.max_positions - 1) for i in src_ids]
        start = time.perf_counter()
        reference = [h[0].tokens for h in native.search(src_ids, cfg)]
        rows = [compare("rosettamt", reference, reference, limits, tokenizer, refs, tgt_lang, time.perf_counter() - start)]
        for name in ("ctranslate2", "ctranslate2-int8"):
            if name in made:
                engine, _, _ = CT2Engine.load(made[name], "cpu", "default", args.threads)
                start = time.perf_counter()
                out = [h[0].tokens for h in engine.search(src_ids, cfg)]
                rows.append(compare(name, out, reference, limits, tokenizer, refs, tgt_lang, time.perf_counter() - start))
        if "hf" in made:
            from transformers import AutoModelForSeq2SeqLM

            model = AutoModelForSeq2SeqLM.from_pretrained(made["hf"]).eval()
            start = time.perf_counter()
            out = hf_outputs(model, src_ids, cfg, limits, cfg.max_tokens)
            rows.append(compare("hf", out, reference, limits, tokenizer, refs, tgt_lang, time.perf_counter() - start))
        report["searches"][tag] = rows
        for r in rows:
            print(f"{tag:8s} {r['engine']:17s} identical {100 * r['identical_share']:6.2f}%  BLEU {r['bleu']:6.2f}  "
                  f"({r['differing']} differ, {r['differing_at_length_limit']} at rosettamt's length limit)")
    for name, size in report["sizes_bytes"].items():
        print(f"size {name:17s} {size / 1e6:8.1f} MB")
    out = Path(args.json) if args.json else Path(__file__).parent / "results" / f"export_check-{checkpoint.parent.parent.name if checkpoint.parent.name == 'checkpoints' else checkpoint.stem}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
