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


def test_bench_decode_latency_int8_speed_switches_and_reference_hyps(tmp_path, tmp_path_factory, toy_files):
    """--latency gives p50/p95 per sentence; :int8 and :off=SWITCH configs run; --save-hyps then
    --reference-hyps counts the lines that differ (0 against itself; an int8 run is compared with
    the fp32 file)."""
    from helpers.toy_checkpoint import toy_checkpoint

    ckpt = toy_checkpoint(toy_files, tmp_path_factory)
    common = [str(ckpt), "--src-file", toy_files["test"][0], "--limit", "12", "--threads", "1", "--beam", "3"]
    _script("bench_decode.py", *common, "--configs", "beam:cache", "--save-hyps", str(tmp_path / "ref"), cwd=tmp_path)
    assert len((tmp_path / "ref" / "beam_cache.gnmt.ids").read_text().splitlines()) == 12
    out = tmp_path / "lat.json"
    proc = _script("bench_decode.py", *common, "--latency", "--rounds", "2", "--reference-hyps", str(tmp_path / "ref"),
                   "--configs", "beam:cache,beam:cache:off=kv_buffers+skip_reorder,beam:cache:int8",
                   "--json", str(out), cwd=tmp_path)
    records = {r["config"]: r for r in json.loads(out.read_text())}
    assert list(records) == ["beam:cache", "beam:cache:off=kv_buffers+skip_reorder", "beam:cache:int8"]
    for r in records.values():
        assert r["latency"] and 0 < r["latency_p50_ms"] <= r["latency_p95_ms"]
        assert len(r["rounds_sentences_per_s"]) == 2 and r["reference"].endswith("beam_cache.gnmt.ids")
    assert records["beam:cache"]["differ_from_reference"] == 0
    assert records["beam:cache:off=kv_buffers+skip_reorder"]["speed_off"] == ["kv_buffers", "skip_reorder"]
    assert records["beam:cache:int8"]["precision"] == "int8"
    assert 0 <= records["beam:cache:int8"]["differ_from_reference"] <= 12
    assert "| beam:cache:int8 | rosettamt | int8 | none |" in proc.stdout


def test_bench_langid_counts_what_it_classifies(tmp_path, multi30k_slice):
    out = tmp_path / "langid.json"
    proc = _script("bench_langid.py", "--data-dir", str(multi30k_slice), "--lines", "300", "--out", str(out),
                   cwd=tmp_path)
    (row,) = json.loads(out.read_text())["results"]
    assert row["languages"] == ["en", "de"] and row["sentences"] == 2 * 2 * 500  # two test sets, 500 lines each
    assert row["right"] == row["sentences"] - len(row["wrong"]) and row["right"] >= 0.98 * row["sentences"]
    assert f"{row['right']}/{row['sentences']} right" in proc.stdout
