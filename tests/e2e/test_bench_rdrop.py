"""scripts/bench_rdrop.py as a user runs it, on a Multi30k slice with the tiny model: the three variants
are timed in turn on the same batches and the record holds what the README's R-Drop cost table shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_rdrop.py"


def test_bench_rdrop_times_off_stacked_and_two_call(tmp_path, multi30k_slice):
    out = tmp_path / "rdrop.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--model", "tiny", "--vocab-size", "500",
                           "--max-tokens", "1024", "--steps", "2", "--rounds", "1", "--threads", "1",
                           "--data-dir", str(multi30k_slice), "--cache-dir", str(tmp_path / "cache"),
                           "--json", str(out)], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "HF_DATASETS_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert list(r["variants"]) == ["off", "stacked", "two-call"] and r["steps_per_variant"] == 2
    assert r["variants"]["off"]["ratio"] == 1.0 and r["alpha"] == 5.0
    assert all(len(v["all_s"]) == 2 and v["median_s_per_step"] > 0 for v in r["variants"].values())
    assert "| stacked |" in proc.stdout and "| two-call |" in proc.stdout
