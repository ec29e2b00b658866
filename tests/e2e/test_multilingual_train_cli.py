"""rosettamt-train and rosettamt-evaluate on a multilingual toy corpus (issue 20): one model, several
directions, per-direction validation and test tables, and translations in the language asked for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.toy_multiway import looks_like, multiway_overrides, write_multiway_corpus

pytestmark = pytest.mark.slow
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def _run(prog: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"rosettamt.{prog}", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny en->de, en->fr, de->en model trained through the CLI, tested at the end."""
    tmp = tmp_path_factory.mktemp("multi")
    root = write_multiway_corpus(tmp / "corpus", {"train": 2000, "val": 40, "test": 40})
    proc = _run("train", *multiway_overrides(root, tmp / "cache", "data.pairs=[en-de,en-fr,de-en]",
                                             "trainer.max_steps=300", "trainer.val_every=150",
                                             "trainer.save_every=150", "trainer.evaluate_at_end=true",
                                             "hydra.run.dir=run"), cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp, root, proc


def test_the_run_reports_every_direction(run):
    tmp, _, proc = run
    results = json.loads((tmp / "run" / "results.json").read_text())
    assert set(results["directions"]) == {"en-de", "en-fr", "de-en"}
    assert all(set(per) == {"test"} for per in results["directions"].values())
    mean = sum(per["test"]["bleu"] for per in results["directions"].values()) / 3
    assert results["mean"]["test"]["bleu"] == pytest.approx(mean)
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert [c.strip() for c in rows[0].split("|")[1:-1]] == ["direction", "split", "BLEU", "chrF", "signature"]
    assert {r.split("|")[1].strip() for r in rows[1:]} >= {"en-de", "en-fr", "de-en", "mean of 3"}
    vals = [json.loads(line) for line in (tmp / "run" / "metrics.jsonl").read_text().splitlines()
            if '"kind": "val"' in line]
    assert [set(v["directions"]) for v in vals] == [{"en-de", "en-fr", "de-en"}] * 2


def test_the_model_translates_into_the_language_its_tag_asks_for(run):
    tmp, _, _ = run
    hyps = {pair: (tmp / "run" / "test").glob(f"*.{pair}.test.*.hyp.*") for pair in ("en-de", "en-fr")}
    for pair, other in (("en-de", "fr"), ("en-fr", "de")):
        lines = next(iter(hyps[pair])).read_text(encoding="utf-8").splitlines()
        lang = pair[-2:]
        assert len(lines) == 40
        assert sum(looks_like(h, lang) for h in lines) / 40 > 0.8, lines[:5]  # the same English sources ...
        assert sum(looks_like(h, other) for h in lines) / 40 < 0.05  # ... in the language asked for only


def test_rosettamt_evaluate_picks_a_direction_or_scores_them_all(run):
    tmp, root, _ = run
    files = [f"data.files.test=['{root}/test.{{src}}','{root}/test.{{tgt}}']"]
    one = _run("evaluate", "run_dir=run", "split=[test]", "decode=greedy", "tgt_lang=fr", "output_dir=ev1",
               *files, cwd=tmp)
    assert one.returncode == 0, one.stderr[-2000:]
    assert "\nen-fr test: 40 sentences" in "\n" + one.stdout
    assert [p.name.split(".")[-5] for p in (tmp / "ev1").glob("*.hyp.*")] == ["en-fr"]
    every = _run("evaluate", "run_dir=run", "split=[test]", "decode=greedy", "output_dir=ev2", *files, cwd=tmp)
    assert every.returncode == 0, every.stderr[-2000:]
    assert sorted(p.name.split(".")[-5] for p in (tmp / "ev2").glob("*.hyp.*")) == ["de-en", "en-de", "en-fr"]
    pair = _run("evaluate", "run_dir=run", f"src_file={root}/test.de", f"ref_file={root}/test.en",
                "src_lang=de", "tgt_lang=en", "decode=greedy", "output_dir=ev3", cwd=tmp)
    assert pair.returncode == 0, pair.stderr[-2000:]
    assert "\nde-en test.de: 40 sentences" in "\n" + pair.stdout
    bad = _run("evaluate", "run_dir=run", "split=[test]", "tgt_lang=cs", *files, cwd=tmp)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("rosettamt: error: ") and "cs" in bad.stderr


def test_the_checkpoints_carry_profiles_of_every_language(run):
    """Training stores a language profile per language (rosettamt.langid) in every checkpoint;
    the model's own test sentences are told apart by them."""
    from rosettamt.translate import Translator

    tmp, root, _ = run
    mt = Translator.from_checkpoint(tmp / "run", device="cpu")
    assert sorted(mt.langid.languages) == ["de", "en", "fr"]
    for lang in ("en", "de", "fr"):
        lines = (root / f"test.{lang}").read_text(encoding="utf-8").splitlines()
        assert sum(mt.langid.detect(line)[0][0] == lang for line in lines) >= 38, lang


def test_add_langid_gives_an_old_checkpoint_the_profiles_training_stores(run):
    """scripts/add_langid.py on a checkpoint without profiles (as before they were stored): the
    profiles it adds are the ones the training run stored; it never replaces a file."""
    import torch

    tmp, root, _ = run
    trained = torch.load(tmp / "run" / "checkpoints" / "last.pt", weights_only=True)
    old = {k: v for k, v in trained.items() if k not in ("langid", "format")}
    from rosettamt.checkpoint import save_checkpoint

    save_checkpoint(old, tmp / "old.pt")
    script = Path(__file__).resolve().parents[2] / "scripts" / "add_langid.py"
    stored_places = subprocess.run([sys.executable, str(script), "old.pt", "--out", "new.pt"], cwd=tmp, env=ENV,
                                   capture_output=True, text=True, timeout=300)
    assert stored_places.returncode == 2 and not (tmp / "new.pt").exists()  # the files it names are not read
    assert len(stored_places.stderr.strip().splitlines()) == 1, stored_places.stderr
    train = f"data.files.train=['{root}/train.{{src}}','{root}/train.{{tgt}}']"
    proc = subprocess.run([sys.executable, str(script), "old.pt", "--out", "new.pt", train], cwd=tmp, env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert torch.load(tmp / "new.pt", weights_only=True)["langid"] == trained["langid"]
    again = subprocess.run([sys.executable, str(script), "old.pt", "--out", "new.pt", train], cwd=tmp, env=ENV,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and again.stderr.strip().splitlines() == [
        "add_langid: error: --out new.pt exists; choose a new name (the checkpoint is never replaced)"]
