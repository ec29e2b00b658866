#!/usr/bin/env python
"""Decoding speed: greedy and beam search, with the K/V cache and with full recomputation.

    python scripts/bench_decode.py CHECKPOINT [--data-dir ../shared/data/multi30k] [--threads 2]
    python scripts/bench_decode.py CHECKPOINT --src-file test.en --limit 100 --json bench.json
    python scripts/bench_decode.py CHECKPOINT --backend ctranslate2 [--ct2-dir EXPORT] [--compute-types float32,int8]

For each of greedy / beam (``--beam``, default 5) x cache / recompute (``decode.use_cache=false``)
it decodes the source side of a split (default test_2016_flickr; or ``--src-file``) and reports
sentences/s, generated tokens/s, peak memory and the time per sentence by source length bucket.
Every configuration runs in its own process, so the peak RSS (CPU) or the peak CUDA memory is
that configuration's own. Sentences are decoded bucket by bucket (each bucket in length-sorted
batches of ``--max-tokens``), so the bucket times add up to the total time. Prints Markdown tables.

``--backend ctranslate2`` also decodes the same sentences, with the same batches, through a CTranslate2
export of the same weights (``--ct2-dir``, or one made from the checkpoint in a temporary folder),
once per ``--compute-types`` entry, and compares rosettamt (configs ``greedy:cache`` and ``beam:cache``,
``:bf16`` appended for bf16) with CTranslate2 (``ct2-greedy:TYPE``, ``ct2-beam:TYPE``). Beam search then
uses length_norm=average, the length normalisation both engines share.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

CONFIGS = "greedy:cache,greedy:recompute,beam:cache,beam:recompute"
BUCKETS = [(1, 10), (11, 15), (16, 20), (21, 30), (31, 10_000)]  # source subword tokens, EOS not counted

# Peers measured on this 2-core CPU for model=small, fp32, 2 threads, test_2016_flickr (1,000
# sentences): (name, greedy sentences/s, beam 5 sentences/s); ranges as measured.
ANCHORS = [("JoeyNMT 2.3", "12", "8"), ("Hugging Face generate", "65", "18"),
           ("OpenNMT-py 3.5", "150-200", "72-80"), ("CTranslate2 (C++)", "~300", "~120"),
           ("rosettamt goal", "250", "100")]


def read_sources(args: argparse.Namespace, ckpt: Dict[str, Any]) -> List[str]:
    """Source sentences: --src-file, else {data_dir}/{split}.{src_lang}.gz, else the checkpoint's corpus."""
    from rosettamt.config import DataConfig, from_dict

    data = from_dict(DataConfig, ckpt.get("config", {}).get("data", {}))
    if args.src_file:
        path = Path(args.src_file)
    elif args.data_dir:
        lang = args.src_lang or data.src_lang
        path = next((p for p in (Path(args.data_dir) / f"{args.split}.{lang}.gz",
                                 Path(args.data_dir) / f"{args.split}.{lang}") if p.is_file()), None)
        if path is None:
            sys.exit(f"bench_decode: no {args.split}.{lang}(.gz) in {args.data_dir}")
    else:
        from rosettamt.evaluate import split_texts

        return split_texts(data, [args.split])[args.split][0][: args.limit or None]
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    return lines[: args.limit or None]


