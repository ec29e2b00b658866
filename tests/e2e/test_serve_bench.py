"""scripts/bench_serve.py as a user runs it, on the toy model and a tiny load: it starts and stops
the server by itself and records what the README's serving table is built from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.toy_checkpoint import toy_checkpoint

pytest.importorskip("httpx")
pytest.importorskip("uvicorn")
pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_serve.py"


def test_bench_serve_records_throughput_latency_errors_memory_and_the_offline_figure(tmp_path, toy_files,
                                                                                     tmp_path_factory):
    ckpt = toy_checkpoint(toy_files, tmp_path_factory)
    out = tmp_path / "serve.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--checkpoint", str(ckpt), "--src-file", toy_files["test"][0],
                           "--clients", "3", "--requests", "2", "--per-request", "2", "--threads", "1",
                           "--single", "2", "--json", str(out)], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["answered"] == 6 and r["errors"] == {} and r["server_exit_code"] == 0
    assert r["sentences_per_s"] == pytest.approx(2 * r["requests_per_s"]) and r["server_peak_rss_mib"] > 0
    assert r["batching"]["sentences"] == 12 and r["batching"]["batches"] >= 1
    assert 0 < r["latency_ms"]["p50"] <= r["latency_ms"]["p95"] <= r["latency_ms"]["p99"]
    assert r["offline_translator"]["sentences"] == 12 and r["offline_translator"]["sentences_per_s"] > 0
    assert "| 3 | 6 |" in proc.stdout and "served / offline" in proc.stdout
