#!/usr/bin/env python
"""rosettamt-serve under load, beside the offline figures for the same search settings.

    python scripts/bench_serve.py --run-dir outputs/en_de --data-dir ../shared/data/multi30k --clients 32
    python scripts/bench_serve.py --checkpoint last.pt --src-file test.en --clients 1 --requests 100

Starts rosettamt-serve on 127.0.0.1 (a free port) with the checkpoint, sends a bounded load
(``--clients`` concurrent clients, each ``--requests`` LibreTranslate /translate requests of
``--per-request`` sentences, taken in order from --src-file or {data_dir}/{split}.{source}.gz,
the source language being the one the server reports), then stops it with SIGTERM. Reports
requests/s, sentences/s, latency p50/p95/p99, errors by status, the server's batching counters
and its peak RSS; beside them, in a separate process with the same threads and search: the
offline Translator.translate throughput on the same sentences, its latency for one sentence at
a time, and (--bench-decode) scripts/bench_decode.py's figure. Stops by itself: the load is
bounded and --max-seconds cuts it short. Writes JSON (--json, default under scripts/results/).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

HERE = Path(__file__).resolve().parent


def percentile(values: List[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def read_sentences(args: argparse.Namespace, source: str) -> List[str]:
    if args.src_file:
        path = Path(args.src_file)
    else:
        path = next((p for p in (Path(args.data_dir) / f"{args.split}.{source}.gz",
                                 Path(args.data_dir) / f"{args.split}.{source}") if p.is_file()), None)
        if path is None:
            sys.exit(f"bench_serve: no {args.split}.{source}(.gz) in {args.data_dir}")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f if line.strip()]
    return lines[: args.limit or None]


class Server:
    """rosettamt-serve in a child process on a free 127.0.0.1 port; its log read by a thread
    (scripts/screenshot_page.py uses it too)."""

    def __init__(self, run_dir: str | None, checkpoint: str | None, threads: int, overrides: List[str]) -> None:
        model = [f"run_dir={run_dir}"] if run_dir else [f"checkpoint={checkpoint}"]
        cmd = [sys.executable, "-m", "rosettamt.serve", *model, "serve.port=0", f"serve.threads={threads}", *overrides]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: List[str] = []
        threading.Thread(target=lambda: self.lines.extend(line.rstrip() for line in self.proc.stderr), daemon=True).start()

    def wait_ready(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            for line in list(self.lines):
                m = re.search(r"ready: .* at (http://[^ ]+)/$", line)
                if m:
                    return m.group(1)
            time.sleep(0.05)
        self.stop()
        sys.exit("bench_serve: the server did not start:\n" + "\n".join(self.lines[-20:]))

    def peak_rss_mib(self) -> float:
        """VmHWM: the most resident memory the server process ever had (Linux)."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return float("nan")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


async def drive(url: str, batches: List[List[List[str]]], timeout: float, max_seconds: float) -> Dict[str, Any]:
    """Each client sends its requests one after another; all clients at once. Latencies in ms."""
    import httpx

    latencies: List[float] = []
    errors: Dict[str, int] = {}
    deadline = time.monotonic() + max_seconds
    limits = httpx.Limits(max_connections=len(batches), max_keepalive_connections=len(batches))
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as client:
        async def one_client(requests: List[List[str]]) -> None:
            for q in requests:
                if time.monotonic() > deadline:
                    return
                started = time.perf_counter()
                try:
                    r = await client.post("/translate", json={"q": q})
                    key = None if r.status_code == 200 else str(r.status_code)
                except httpx.HTTPError as err:
                    key = type(err).__name__
                if key is None:
                    latencies.append(1000 * (time.perf_counter() - started))
                else:
                    errors[key] = errors.get(key, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(one_client(r) for r in batches))
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "latencies": latencies, "errors": errors}