def peak_memory_mib(device) -> Dict[str, float]:
    """Peak resident memory of this process (and peak CUDA memory), in MiB."""
    import torch

    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    out = {"peak_rss_mib": rss_kib / 1024}
    if device.type == "cuda":
        out["peak_cuda_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def run_one(args: argparse.Namespace) -> Dict[str, Any]:
    """One configuration (args.one = "greedy:cache" etc.), in this process: timings + outputs."""
    import torch

    from rosettamt.checkpoint import load_for_inference
    from rosettamt.config import DecodeConfig
    from rosettamt.search import translate_ids
    from rosettamt.device import resolve_device, setup_allocator

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    setup_allocator(not args.no_keep_freed_memory, device)  # what the commands do at start
    model, tok, ckpt = load_for_inference(Path(args.checkpoint), device, args.precision)
    src_ids = tok.encode_src(read_sources(args, ckpt))
    strategy, cache, *precision = args.one.split(":")
    cfg = DecodeConfig(strategy=strategy, beam_size=args.beam if strategy == "beam" else 1,
                       use_cache=cache == "cache", max_tokens=args.max_tokens,
                       keep_freed_memory=not args.no_keep_freed_memory, length_norm=args.length_norm)
    if precision:  # greedy:cache:bf16
        model, tok, ckpt = load_for_inference(Path(args.checkpoint), device, precision[0])

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    if strategy.startswith("ct2-"):  # ct2-greedy:int8: the CTranslate2 export, same sentences and batches
        return run_ct2(args, tok, src_ids, cfg, strategy[len("ct2-"):], cache)
    translate_ids(model, src_ids[:16], cfg, device)  # warm-up: allocator, kernels, caches
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    buckets, outputs = [], [None] * len(src_ids)
    for lo, hi in BUCKETS:
        rows = [i for i, ids in enumerate(src_ids) if lo <= len(ids) <= hi]
        if not rows:
            continue
        sync()
        start = time.perf_counter()
        hyps = translate_ids(model, [src_ids[i] for i in rows], cfg, device)
        sync()
        seconds = time.perf_counter() - start
        for i, h in zip(rows, hyps):
            outputs[i] = h[0].tokens
        buckets.append({"bucket": f"{lo}-{hi}" if hi < 10_000 else f"{lo}+", "sentences": len(rows),
                        "seconds": seconds, "ms_per_sentence": 1000 * seconds / len(rows)})
    seconds = sum(b["seconds"] for b in buckets)
    tokens = sum(len(o) for o in outputs if o is not None)
    return {"config": args.one, "strategy": strategy, "beam_size": cfg.beam_size, "use_cache": cfg.use_cache,
            "device": str(device), "precision": str(next(model.parameters()).dtype).replace("torch.", ""),
            "threads": args.threads, "keep_freed_memory": cfg.keep_freed_memory,
            "sentences": len(src_ids), "seconds": seconds,
            "sentences_per_s": len(src_ids) / seconds, "tokens_per_s": tokens / seconds,
            "buckets": buckets, "outputs": outputs, **peak_memory_mib(device)}


def run_ct2(args: argparse.Namespace, tok: Any, src_ids: List[List[int]], cfg: Any, strategy: str,
            compute_type: str) -> Dict[str, Any]:
    """One CTranslate2 configuration: the rosettamt.engine CT2Engine on --ct2-dir, bucket by bucket."""
    import dataclasses

    from rosettamt.engine.ct2 import CT2Engine

    engine, _, _ = CT2Engine.load(Path(args.ct2_dir), "cpu" if args.device == "auto" else args.device,
                                  compute_type, args.threads)
    cfg = dataclasses.replace(cfg, strategy=strategy, beam_size=args.beam if strategy == "beam" else 1)
    engine.search(src_ids[:16], cfg)  # warm-up
    buckets, outputs = [], [None] * len(src_ids)
    for lo, hi in BUCKETS:
        rows = [i for i, ids in enumerate(src_ids) if lo <= len(ids) <= hi]
        if not rows:
            continue
        start = time.perf_counter()
        hyps = engine.search([src_ids[i] for i in rows], cfg)
        seconds = time.perf_counter() - start
        for i, h in zip(rows, hyps):
            outputs[i] = h[0].tokens
        buckets.append({"bucket": f"{lo}-{hi}" if hi < 10_000 else f"{lo}+", "sentences": len(rows),
                        "seconds": seconds, "ms_per_sentence": 1000 * seconds / len(rows)})
    seconds = sum(b["seconds"] for b in buckets)
    tokens = sum(len(o) for o in outputs if o is not None)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"config": args.one, "engine": "ctranslate2", "strategy": strategy, "beam_size": cfg.beam_size,
            "use_cache": True, "device": "cpu", "precision": compute_type, "threads": args.threads,
            "keep_freed_memory": False, "sentences": len(src_ids), "seconds": seconds,
            "sentences_per_s": len(src_ids) / seconds, "tokens_per_s": tokens / seconds, "buckets": buckets,
            "outputs": outputs, "peak_rss_mib": rss}


