"""rosettamt-train and rosettamt-average as a user runs them: subprocesses on the toy pair."""

from __future__ import annotations

import json
import os
import random
import shlex
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
    last_ckpt = load_checkpoint(run / "checkpoints" / "last.pt")  # training stores the language profiles ...
    assert set(last_ckpt["langid"]["languages"]) == {"src", "tgt"}
    assert averaged["langid"] == last_ckpt["langid"]  # ... and an average keeps them
    for k, v in averaged["model"].items():
        torch.testing.assert_close(v, (a[k] + b[k]) / 2)
    bad = _run(_cmd("cli.average", "run_dir=outputs/myrun", "last=3"), cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("rosettamt: error: ")
    assert "trainer.average_last" in bad.stderr
    last = (run / "checkpoints" / "last.pt").read_bytes()
    onto_last = _run(_cmd("cli.average", "run_dir=outputs/myrun", "best=2",
                          "output=outputs/myrun/checkpoints/last.pt"), cwd=tmp_path)
    assert onto_last.returncode == 2 and "index.json" in onto_last.stderr.strip().splitlines()[-1]
    assert (run / "checkpoints" / "last.pt").read_bytes() == last  # the run can still resume
    again = _run(_cmd("cli.average", "run_dir=outputs/myrun", "last=2", "output=avg.pt"), cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]  # an earlier average is replaced
    nope = _run(_cmd("cli.average", "run_dir=outputs/nope", "last=2"), cwd=tmp_path)
    assert nope.returncode == 2 and "run_dir=outputs/nope: no such directory" in nope.stderr

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
    val_src, val_tgt = toy_files["val"]  # the corpus is named here: evaluate does not read a checkpoint's paths
    ev = _run(_cmd("cli.evaluate", "checkpoint=outputs/myrun/checkpoints/step0000040.pt", "split=[val]",
                   f"data.files.val=[{val_src},{val_tgt}]", "decode=beam", "decode.beam_size=2", "output_dir=ev"),
              cwd=tmp_path)
    assert ev.returncode == 0, ev.stderr[-2000:]
    (scores,) = (json.loads(p.read_text()) for p in (tmp_path / "ev").glob("*.scores.json"))
    assert report["windows"]["1"]["bleu"] == pytest.approx(scores["bleu"])


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 600) -> None:
    end = time.time() + timeout
    while not path.is_file():
        assert proc.poll() is None, "the run ended before writing a checkpoint"
        assert time.time() < end, f"{path} never appeared"
        time.sleep(0.02)


STEPS = 150
SIGNALS = (signal.SIGKILL, signal.SIGINT, signal.SIGTERM)


def test_kill_or_signal_then_resume_ends_bit_identical_to_the_uninterrupted_run(toy_files, cache, tmp_path):
    """The same seeded run (dropout, periodic saves, validations) straight through, and stopped at a random
    step by SIGKILL, Ctrl-C (SIGINT) and SIGTERM, then resumed; the runs go side by side.

    SIGKILL loses the steps since the last save; SIGINT / SIGTERM finish the step, save it to last.pt,
    log the command that resumes, exit 130 / 143. Every resumed run ends bit-identical to the straight one.
    """
    args = toy_overrides(toy_files, cache, f"trainer.max_steps={STEPS}", "trainer.save_every=7",
                         "trainer.val_every=20", "trainer.log_every=10", "model.dropout=0.1")
    full = subprocess.Popen(_cmd("train", *args, "hydra.run.dir=full"), cwd=tmp_path, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    victims = {sig: subprocess.Popen(_cmd("train", *args, f"hydra.run.dir={sig.name}"), cwd=tmp_path, env=ENV,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
               for sig in SIGNALS}
    delays = {sig: random.uniform(0.0, 0.5) for sig in SIGNALS}  # after the first checkpoint: a random step
    for sig, victim in victims.items():
        _wait_for(tmp_path / sig.name / "checkpoints" / "last.pt", victim)  # training is under way
        time.sleep(delays[sig])
        victim.send_signal(sig)
    resumed = {}
    for sig, victim in victims.items():
        _, err = victim.communicate(timeout=300)
        run = tmp_path / sig.name
        stopped = load_checkpoint(run / "checkpoints" / "last.pt")["step"]
        assert 0 < stopped < STEPS, f"{sig.name}: the run ended before the signal; nothing was tested"
        if sig != signal.SIGKILL:  # a SIGKILL during a save may leave a temp file: the resumed run removes it
            assert not list((run / "checkpoints").glob(".*.tmp"))
        if sig == signal.SIGKILL:
            assert victim.returncode == -signal.SIGKILL
            # the short form: the run's own options (its config.yaml) but the data and cache locations
            files = ",".join(f"{split}:[{src},{tgt}]" for split, (src, tgt) in toy_files.items())
            where = ["++data.files={" + files + "}", f"data.cache_dir={cache}"]  # as the error says
            command = ["rosettamt-train", *where, f"hydra.run.dir={sig.name}", "trainer.resume=true"]
        else:
            assert victim.returncode == 128 + sig, (delays[sig], err[-3000:])
            verb = "interrupted" if sig == signal.SIGINT else "terminated"
            assert "Traceback" not in err
            assert err.strip().splitlines()[-1].startswith(f"rosettamt: {verb} ({sig.name}) after step {stopped};")
            log = (run / "train.log").read_text()
            assert f"{sig.name}: stopped after step {stopped} " in log  # the state of that very step is saved
            assert not (run / "results.json").exists()  # no test evaluation after a signal
            command = shlex.split(log.split("resume with: ", 1)[1].splitlines()[0])
            assert command[-2:] == [f"hydra.run.dir={sig.name}", "trainer.resume=true"]
        assert command[0] == "rosettamt-train"
        resumed[sig] = (stopped, subprocess.Popen(_cmd("train", *command[1:]), cwd=tmp_path, env=ENV,
                                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    assert full.wait(timeout=900) == 0
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")
    for sig, (stopped, proc) in resumed.items():
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-3000:]
        run = tmp_path / sig.name
        assert f"resumed from {run / 'checkpoints' / 'last.pt'} at step {stopped}" in (run / "train.log").read_text()
        b = load_checkpoint(run / "checkpoints" / "last.pt")
        assert a["step"] == b["step"] == STEPS
        assert a["model"].keys() == b["model"].keys() and a["langid"] == b["langid"]
        assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]), sig.name  # bit-identical
        sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
        assert all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa), sig.name
        assert not list((run / "checkpoints").glob(".*.tmp"))
