"""rosettamt-evaluate: scores equal the sacrebleu CLI's, files land where documented, bad input
gives one-line errors."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.toy_checkpoint import read_lines, toy_checkpoint

from rosettamt.config import DataConfig, DecodeConfig, MetricConfig
from rosettamt.errors import UserError
from rosettamt.evaluate import evaluate, evaluate_splits, paper_tokenize, read_lines as eval_read_lines, score

GREEDY = DecodeConfig(strategy="greedy")
BEAM = DecodeConfig(strategy="beam", beam_size=4)


@pytest.fixture(scope="module")
def ckpt(toy_files, tmp_path_factory) -> Path:
    return toy_checkpoint(toy_files, tmp_path_factory)


def sacrebleu_cli(ref: Path, hyp: Path, *args: str) -> dict:
    """{metric name: (score, signature)} from the sacrebleu command-line tool."""
    out = subprocess.run([sys.executable, "-m", "sacrebleu", str(ref), "-i", str(hyp), "-w", "6",
                          "--format", "json", *args], capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    return {d["name"]: (d["score"], d["signature"]) for d in (data if isinstance(data, list) else [data])}


def test_scores_equal_the_sacrebleu_cli(ckpt, toy_files, tmp_path):
    src_file, ref_file = toy_files["test"]
    (result,) = evaluate(ckpt, src_file=src_file, ref_file=ref_file, decode=BEAM, output_dir=tmp_path,
                         device="cpu", progress=False)
    hyp = Path(result.hyp_file)
    assert hyp.parent == tmp_path and len(read_lines(str(hyp))) == result.sentences == 100
    assert result.bleu > 10  # a trained model: the comparison below is not 0 == 0
    cli = sacrebleu_cli(Path(ref_file), hyp, "-m", "bleu", "chrf")
    assert result.bleu == pytest.approx(cli["BLEU"][0], abs=1e-4)
    assert result.bleu_signature == cli["BLEU"][1]
    assert result.chrf == pytest.approx(cli["chrF2"][0], abs=1e-4)
    assert result.chrf_signature == cli["chrF2"][1]
    lc = sacrebleu_cli(Path(ref_file), hyp, "-m", "bleu", "-lc")
    assert result.bleu_lc == pytest.approx(lc["BLEU"][0], abs=1e-4)
    assert result.bleu_lc_signature == lc["BLEU"][1]
    saved = json.loads(Path(str(hyp).replace(".hyp.tgt", ".scores.json")).read_text())
    assert saved["bleu"] == result.bleu and saved["decode"] == "beam4"
    assert result.sentences_per_s > 0 and result.tokens_per_s > 0


def test_score_equals_the_cli_on_awkward_text(tmp_path):
    refs = ["The Cat sat on the mat.", "Zwei Männer  spielen Fußball ", "\"Quoted\" text & more!", "", "A b c d e f"]
    hyps = ["the cat sat on the mat .", "Zwei männer spielen Fussball", "Quoted text and more", "x", "A b c d e g"]
    ref_file, hyp_file = tmp_path / "ref.txt", tmp_path / "hyp.txt"
    ref_file.write_text("\n".join(refs) + "\n", encoding="utf-8")
    hyp_file.write_text("\n".join(hyps) + "\n", encoding="utf-8")
    ours = score(eval_read_lines(hyp_file, "hyp"), eval_read_lines(ref_file, "ref"))
    cli = sacrebleu_cli(ref_file, hyp_file, "-m", "bleu", "chrf")
    assert ours["bleu"] == pytest.approx(cli["BLEU"][0], abs=1e-4)
    assert ours["chrf"] == pytest.approx(cli["chrF2"][0], abs=1e-4)
    assert ours["bleu_lc"] == pytest.approx(sacrebleu_cli(ref_file, hyp_file, "-m", "bleu", "-lc")["BLEU"][0], abs=1e-4)
    assert ours["bleu_lc"] > ours["bleu"]  # the case differences count only in cased BLEU


def test_paper_protocol_lowercases_and_moses_tokenizes_both_sides():
    assert paper_tokenize(['A "b" & C, d.'], "en") == ["a &quot; b &quot; &amp; c , d ."]
    refs = ["A man, in a red shirt, runs.", "Two dogs \u2014 playing \"fetch\" & more!"]
    hyps = ["a man , in a red shirt , runs .", "two dogs - playing \" fetch \" & more !"]
    plain = score(hyps, refs, "en")
    paper = score(hyps, refs, "en", paper_protocol=True)
    assert plain["paper_bleu"] is None
    assert paper["paper_bleu"] == pytest.approx(100.0)
    assert paper["bleu"] == plain["bleu"] < 100
    assert paper["paper_signature"].startswith("multi30k-paper") and "tok:none" in paper["paper_signature"]


def test_splits_of_named_files_written_next_to_the_checkpoint(ckpt, toy_files, tmp_path, monkeypatch):
    """The files come from the caller (data.files.SPLIT=...), the language pair from the checkpoint."""
    monkeypatch.chdir(tmp_path)
    local = tmp_path / "run" / "best.pt"
    local.parent.mkdir()
    shutil.copy(ckpt, local)
    files = [f"files.{s}=[{toy_files[s][0]},{toy_files[s][1]}]" for s in ("test", "val")]
    results = evaluate(local, splits=["test", "val"], data_overrides=files, decode=GREEDY, device="cpu",
                       progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # the corpus cache was a temporary folder
    assert [r.name for r in results] == ["test", "val"]
    for r, split in zip(results, ["test", "val"]):
        assert Path(r.hyp_file) == local.parent / f"best.{split}.greedy.hyp.tgt"
        assert read_lines(r.ref_file) == read_lines(toy_files[split][1])
        assert (local.parent / f"best.{split}.greedy.scores.json").is_file()
        assert r.sentences == 100 and r.bleu > 10
    data = DataConfig(source="files", src_lang="src", tgt_lang="tgt", files=toy_files, cache_dir=str(tmp_path / "c"))
    by_split = evaluate_splits(local, data, ["val"], GREEDY, MetricConfig(), "cpu", output_dir=tmp_path / "x")
    assert by_split["val"]["bleu"] == pytest.approx(results[1].bleu)
    assert (tmp_path / "x" / "best.val.greedy.hyp.tgt").is_file()


def test_multi30k_split_with_a_given_data_config(ckpt, multi30k_slice, tmp_path):
    data = DataConfig(source="multi30k", dir=str(multi30k_slice), src_lang="en", tgt_lang="de",
                      download=False, cache_dir=str(tmp_path / "cache"))
    (r,) = evaluate(ckpt, splits=["test_2016_flickr"], data=data, decode=DecodeConfig(max_len_a=0.5, max_len_b=2),
                    output_dir=tmp_path, device="cpu", progress=False)
    with gzip.open(multi30k_slice / "test_2016_flickr.de.gz", "rt", encoding="utf-8") as f:
        assert read_lines(r.ref_file) == [line.strip() for line in f]
    assert r.sentences == 500 and r.hyp_file.endswith("last.test_2016_flickr.greedy.hyp.de")


def test_bad_input_is_a_user_error(ckpt, toy_files, tmp_path):
    src_file, ref_file = toy_files["test"]
    short = tmp_path / "short.txt"
    short.write_text("one line\n", encoding="utf-8")
    cases = [
        (dict(src_file=src_file), "ref_file"),
        (dict(src_file=src_file, ref_file=str(short)), "short.txt has 1"),
        (dict(src_file=str(tmp_path / "nope.txt"), ref_file=ref_file), "src_file="),
        (dict(splits=["test_2099"]), "split=test_2099"),
    ]
    for kwargs, message in cases:
        with pytest.raises(UserError, match=message):
            evaluate(ckpt, output_dir=tmp_path, device="cpu", progress=False, **kwargs)
    with pytest.raises(UserError, match="checkpoint="):
        evaluate(tmp_path / "missing.pt", output_dir=tmp_path)
    with pytest.raises(UserError, match="run_dir"):
        evaluate()
    with pytest.raises(UserError, match="exactly one of checkpoint=PATH or run_dir=DIR"):
        evaluate(ckpt, run_dir=ckpt.parent.parent)
    with pytest.raises(UserError, match="run_dir=.*no such directory"):
        evaluate(run_dir=tmp_path / "nope")


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "rosettamt.cli.evaluate", *args, f"hydra.run.dir={cwd / 'hydra'}", "device=cpu"]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_cli_prints_scores_with_signatures(ckpt, toy_files, tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    shutil.copy(ckpt, run_dir / "checkpoints" / "last.pt")
    src_file, ref_file = toy_files["test"]
    proc = run_cli(f"run_dir={run_dir}", f"src_file={src_file}", f"ref_file={ref_file}",
                   "decode=beam", "decode.beam_size=3", "metric.paper_protocol=true", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "nrefs:1|case:mixed|eff:no|tok:13a" in proc.stdout and "chrF" in proc.stdout
    assert "BLEU paper" in proc.stdout and "sentences/s" in proc.stdout
    hyp = run_dir / "checkpoints" / "last.test.src.beam3.hyp.tgt"
    bleu = json.loads(hyp.with_name("last.test.src.beam3.scores.json").read_text())["bleu"]
    assert bleu == pytest.approx(sacrebleu_cli(Path(ref_file), hyp, "-m", "bleu")["BLEU"][0], abs=1e-4)

    proc = run_cli(f"checkpoint={tmp_path / 'missing.pt'}", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"rosettamt: error: checkpoint={tmp_path / 'missing.pt'}: no such file"]


def test_bf16_decoding_casts_the_model_tags_the_files_and_keeps_the_translations(ckpt, toy_files, tmp_path):
    """decode.precision=bf16 decodes with bf16 weights (its own file names) and mostly agrees with fp32."""
    from rosettamt.checkpoint import load_for_inference

    model, _, _ = load_for_inference(ckpt, "cpu", "bf16")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    src_file, ref_file = toy_files["test"]
    results = {}
    for precision in ("fp32", "bf16"):
        (results[precision],) = evaluate(ckpt, src_file=src_file, ref_file=ref_file,
                                         decode=DecodeConfig(strategy="beam", beam_size=4, precision=precision),
                                         output_dir=tmp_path, device="cpu", progress=False)
    fp32, bf16 = results["fp32"], results["bf16"]
    assert fp32.hyp_file.endswith(".beam4.hyp.tgt") and bf16.hyp_file.endswith(".beam4-bf16.hyp.tgt")
    same = sum(a == b for a, b in zip(read_lines(fp32.hyp_file), read_lines(bf16.hyp_file)))
    assert same >= 80, f"only {same}/100 bf16 translations equal the fp32 ones"
    assert bf16.bleu == pytest.approx(fp32.bleu, abs=3.0)
    assert load_for_inference(ckpt, "cpu", "auto")[0].output.weight.dtype == torch.float32  # auto: fp32 on CPU
