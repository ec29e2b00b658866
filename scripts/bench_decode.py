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

Issue 18 additions. A config may carry a precision and speed switches to turn off:
``beam:cache:int8``, ``beam:cache:off=kv_buffers+skip_reorder`` (rosettamt.speed; ``--speed-off`` for
every config). ``--rounds N`` runs the list N times interleaved and reports each config's median
run with every round's figure. ``--latency`` translates one sentence at a time (batch 1, what the
prompt and a lone server request see) and reports p50 / p95 / mean ms per sentence.
``--save-hyps DIR`` writes each config's outputs as token-id lines; ``--reference-hyps DIR`` counts
the lines that differ from such a file (an :int8 / :bf16 config is compared with the fp32 file).
The summary table and the JSON hold the ratios to CTranslate2 (float32, and the same compute type).
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
from typing import Any, Callable, Dict, List, Optional, Tuple

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


def parse_config(config: str) -> Tuple[str, str, Optional[str], str]:
    """"beam:cache[:int8][:off=kv_buffers+fast_topk]" -> (strategy, cache, precision or None, switches off)."""
    strategy, cache, *rest = config.split(":")
    off = next((x[len("off="):].replace("+", ",") for x in rest if x.startswith("off=")), "")
    precision = next((x for x in rest if not x.startswith("off=")), None)
    return strategy, cache, precision, off


def timed(search: Callable[[List[List[int]]], List[Any]], src_ids: List[List[int]],
          latency: bool) -> Dict[str, Any]:
    """Decode src_ids bucket by bucket (or, with latency, one sentence at a time) -> timings + outputs."""
    buckets, outputs, per_sentence = [], [None] * len(src_ids), []
    for lo, hi in BUCKETS:
        rows = [i for i, ids in enumerate(src_ids) if lo <= len(ids) <= hi]
        if not rows:
            continue
        start = time.perf_counter()
        if latency:  # batch 1: what the prompt and a lone server request see
            for i in rows:
                t0 = time.perf_counter()
                outputs[i] = search([src_ids[i]])[0][0].tokens
                per_sentence.append(time.perf_counter() - t0)
        else:
            for i, h in zip(rows, search([src_ids[i] for i in rows])):
                outputs[i] = h[0].tokens
        seconds = time.perf_counter() - start
        buckets.append({"bucket": f"{lo}-{hi}" if hi < 10_000 else f"{lo}+", "sentences": len(rows),
                        "seconds": seconds, "ms_per_sentence": 1000 * seconds / len(rows)})
    seconds = sum(b["seconds"] for b in buckets)
    tokens = sum(len(o) for o in outputs if o is not None)
    out = {"sentences": len(src_ids), "seconds": seconds, "sentences_per_s": len(src_ids) / seconds,
           "tokens_per_s": tokens / seconds, "buckets": buckets, "outputs": outputs, "latency": latency}
    if latency:
        ms = sorted(1000 * x for x in per_sentence)
        pick = lambda q: ms[min(len(ms) - 1, int(round(q * (len(ms) - 1))))]  # noqa: E731
        out.update(latency_p50_ms=pick(0.5), latency_p95_ms=pick(0.95), latency_mean_ms=sum(ms) / len(ms))
    return out