def label(r: Dict[str, Any]) -> str:
    """greedy / beam 5, prefixed by the engine when it is CTranslate2."""
    name = "greedy" if r["strategy"] == "greedy" else f"beam {r['beam_size']}"
    return f"CTranslate2 {name}" if r.get("engine") == "ctranslate2" else name


def markdown(results: List[Dict[str, Any]]) -> str:
    """The two tables: throughput and memory; time per sentence by source length."""
    has_cuda = any("peak_cuda_mib" in r for r in results)
    base = {r["strategy"]: r for r in results if not r["use_cache"]}
    head = "| search | K/V cache | precision | sentences/s | tokens/s | speed-up | peak RSS (MiB) |" + (
        " peak CUDA (MiB) |" if has_cuda else "")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        name = label(r)
        ref = base.get(r["strategy"])
        speedup = f"{r['sentences_per_s'] / ref['sentences_per_s']:.1f}x" if ref and r["use_cache"] else "1.0x"
        row = (f"| {name} | {'yes' if r['use_cache'] else 'no (recompute)'} | {r.get('precision', 'float32')} | "
               f"{r['sentences_per_s']:.1f} | "
               f"{r['tokens_per_s']:.0f} | {speedup} | {r['peak_rss_mib']:.0f} |")
        if has_cuda:
            row += f" {r.get('peak_cuda_mib', 0):.0f} |"
        lines.append(row)
    names = [b["bucket"] for b in results[0]["buckets"]]
    counts = {b["bucket"]: b["sentences"] for b in results[0]["buckets"]}
    lines += ["", "Time per sentence (ms) by source length (subword tokens; sentences per bucket in brackets):", "",
              "| search | K/V cache | " + " | ".join(f"{n} ({counts[n]})" for n in names) + " |",
              "|---|---|" + "---|" * len(names)]
    for r in results:
        name = label(r)
        ms = {b["bucket"]: b["ms_per_sentence"] for b in r["buckets"]}
        lines.append(f"| {name} | {'yes' if r['use_cache'] else 'no'} | "
                     + " | ".join(f"{ms.get(n, float('nan')):.1f}" for n in names) + " |")
    return "\n".join(lines)


