"""scripts/bench_train.py and scripts/bench_decode.py as a user runs them, on tiny inputs:
they finish, their records hold what the README tables are built from, and the peer anchors
are printed beside this run's numbers (flagged when the setting is not the anchors')."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_DATASETS_OFFLINE": "1"}


def _script(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(SCRIPTS / name), *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_bench_decode_reports_cache_against_recompute_and_the_anchors(tmp_path, tmp_path_factory, toy_files):
    from helpers.toy_checkpoint import toy_checkpoint

    ckpt = toy_checkpoint(toy_files, tmp_path_factory)
    out = tmp_path / "decode.json"
    proc = _script("bench_decode.py", str(ckpt), "--src-file", toy_files["test"][0], "--limit", "24",
                   "--threads", "1", "--beam", "3", "--precision", "bf16",
                   "--configs", "greedy:cache,greedy:recompute,beam:cache", "--json", str(out), cwd=tmp_path)
    records = json.loads(out.read_text())
    assert [r["config"] for r in records] == ["greedy:cache", "greedy:recompute", "beam:cache"]
    for r in records:
        assert r["sentences"] == 24 and r["precision"] == "bfloat16" and r["sentences_per_s"] > 0
        assert sum(b["sentences"] for b in r["buckets"]) == 24
    assert "greedy: cached and recomputed outputs identical for" in proc.stderr
    assert "| greedy | yes | bfloat16 |" in proc.stdout
    assert "| OpenNMT-py 3.5 | 150-200 | 72-80 |" in proc.stdout
    assert "| this run (cpu, 1 threads, bfloat16, 24 sentences: not the anchors' setting) |" in proc.stdout


def test_bench_train_measures_tokens_per_second_padding_and_memory(tmp_path, multi30k_slice):
    out = tmp_path / "train.json"
    proc = _script("bench_train.py", "--model", "tiny", "--vocab-size", "500", "--max-tokens", "1024",
                   "--steps", "3", "--warmup", "1", "--threads", "1", "--data-dir", str(multi30k_slice),
                   "--cache-dir", str(tmp_path / "cache"), "--json", str(out), cwd=tmp_path)
    r = json.loads(out.read_text())
    assert r["steps"] == 3 and r["warmup"] == 1 and r["model"] == "tiny"
    assert r["tgt_tok_per_s"] > 0 and r["src_tgt_tok_per_s"] > r["tgt_tok_per_s"]
    assert 0 <= r["padding"] < 1 and r["peak_rss_mib"] > 0 and r["s_per_step"] > 0
    assert "JoeyNMT 2.3" in proc.stdout and "not comparable with the anchors" in proc.stdout