def run_one(args: argparse.Namespace) -> Dict[str, Any]:
    """One configuration (args.one = "greedy:cache" etc.), in this process: timings + outputs."""
    import dataclasses

    import torch

    from rosettamt.checkpoint import load_for_inference
    from rosettamt.config import DecodeConfig
    from rosettamt.search import translate_ids
    from rosettamt.device import resolve_device, setup_allocator

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    setup_allocator(not args.no_keep_freed_memory, device)  # what the commands do at start
    strategy, cache, precision, off = parse_config(args.one)
    off = ",".join(x for x in (args.speed_off, off) if x)
    try:
        from rosettamt import speed
    except ImportError:  # a checkout from before the speed switches (saving reference outputs)
        speed = None
        if off:
            sys.exit("bench_decode: this rosettamt has no speed switches (rosettamt.speed)")
    if speed is not None:
        speed.set_switches(off)
    ct2 = strategy.startswith("ct2-")  # ct2-greedy:int8: the CTranslate2 export, same sentences and batches
    if ct2:
        strategy, ct2_type, precision = strategy[len("ct2-"):], cache, "fp32"
    model, tok, ckpt = load_for_inference(Path(args.checkpoint), device, precision or args.precision)
    src_ids = tok.encode_src(read_sources(args, ckpt))
    cfg = DecodeConfig(strategy=strategy, beam_size=args.beam if strategy == "beam" else 1,
                       use_cache=cache == "cache", max_tokens=args.max_tokens,
                       keep_freed_memory=not args.no_keep_freed_memory, length_norm=args.length_norm)
    if ct2:
        from rosettamt.engine.ct2 import CT2Engine

        engine, _, _ = CT2Engine.load(Path(args.ct2_dir), "cpu" if args.device == "auto" else args.device,
                                      ct2_type, args.threads)
        cfg = dataclasses.replace(cfg, use_cache=True)
        search = lambda ids: engine.search(ids, cfg)  # noqa: E731
        engine_info = {"engine": "ctranslate2", "precision": ct2_type, "keep_freed_memory": False}
    else:
        def search(ids: List[List[int]]) -> List[Any]:
            hyps = translate_ids(model, ids, cfg, device)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            return hyps

        engine_info = {"engine": "rosettamt", "keep_freed_memory": cfg.keep_freed_memory,
                       "precision": "int8" if getattr(model, "int8", False) else
                       str(next(model.parameters()).dtype).replace("torch.", ""),
                       "speed_off": sorted(n for n, v in speed.SWITCHES.items() if not v) if speed else []}
    search(src_ids[:16])  # warm-up: allocator, kernels, caches
    if args.latency:
        for ids in src_ids[:16]:
            search([ids])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    result = timed(search, src_ids, args.latency)
    return {"config": args.one, "strategy": cfg.strategy, "beam_size": cfg.beam_size, "use_cache": cfg.use_cache,
            "device": str(device), "threads": args.threads, "max_tokens": args.max_tokens,
            "length_norm": str(cfg.length_norm), **engine_info, **result, **peak_memory_mib(device)}


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
    same = r["device"] == "cpu" and r["threads"] == 2 and r["precision"] in ("fp32", "float32") and r["sentences"] == 1000
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
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "int8", "auto"),
                   help="decode.precision: the dtype the model decodes in (the anchors are fp32)")
    p.add_argument("--no-keep-freed-memory", action="store_true",
                   help="decode.keep_freed_memory=false: glibc's default malloc (big blocks unmapped on free)")
    p.add_argument("--max-tokens", type=int, default=8192, help="source tokens per batch")
    p.add_argument("--configs", default=CONFIGS,
                   help="comma-separated STRATEGY:cache|recompute[:PRECISION][:off=SWITCH+SWITCH]")
    p.add_argument("--speed-off", default="", help="speed switches to turn off in every rosettamt config "
                   "(kv_buffers,skip_reorder,fast_topk or all; rosettamt.speed)")
    p.add_argument("--latency", action="store_true",
                   help="one sentence at a time (batch 1), p50/p95 latency per sentence (beam: --configs beam:cache)")
    p.add_argument("--rounds", type=int, default=1,
                   help="run the config list this many times, interleaved (A B A B): medians are reported")
    p.add_argument("--backend", default="rosettamt", choices=("rosettamt", "ctranslate2"),
                   help="ctranslate2: rosettamt and a CTranslate2 export of the same weights, side by side")
    p.add_argument("--ct2-dir", help="the export (rosettamt-export format=ctranslate2); default: made in a temp folder")
    p.add_argument("--compute-types", default="float32,int8", help="CTranslate2 compute types (--backend ctranslate2)")
    p.add_argument("--length-norm", default=None, help="decode.length_norm (default: gnmt; average with ctranslate2)")
    p.add_argument("--save-hyps", metavar="DIR",
                   help="write each configuration's outputs (token ids, one line per sentence) to DIR/CONFIG.LENGTH_NORM.ids")
    p.add_argument("--reference-hyps", metavar="DIR",
                   help="count the lines that differ from DIR/CONFIG.LENGTH_NORM.ids of an earlier --save-hyps run "
                        "(a :bf16/:int8 config is compared with its fp32 file when it has none of its own)")
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
    runs: Dict[str, List[Dict[str, Any]]] = {}
    for _ in range(max(1, args.rounds)):  # interleaved: A B A B, so a busy spell hits both
        for config in args.configs.split(","):
            cmd = [sys.executable, __file__, *argv, "--one", config]
            env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                sys.exit(f"bench_decode: {config} failed:\n{proc.stderr}")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            runs.setdefault(config, []).append(r)
            extra = f", p50 {r['latency_p50_ms']:.1f} ms, p95 {r['latency_p95_ms']:.1f} ms" if r["latency"] else ""
            print(f"{config}: {r['sentences_per_s']:.1f} sentences/s on {r['device']}{extra}", file=sys.stderr)
    results = [median_run(rs) for rs in runs.values()]
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
    for r in results:
        compare_with_saved(args, r)
    print(markdown(results))
    print()
    print(summary(results))
    print()
    print(anchors(results))
    if args.json:
        slim = [{k: v for k, v in r.items() if k != "outputs"} for r in results]
        Path(args.json).write_text(json.dumps(slim, indent=1) + "\n", encoding="utf-8")


