"""scripts/run_seeds.sh and scripts/seed_table.py as the README runs them (issue 19), on the toy pair:
the runs start side by side with their own seeds, a failed run fails the script, and the table's
means and curves are the runs' own numbers."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.train_toy import toy_overrides

pytestmark = pytest.mark.slow
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_DATASETS_OFFLINE": "1", "PYTHON": sys.executable}


def _run_seeds(out: Path, runs: str, overrides) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPTS / "run_seeds.sh"), str(out), "unused-data-dir", "0", *overrides],
                          env={**ENV, "RUNS": runs}, capture_output=True, text=True, timeout=600)


def test_seeds_run_side_by_side_and_the_table_is_their_mean(tmp_path, toy_files, toy_cache):
    overrides = toy_overrides(toy_files, toy_cache, "trainer.max_steps=20", "trainer.evaluate_at_end=true",
                              "trainer.average_last=2")
    out = tmp_path / "runs"
    proc = _run_seeds(out, "toy_s1=seed=1 toy_s2=seed=2 toy_rdrop_s1=seed=1,trainer.rdrop_alpha=1", overrides)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [line.split(":")[0] for line in proc.stdout.splitlines() if line.endswith(": done")] == \
        ["toy_s1", "toy_s2", "toy_rdrop_s1"]
    cfgs = {name: (out / name / "config.yaml").read_text() for name in ("toy_s1", "toy_s2", "toy_rdrop_s1")}
    assert "\nseed: 2\n" in cfgs["toy_s2"] and "\nseed: 1\n" in cfgs["toy_s1"]
    assert "rdrop_alpha: 1.0" in cfgs["toy_rdrop_s1"] and "rdrop_alpha: 0.0" in cfgs["toy_s1"]

    table = tmp_path / "seeds.json"
    shown = subprocess.run([sys.executable, str(SCRIPTS / "seed_table.py"), str(out), "--steps", "10", "20", "30",
                            "--minutes", "100", "--out", str(table)], env=ENV, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    groups = json.loads(table.read_text())
    assert sorted(groups) == ["toy", "toy_rdrop"] and sorted(groups["toy"]["runs"]) == ["1", "2"]
    results = [json.loads((out / f"toy_s{s}" / "results.json").read_text()) for s in (1, 2)]
    split = sorted(results[0]["splits"])[0]  # the table's first column
    bleus = [r["splits"][split]["bleu"] for r in results]
    got = groups["toy"]["test"][split]["bleu"]
    assert got["mean"] == pytest.approx(statistics.fmean(bleus))
    assert got["std"] == pytest.approx(statistics.stdev(bleus))
    assert (got["min"], got["max"]) == (min(bleus), max(bleus)) and got["n"] == 2
    for s in (1, 2):  # the curve read at step 20 is the run's own validation at step 20; every candidate kept
        curve = [json.loads(line) for line in (out / f"toy_s{s}" / "metrics.jsonl").read_text().splitlines()]
        val20 = [r["bleu"] for r in curve if r.get("kind") == "val" and r["step"] == 20]
        run = groups["toy"]["runs"][str(s)]
        assert run["val_bleu_at_step"]["20"] == val20[-1] and run["steps"] == 20
        assert run["val_bleu_at_step"]["30"] is None and run["val_bleu_at_minute"]["100.0"] is None  # never reached
        assert run["picked"] in {c["name"] for c in run["candidates"]} and len(run["candidates"]) == 2
    assert f"| toy | 2 | 20 | {got['mean']:.2f} ± {got['std']:.2f} |" in shown.stdout
    assert groups["toy"]["val_bleu_at_step"]["30"]["n"] == 0 and " | - |" in shown.stdout


def test_a_failed_run_fails_the_script_and_an_empty_directory_the_table(tmp_path, toy_files, toy_cache):
    overrides = toy_overrides(toy_files, toy_cache, "trainer.max_steps=2")
    proc = _run_seeds(tmp_path / "runs", "ok_s1=seed=1 bad_s1=seed=1,trainer.max_stepz=3", overrides)
    assert proc.returncode == 1
    assert "ok_s1: done" in proc.stdout and "bad_s1: FAILED" in proc.stdout and "max_stepz" in proc.stdout
    empty = subprocess.run([sys.executable, str(SCRIPTS / "seed_table.py"), str(tmp_path / "runs")],
                           env=ENV, capture_output=True, text=True)
    assert empty.returncode == 2 and "no run directory with results.json" in empty.stderr
