"""rosettamt-train and rosettamt-average as a user runs them: subprocesses on the toy pair."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rosettamt.checkpoint import load_checkpoint, read_index
from helpers.train_toy import compose_train, toy_overrides

pytestmark = pytest.mark.slow
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def cache(toy_files, tmp_path_factory):
    """Tokenizer and id caches built once, so that concurrent runs below only read them."""
    from rosettamt.data.pipeline import prepare_data

    path = tmp_path_factory.mktemp("cache")
    cfg = compose_train(toy_overrides(toy_files, path))
    prepare_data(cfg.data, cfg.tokenizer, cfg.seed)
    return path


def _cmd(prog: str, *args: str) -> list:
    return [sys.executable, "-m", f"rosettamt.{prog}", *args]


def _run(cmd: list, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)


def test_train_cli_writes_the_run_directory_and_prints_test_scores(toy_files, cache, tmp_path):
    run = tmp_path / "outputs" / "myrun"
    proc = _run(_cmd("train", *toy_overrides(toy_files, cache, "trainer.max_steps=40", "trainer.val_every=20",
                                             "trainer.save_every=20", "trainer.evaluate_at_end=true",
                                             "trainer.average_last=2",
                                             "hydra.run.dir=outputs/myrun")), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("train.log", "metrics.jsonl", "config.yaml", ".hydra/config.yaml", "curves.png",
                 "results.json", "checkpoints/last.pt", "checkpoints/index.json"):
        assert (run / name).is_file(), name
    results = json.loads((run / "results.json").read_text())
    assert set(results["splits"]) == {"test"} and 0 <= results["splits"]["test"]["bleu"] <= 100
    assert Path(results["checkpoint"]).parent == run / "checkpoints"
    header = next(line for line in proc.stdout.splitlines() if line.startswith("| split"))
    assert [c.strip() for c in header.split("|")[1:-1]] == ["split", "BLEU", "chrF", "signature"]
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| test"))
    assert f"{results['splits']['test']['bleu']:.2f}" in row and "tok:13a" in row
    log = (run / "train.log").read_text()
    assert "step 40/40" in log and "validation step 40" in log

    # rosettamt-average: the two best checkpoints of that run
    avg = _run(_cmd("cli.average", "run_dir=outputs/myrun", "best=2", "output=avg.pt"), cwd=tmp_path)
    assert avg.returncode == 0, avg.stderr[-2000:]
    best = [run / "checkpoints" / e["file"] for e in read_index(run / "checkpoints")["best"]]
    a, b = (load_checkpoint(p)["model"] for p in best)
    averaged = load_checkpoint(tmp_path / "avg.pt")
    assert averaged["averaged_from"] == [p.name for p in best]
    for k, v in averaged["model"].items():
        torch.testing.assert_close(v, (a[k] + b[k]) / 2)
    bad = _run(_cmd("cli.average", "run_dir=outputs/myrun", "last=3"), cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("rosettamt: error: ")
    assert "trainer.average_last" in bad.stderr

    # scripts/tune_decode.py: averaging window and length penalty chosen on the val split. The
    # "average" of the last 1 checkpoint is that checkpoint: its val BLEU must be what
    # rosettamt-evaluate reports for it with the same search.
    tune = _run([sys.executable, str(SCRIPTS / "tune_decode.py"), "outputs/myrun", "--last", "1", "2", "3",
                 "--length-penalty", "0.6", "1.0", "--beam", "2", "--threads", "1", "--json", "tune.json"],
                cwd=tmp_path)
    assert tune.returncode == 0, tune.stderr[-2000:]
    report = json.loads((tmp_path / "tune.json").read_text())
    assert set(report["windows"]) == {"1", "2"} and "last=3: skipped" in tune.stderr  # only 2 kept
    assert report["windows"]["2"]["checkpoints"] == ["step0000020.pt", "step0000040.pt"]
    assert set(report["length_penalties"]) == {"0.6", "1.0"}
    chosen = report["chosen"]
    assert report["windows"][str(chosen["last"])]["bleu"] == max(w["bleu"] for w in report["windows"].values())
    assert f"rosettamt-average run_dir=outputs/myrun last={chosen['last']}" in tune.stdout
    ev = _run(_cmd("cli.evaluate", "checkpoint=outputs/myrun/checkpoints/step0000040.pt", "split=[val]",
                   "decode=beam", "decode.beam_size=2", "output_dir=ev"), cwd=tmp_path)
    assert ev.returncode == 0, ev.stderr[-2000:]
    (scores,) = (json.loads(p.read_text()) for p in (tmp_path / "ev").glob("*.scores.json"))
    assert report["windows"]["1"]["bleu"] == pytest.approx(scores["bleu"])


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 600) -> None:
    end = time.time() + timeout
    while not path.is_file():
        assert proc.poll() is None, "the run ended before writing a checkpoint"
        assert time.time() < end, f"{path} never appeared"
        time.sleep(0.02)


def test_sigkill_then_resume_ends_bit_identical_to_the_uninterrupted_run(toy_files, cache, tmp_path):
    """The same seeded run twice: once straight through, once killed with SIGKILL mid-training and resumed."""
    steps = 150
    args = toy_overrides(toy_files, cache, f"trainer.max_steps={steps}", "trainer.save_every=7",
                         "trainer.val_every=20", "trainer.log_every=10", "model.dropout=0.1")
    full = subprocess.Popen(_cmd("train", *args, "hydra.run.dir=full"), cwd=tmp_path, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    victim = subprocess.Popen(_cmd("train", *args, "hydra.run.dir=victim"), cwd=tmp_path, env=ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(tmp_path / "victim" / "checkpoints" / "last.pt", victim)
    time.sleep(random.Random(0).uniform(0.1, 0.4))  # somewhere after the first checkpoint, maybe mid-write
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    killed_at = load_checkpoint(tmp_path / "victim" / "checkpoints" / "last.pt")["step"]
    assert 0 < killed_at < steps, "the run finished before it was killed; nothing was tested"

    resumed = _run(_cmd("train", *args, "hydra.run.dir=victim", "trainer.resume=true"), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in (tmp_path / "victim" / "train.log").read_text()
    assert full.wait(timeout=900) == 0
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "victim" / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == steps
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])  # bit-identical
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)
    assert not list((tmp_path / "victim" / "checkpoints").glob(".*.tmp"))