def median_run(rs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """One configuration's rounds -> its median run (by sentences/s), with every round's figures."""
    rs = sorted(rs, key=lambda r: r["sentences_per_s"])
    r = dict(rs[(len(rs) - 1) // 2])
    r["rounds_sentences_per_s"] = [x["sentences_per_s"] for x in rs]
    if r["latency"]:
        r["rounds_latency_p50_ms"] = [x["latency_p50_ms"] for x in rs]
        r["rounds_latency_p95_ms"] = [x["latency_p95_ms"] for x in rs]
    return r


def summary(results: List[Dict[str, Any]]) -> str:
    """One row per configuration: switches off, speed (median of the rounds), latency, the ratio to
    CTranslate2 (same search; float32, and the same compute type where there is one) and how many
    outputs differ from --reference-hyps."""
    ct2 = {(r["strategy"], r["precision"]): r for r in results if r.get("engine") == "ctranslate2"}
    head = ("| config | engine | precision | speed switches off | sentences/s | rounds | p50 ms | p95 ms | "
            "x CT2 float32 | x CT2 same type | lines differing from reference |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        def ratio(other: Optional[Dict[str, Any]]) -> str:
            if other is None or other is r:
                return "-"
            if r["latency"]:
                return f"{other['latency_p50_ms'] / r['latency_p50_ms']:.2f}"  # > 1: faster than CT2
            return f"{r['sentences_per_s'] / other['sentences_per_s']:.2f}"

        r["x_ct2_float32"] = ratio(ct2.get((r["strategy"], "float32")))
        r["x_ct2_same_type"] = ratio(ct2.get((r["strategy"], r["precision"])))
        lat = (f"{r['latency_p50_ms']:.1f} | {r['latency_p95_ms']:.1f}" if r["latency"] else "- | -")
        lines.append(f"| {r['config']} | {r.get('engine', 'rosettamt')} | {r['precision']} | "
                     f"{'+'.join(r.get('speed_off', [])) or 'none'} | {r['sentences_per_s']:.1f} | "
                     f"{' / '.join(f'{x:.1f}' for x in r['rounds_sentences_per_s'])} | {lat} | {r['x_ct2_float32']} | "
                     f"{r['x_ct2_same_type']} | {r.get('differ_from_reference', '-')} |")
    note = "Ratios: sentences/s over CTranslate2's (with --latency: CTranslate2's p50 over ours); > 1 = faster."
    return "\n".join(lines + ["", note])


def hyps_name(config: str, length_norm: str) -> str:
    return f"{config.replace(':', '_')}.{length_norm}.ids"


def compare_with_saved(args: argparse.Namespace, r: Dict[str, Any]) -> None:
    """--save-hyps / --reference-hyps: outputs as token-id lines; r gets the reference's name and
    how many lines differ from it (the issue's "at most a handful of the 1,000 lines")."""
    lines = [" ".join(map(str, o or [])) for o in r["outputs"]]
    if args.save_hyps:
        Path(args.save_hyps).mkdir(parents=True, exist_ok=True)
        (Path(args.save_hyps) / hyps_name(r["config"], args.length_norm)).write_text("\n".join(lines) + "\n")
    if not args.reference_hyps:
        return
    base = ":".join(r["config"].split(":")[:2])  # beam:cache:int8 -> beam:cache
    for name in (r["config"], base):
        path = Path(args.reference_hyps) / hyps_name(name, args.length_norm)
        if path.is_file():
            ref = path.read_text().splitlines()
            if len(ref) != len(lines):
                sys.exit(f"bench_decode: {path} has {len(ref)} lines, this run {len(lines)}")
            r["reference"], r["differ_from_reference"] = str(path), sum(a != b for a, b in zip(lines, ref))
            print(f"{r['config']}: {r['differ_from_reference']}/{len(lines)} lines differ from {path}", file=sys.stderr)
            return


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
