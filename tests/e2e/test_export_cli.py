"""rosettamt-export as a user runs it, then the export through rosettamt-translate and rosettamt-evaluate
with backend=ctranslate2: the same lines, files and BLEU as the checkpoint itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.toy_checkpoint import read_lines, toy_checkpoint

pytest.importorskip("ctranslate2")
pytestmark = pytest.mark.slow
TIMEOUT = 180


def cli(name: str, args: list[str], cwd: Path, stdin: bytes = b"") -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HOME": str(cwd)}
    return subprocess.run([sys.executable, "-m", f"rosettamt.cli.{name}", *args], input=stdin, capture_output=True,
                          cwd=cwd, env=env, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def ckpt(toy_files, tmp_path_factory) -> Path:
    return toy_checkpoint(toy_files, tmp_path_factory)


@pytest.fixture(scope="module")
def exported(ckpt, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "toy-ct2"
    run = cli("export", [f"checkpoint={ckpt}", "format=ctranslate2", f"output={out}"], out.parent)
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    return out


def test_export_writes_a_ctranslate2_model_and_refuses_to_overwrite_it(exported, ckpt):
    assert {"model.bin", "config.json", "sentencepiece.model", "rosettamt.json"} <= {p.name for p in exported.iterdir()}
    again = cli("export", [f"checkpoint={ckpt}", "format=ctranslate2", f"output={exported}"], exported.parent)
    lines = again.stderr.decode().strip().splitlines()
    assert again.returncode == 2 and lines == [f"rosettamt: error: output={exported} already exists; "
                                               "pass overwrite=true to replace it"]
    assert "format" in cli("export", ["--help"], exported.parent).stdout.decode()


def test_translate_and_evaluate_with_backend_ctranslate2(exported, ckpt, toy_files, tmp_path):
    from rosettamt.config import DataConfig, DecodeConfig
    from rosettamt.evaluate import evaluate
    from rosettamt.translate import Translator

    src = read_lines(toy_files["test"][0])[:30]
    decode = DecodeConfig(strategy="beam", beam_size=4, length_norm="average")
    want = Translator.from_checkpoint(ckpt, "cpu", decode).translate(src)
    run = cli("translate", ["backend=ctranslate2", f"model_dir={exported}", "ct2.threads=1", "decode=beam",
                            "decode.length_norm=average", "decode.beam_size=4"], tmp_path, ("\n".join(src) + "\n").encode())
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    assert run.stdout.decode().splitlines() == want
    # the checkpoint's language profiles travel with the export (langid.json) and detect the same
    source = Translator.from_checkpoint(ckpt, "cpu").langid
    export = Translator.from_export(exported, "cpu", decode, threads=1).langid
    assert (exported / "langid.json").is_file() and export is not None
    tgt = read_lines(toy_files["test"][1])[:5]
    assert [export.detect(t) for t in src[:5] + tgt] == [source.detect(t) for t in src[:5] + tgt]
    assert {export.detect(t)[0][0] for t in src[:5]} == {"src"} and {export.detect(t)[0][0] for t in tgt} == {"tgt"}

    test = [toy_files["test"][0], toy_files["test"][1]]
    run = cli("evaluate", ["backend=ctranslate2", f"model_dir={exported}", "split=[test]", f"data.files.test=[{test[0]},{test[1]}]",
                           f"output_dir={tmp_path}", "decode=greedy"], tmp_path)
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    data = DataConfig(source="files", src_lang="src", tgt_lang="tgt", files={"test": test})
    ours = evaluate(ckpt, splits=["test"], data=data, decode=DecodeConfig(), output_dir=tmp_path, device="cpu",
                    progress=False)[0]
    theirs = json.loads((tmp_path / "toy-ct2.test.greedy-ct2.scores.json").read_text())
    assert ours.bleu == theirs["bleu"] and ours.bleu > 10
    assert Path(ours.hyp_file).read_text() == (tmp_path / "toy-ct2.test.greedy-ct2.hyp.tgt").read_text()
    assert f"{ours.bleu:6.2f}" in run.stdout.decode() and "greedy-ct2" in run.stdout.decode()  # the usual report


def test_backend_ctranslate2_refuses_what_it_cannot_do_in_one_line(exported, ckpt, tmp_path):
    from rosettamt.config import TranslateConfig
    from rosettamt.errors import UserError
    from rosettamt.prompt.command import model_from_config

    run = cli("translate", ["backend=ctranslate2", f"model_dir={exported}", "decode=beam"], tmp_path, b"A dog.\n")
    lines = run.stderr.decode().strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1 and "GNMT" in lines[0], lines
    for cfg, words in ((TranslateConfig(backend="ctranslate2", checkpoint=str(ckpt)), "model_dir=DIR"),
                       (TranslateConfig(backend="ctranslate2", model_dir=str(exported), show_attention=True),
                        "show_attention"),
                       (TranslateConfig(model_dir=str(exported)), "backend=ctranslate2")):
        with pytest.raises(UserError, match=words):
            model_from_config(cfg)