def offline(args: argparse.Namespace, sentences: List[str]) -> Dict[str, Any]:
    """In this (child) process: Translator.translate of all sentences at once, and one at a time."""
    from rosettamt.config import DecodeConfig
    from rosettamt.device import set_threads, setup_allocator
    from rosettamt.translate import Translator

    set_threads(args.threads)
    setup_allocator(True, args.device)
    path = args.checkpoint or args.run_dir
    t = Translator.from_checkpoint(path, device=args.device, decode=DecodeConfig(
        strategy="beam" if args.beam > 1 else "greedy", beam_size=args.beam))
    t.translate(sentences[:16])  # warm-up
    started = time.perf_counter()
    t.translate(sentences)
    batch_s = time.perf_counter() - started
    single = []
    for s in sentences[: args.single]:
        started = time.perf_counter()
        t.translate([s])
        single.append(1000 * (time.perf_counter() - started))
    return {"sentences": len(sentences), "sentences_per_s": len(sentences) / batch_s,
            "single_p50_ms": percentile(single, 50), "single_mean_ms": statistics.fmean(single)}


def child(args: argparse.Namespace, sentences: List[str], what: str) -> Dict[str, Any]:
    """Run ``what`` (offline | bench_decode) in its own process with the same threads."""
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src.txt"
        src.write_text("\n".join(sentences) + "\n", encoding="utf-8")
        if what == "offline":
            cmd = [sys.executable, __file__, *sys.argv[1:], "--offline-child", str(src)]
        else:
            from rosettamt.checkpoint import resolve_checkpoint

            ckpt = str(resolve_checkpoint(args.checkpoint, args.run_dir))
            cmd = [sys.executable, str(HERE / "bench_decode.py"), ckpt, "--src-file", str(src), "--threads",
                   str(args.threads), "--device", args.device, "--beam", str(args.beam), "--configs",
                   f"{'beam' if args.beam > 1 else 'greedy'}:cache", "--json", str(Path(tmp) / "d.json")]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.max_seconds + 600)
        if proc.returncode != 0:
            sys.exit(f"bench_serve: {what} failed:\n{proc.stderr[-3000:]}")
        if what == "offline":
            return json.loads(proc.stdout.strip().splitlines()[-1])
        return json.loads((Path(tmp) / "d.json").read_text())[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("--run-dir")
    model.add_argument("--checkpoint")
    p.add_argument("--data-dir", default="data/multi30k", help="directory of {split}.{lang}.gz")
    p.add_argument("--split", default="test_2016_flickr")
    p.add_argument("--src-file", help="sentences to send instead of a split (one a line)")
    p.add_argument("--limit", type=int, default=0, help="first N sentences only (0 = all)")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--requests", type=int, default=20, help="requests per client")
    p.add_argument("--per-request", type=int, default=1, help="sentences per request (q as a list when > 1)")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads of the server (and offline)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-wait-ms", type=float, default=0.0, help="serve.max_wait_ms (0, the server's default)")
    p.add_argument("--max-batch-tokens", type=int, default=2048)
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    p.add_argument("--max-seconds", type=float, default=600.0, help="stop sending after this long")
    p.add_argument("--single", type=int, default=50, help="sentences timed one at a time offline")
    p.add_argument("--bench-decode", action="store_true", help="also run scripts/bench_decode.py on them")
    p.add_argument("--serve-arg", dest="serve_args", action="append", default=[], help="another server override")
    p.add_argument("--json", help="default: scripts/results/bench_serve_<model>_<device>_c<clients>.json")
    p.add_argument("--offline-child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.offline_child:
        print(json.dumps(offline(args, Path(args.offline_child).read_text(encoding="utf-8").splitlines())))
        return

    server = Server(args.run_dir, args.checkpoint, args.threads, [
        f"device={args.device}", f"decode.beam_size={args.beam}", f"decode.strategy={'beam' if args.beam > 1 else 'greedy'}",
        f"serve.max_wait_ms={args.max_wait_ms}", f"serve.max_batch_tokens={args.max_batch_tokens}",
        "serve.queue_size=100000", f"serve.max_sentences={max(100, args.per_request)}", *args.serve_args])
    try:
        url = server.wait_ready(timeout=600)
        import httpx

        source = httpx.get(f"{url}/languages").json()[0]["code"]
        pool = read_sentences(args, source)
        if not pool:
            sys.exit("bench_serve: no sentences")
        n = args.clients * args.requests
        qs = [[pool[(i * args.per_request + k) % len(pool)] for k in range(args.per_request)] for i in range(n)]
        qs = [q if len(q) > 1 else q[0] for q in qs]
        asyncio.run(drive(url, [[q] for q in qs[: min(8, n)]], args.timeout, args.max_seconds))  # warm-up
        before = httpx.get(f"{url}/health").json()["batching"]
        load = asyncio.run(drive(url, [qs[c::args.clients] for c in range(args.clients)], args.timeout,
                                 args.max_seconds))
        after = httpx.get(f"{url}/health").json()["batching"]
        rss = server.peak_rss_mib()
    finally:
        code = server.stop()
    done = len(load["latencies"])
    sent = [s for q in qs for s in ([q] if isinstance(q, str) else q)]
    batching = {k: after[k] - before[k] for k in ("batches", "sentences", "requests")}
    batching["mean_batch_sentences"] = batching["sentences"] / max(batching["batches"], 1)
    batching["max_batch_sentences"] = after["max_batch_sentences"]
    record: Dict[str, Any] = {
        "model": args.checkpoint or args.run_dir, "device": args.device, "threads": args.threads, "beam": args.beam,
        "clients": args.clients, "requests_per_client": args.requests, "sentences_per_request": args.per_request,
        "max_wait_ms": args.max_wait_ms, "max_batch_tokens": args.max_batch_tokens,
        "answered": done, "errors": load["errors"], "seconds": load["seconds"],
        "requests_per_s": done / load["seconds"], "sentences_per_s": done * args.per_request / load["seconds"],
        "latency_ms": {f"p{q}": percentile(load["latencies"], q) for q in (50, 95, 99)},
        "server_peak_rss_mib": rss, "server_exit_code": code, "batching": batching}
    record["offline_translator"] = child(args, sent, "offline")
    if args.bench_decode:
        record["offline_bench_decode"] = {k: v for k, v in child(args, sent, "bench_decode").items() if k != "buckets"}
    off = record["offline_translator"]
    record["served_vs_offline"] = record["sentences_per_s"] / off["sentences_per_s"]
    record["p50_minus_offline_single_ms"] = record["latency_ms"]["p50"] - off["single_p50_ms"]
    name = Path(args.run_dir or args.checkpoint).resolve()
    name = name.parent.parent.name if name.parent.name == "checkpoints" else name.name
    out = Path(args.json or HERE / "results" / f"bench_serve_{name}_{args.device}_c{args.clients}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    lat = record["latency_ms"]
    print("| clients | requests | sentences/s | requests/s | p50 / p95 / p99 ms | errors | server peak RSS MiB "
          "| offline Translator sentences/s | served / offline | offline 1-sentence p50 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.clients} | {done} | {record['sentences_per_s']:.1f} | {record['requests_per_s']:.1f} | "
          f"{lat['p50']:.1f} / {lat['p95']:.1f} / {lat['p99']:.1f} | {sum(load['errors'].values())} | {rss:.0f} | "
          f"{off['sentences_per_s']:.1f} | {record['served_vs_offline']:.0%} | {off['single_p50_ms']:.1f} |")
    if "offline_bench_decode" in record:
        print(f"bench_decode.py, same settings: {record['offline_bench_decode']['sentences_per_s']:.1f} sentences/s")
    print(f"batches: {batching['batches']}, mean {batching['mean_batch_sentences']:.1f} sentences; wrote {out}",
          file=sys.stderr)
    if code != 0 or load["errors"]:
        sys.exit(f"bench_serve: server exit code {code}, errors {load['errors']}")


if __name__ == "__main__":
    main()