def anchors(results: List[Dict[str, Any]]) -> str:
    """This run's cached greedy / beam speeds beside the peers' (flagged when the setting differs)."""
    cached = {r["strategy"]: r for r in results if r["use_cache"] and r.get("engine") != "ctranslate2"}
    if not cached:
        return ""
    r = next(iter(cached.values()))
    same = r["device"] == "cpu" and r["threads"] == 2 and r["precision"] == "float32" and r["sentences"] == 1000
    lines = ["Peer anchors (sentences/s; model=small, same 2-core CPU, 2 threads, fp32, 1,000 sentences):", "",
             "| decoder | greedy | beam 5 |", "|---|---|---|"]
    lines += [f"| {name} | {greedy} | {beam} |" for name, greedy, beam in ANCHORS]
    speed = {k: f"{v['sentences_per_s']:.0f}" for k, v in cached.items()}
    note = "" if same else (f" ({r['device']}, {r['threads']} threads, {r['precision']}, {r['sentences']} sentences:"
                            " not the anchors' setting)")
    lines.append(f"| this run{note} | {speed.get('greedy', '-')} | {speed.get('beam', '-')} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--data-dir", help="directory of {split}.{lang}.gz (default: the checkpoint's corpus)")
    p.add_argument("--split", default="test_2016_flickr")
    p.add_argument("--src-lang", help="default: the checkpoint's data.src_lang")
    p.add_argument("--src-file", help="decode this file instead of a split")
    p.add_argument("--limit", type=int, default=0, help="first N sentences only (0 = all)")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "auto"),
                   help="decode.precision: the dtype the model decodes in (the anchors are fp32)")
    p.add_argument("--no-keep-freed-memory", action="store_true",
                   help="decode.keep_freed_memory=false: glibc's default malloc (big blocks unmapped on free)")
    p.add_argument("--max-tokens", type=int, default=8192, help="source tokens per batch")
    p.add_argument("--configs", default=CONFIGS)
    p.add_argument("--backend", default="rosettamt", choices=("rosettamt", "ctranslate2"),
                   help="ctranslate2: rosettamt and a CTranslate2 export of the same weights, side by side")
    p.add_argument("--ct2-dir", help="the export (rosettamt-export format=ctranslate2); default: made in a temp folder")
    p.add_argument("--compute-types", default="float32,int8", help="CTranslate2 compute types (--backend ctranslate2)")
    p.add_argument("--length-norm", default=None, help="decode.length_norm (default: gnmt; average with ctranslate2)")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one configuration, print JSON
    args = p.parse_args()
    if args.length_norm is None:
        args.length_norm = "average" if args.backend == "ctranslate2" else "gnmt"

    if args.one:
        print(json.dumps(run_one(args)))
        return
    argv = sys.argv[1:]
    if args.backend == "ctranslate2":
        argv += prepare_ct2(args)
    results = []
    for config in args.configs.split(","):
        cmd = [sys.executable, __file__, *argv, "--one", config]
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            sys.exit(f"bench_decode: {config} failed:\n{proc.stderr}")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        r = results[-1]
        print(f"{config}: {r['sentences_per_s']:.1f} sentences/s on {r['device']}", file=sys.stderr)
    by_config = {r["config"]: r for r in results}
    for strategy in ("greedy", "beam"):
        a, b = by_config.get(f"{strategy}:cache"), by_config.get(f"{strategy}:recompute")
        if a and b:
            same = sum(x == y for x, y in zip(a["outputs"], b["outputs"]))
            print(f"{strategy}: cached and recomputed outputs identical for {same}/{len(a['outputs'])} sentences",
                  file=sys.stderr)
    for r in results:
        a = by_config.get(f"{r['strategy']}:cache")
        if r.get("engine") == "ctranslate2" and a:
            same = sum(x == y for x, y in zip(a["outputs"], r["outputs"]))
            print(f"CTranslate2 {r['precision']} {r['strategy']}: outputs identical to rosettamt's for "
                  f"{same}/{len(a['outputs'])} sentences", file=sys.stderr)
    print(markdown(results))
    print()
    print(anchors(results))
    if args.json:
        slim = [{k: v for k, v in r.items() if k != "outputs"} for r in results]
        Path(args.json).write_text(json.dumps(slim, indent=1) + "\n", encoding="utf-8")


def prepare_ct2(args: argparse.Namespace) -> List[str]:
    """--backend ctranslate2: the export to time (made from the checkpoint unless --ct2-dir), and the
    configurations: rosettamt's cached searches, then CTranslate2's for each compute type."""
    import tempfile

    if not args.ct2_dir:
        from rosettamt.config import ExportConfig
        from rosettamt.export import export

        args.ct2_dir = str(Path(tempfile.mkdtemp(prefix="bench_ct2_")) / "ct2")
        export(ExportConfig(checkpoint=args.checkpoint, format="ctranslate2", output=args.ct2_dir))
    if args.configs == CONFIGS:
        types = [t for t in args.compute_types.split(",") if t]
        args.configs = ",".join(["greedy:cache", "beam:cache"] + [f"ct2-{s}:{t}" for t in types
                                                                   for s in ("greedy", "beam")])
    return ["--ct2-dir", args.ct2_dir, "--configs", args.configs, "--length-norm", args.length_norm]


if __name__ == "__main__":
    main()
