"""format=argos: the .argosmodel package's layout, its refusal of separate vocabularies, and (where
argostranslate is installed) that Argos installs it into a temporary data folder and translates
offline with the spaCy sentencizer the package carries."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("ctranslate2")

from rosettamt.config import ExportConfig  # noqa: E402
from rosettamt.errors import UserError  # noqa: E402
from rosettamt.export import export  # noqa: E402

HAS_SPACY = importlib.util.find_spec("spacy") is not None
HAS_ARGOS = importlib.util.find_spec("argostranslate") is not None

ARGOS_SCRIPT = """
import json, sys
from pathlib import Path
import argostranslate.package, argostranslate.translate
argostranslate.package.install_from_path(Path(sys.argv[1]))
print(json.dumps([argostranslate.translate.translate(line, "src", "tgt") for line in sys.argv[2:]]))
"""


@pytest.fixture(scope="module")
def package(ckpt, tmp_path_factory) -> Path:
    if not HAS_SPACY:
        pytest.skip("spacy (rosettamt[argos]) is not installed")
    out = export(ExportConfig(checkpoint=str(ckpt), format="argos", output=str(tmp_path_factory.mktemp("a") / "argos")))
    return out / "translate-src_tgt.argosmodel"


def test_a_missing_spacy_names_the_argos_extra(ckpt, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "spacy", None)
    with pytest.raises(UserError, match=r"pip install 'rosettamt\[argos\]'"):
        export(ExportConfig(checkpoint=str(ckpt), format="argos", output=str(tmp_path / "a")))
    assert not (tmp_path / "a").exists()


def test_the_package_holds_what_argos_reads(package):
    with zipfile.ZipFile(package) as archive:
        names = set(archive.namelist())
        meta = json.loads(archive.read("translate-src_tgt/metadata.json"))
    for name in ("metadata.json", "sentencepiece.model", "README.md", "model/model.bin", "model/config.json",
                 "spacy/meta.json", "spacy/config.cfg"):
        assert f"translate-src_tgt/{name}" in names, name
    assert {n.split("/")[0] for n in names} == {"translate-src_tgt"}  # one folder: Argos unzips into its packages
    assert (meta["from_code"], meta["to_code"], meta["type"]) == ("src", "tgt", "translate")


@pytest.mark.skipif(not HAS_SPACY, reason="spacy (rosettamt[argos]) is not installed")
def test_separate_vocabularies_are_refused(toy_files, tmp_path_factory, tmp_path):
    from helpers.export_toys import variant_checkpoint

    path = variant_checkpoint("post_separate_untied", toy_files, tmp_path_factory)
    with pytest.raises(UserError, match="one SentencePiece model") as err:
        export(ExportConfig(checkpoint=str(path), format="argos", output=str(tmp_path / "a")))
    assert "\n" not in str(err.value)


@pytest.mark.skipif(not HAS_ARGOS, reason="argostranslate is not installed (pip install argostranslate)")
def test_argos_installs_the_package_and_translates_offline(package, tmp_path, toy_files):
    """In a fresh process with its own Argos folders: install_from_path, then translate two-sentence lines
    (split by the packaged spaCy pipeline). Argos searches with its own settings (beam 4, length
    penalty 0.2), so the reference is CTranslate2 run with those on the same model."""
    import ctranslate2
    import sentencepiece as spm

    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "ARGOS_CHUNK_TYPE": "SPACY"}
    # lines whose last word is not a single letter: spaCy reads "a." as an abbreviation, not a sentence end
    lines = [s for s in Path(toy_files["test"][0]).read_text(encoding="utf-8").splitlines() if len(s.split()[-1]) > 3]
    joined = [f"{lines[0]} {lines[1]}", lines[2]]
    run = subprocess.run([sys.executable, "-c", ARGOS_SCRIPT, str(package), *joined], env=env, capture_output=True,
                         text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-2000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    installed = next((tmp_path / "data" / "argos-translate" / "packages").iterdir())
    sp = spm.SentencePieceProcessor(model_file=str(installed / "sentencepiece.model"))
    translator = ctranslate2.Translator(str(installed / "model"), intra_threads=1)

    def reference(sentence: str) -> str:
        result = translator.translate_batch([sp.encode(sentence, out_type=str)], beam_size=4, length_penalty=0.2,
                                            replace_unknowns=True)
        return sp.decode_pieces(result[0].hypotheses[0]).strip()

    import spacy

    nlp = spacy.load(installed / "spacy")
    nlp.add_pipe("sentencizer")  # what Argos does with the packaged pipeline
    assert len(list(nlp(joined[0]).sents)) == 2
    want = [" ".join(reference(sent.text) for sent in nlp(line).sents) for line in joined]
    assert [" ".join(g.split()) for g in got] == want
    assert all(len(g.split()) >= 3 for g in got)
