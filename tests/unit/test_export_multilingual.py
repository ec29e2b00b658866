"""Exports of a multilingual checkpoint: CTranslate2 keeps every direction (rosettamt's
backend=ctranslate2 puts the tag first, and translates token for token like the checkpoint);
format=hf is refused with the reason; format=argos exports the one direction= asked for, with the
tag added by the CTranslate2 model itself, so Argos (which only tokenizes) translates that way."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from helpers.toy_multilingual import looks_like, multilingual_checkpoint, toy_pairs

ctranslate2 = pytest.importorskip("ctranslate2")

from rosettamt.config import ExportConfig  # noqa: E402
from rosettamt.errors import UserError  # noqa: E402
from rosettamt.export import export  # noqa: E402
from rosettamt.translate import Translator  # noqa: E402

HAS_SPACY = importlib.util.find_spec("spacy") is not None
HAS_ARGOS = importlib.util.find_spec("argostranslate") is not None
SEARCH = dict(beam_size=3, length_norm="average")  # what CTranslate2 can run exactly


@pytest.fixture(scope="module")
def mckpt(tmp_path_factory) -> Path:
    return multilingual_checkpoint(tmp_path_factory)


@pytest.fixture(scope="module")
def mt(mckpt) -> Translator:
    return Translator.from_checkpoint(mckpt, device="cpu")


@pytest.fixture(scope="module")
def sources():
    return [s for s, _, _ in toy_pairs(12, seed=31)]


def test_ctranslate2_export_translates_every_direction_like_the_checkpoint(mckpt, mt, sources, tmp_path):
    out = export(ExportConfig(checkpoint=str(mckpt), output=str(tmp_path / "ct2")))
    meta = json.loads((out / "rosettamt.json").read_text(encoding="utf-8"))
    assert meta["directions"] == ["en-de", "en-fr"] and meta["target_tags"] == {"de": "<2de>", "fr": "<2fr>"}
    ct = Translator.from_export(out, device="cpu")
    assert ct.multilingual and ct.directions == mt.directions
    for lang in ("de", "fr"):
        want = mt.translate(sources, tgt_lang=lang, **SEARCH)
        assert ct.translate(sources, tgt_lang=lang, **SEARCH) == want
        assert sum(looks_like(w, lang) for w in want) / len(want) > 0.8
    with pytest.raises(UserError, match="does not translate into 'cs'"):
        ct.translate(sources[:1], tgt_lang="cs")


def test_hf_is_refused_and_direction_is_for_argos(mckpt, tmp_path):
    with pytest.raises(UserError, match="format=hf cannot carry a multilingual model") as err:
        export(ExportConfig(checkpoint=str(mckpt), format="hf", output=str(tmp_path / "hf")))
    assert "\n" not in str(err.value) and not (tmp_path / "hf").exists()
    with pytest.raises(UserError, match="direction=en-fr is for format=argos"):
        export(ExportConfig(checkpoint=str(mckpt), direction="en-fr", output=str(tmp_path / "c")))


@pytest.mark.skipif(not HAS_SPACY, reason="spacy (rosettamt[argos]) is not installed")
def test_argos_needs_one_known_direction(mckpt, ckpt, tmp_path):
    for direction, words in ((None, "choose one with direction=SRC-TGT"), ("en-cs", "not trained to translate it"),
                             ("english", "not a direction written src-tgt")):
        with pytest.raises(UserError, match=words):
            export(ExportConfig(checkpoint=str(mckpt), format="argos", direction=direction, output=str(tmp_path / "a")))
    with pytest.raises(UserError, match="not trained to translate it"):  # a bilingual model: only its own pair
        export(ExportConfig(checkpoint=str(ckpt), format="argos", direction="en-fr", output=str(tmp_path / "b")))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.fixture(scope="module")
def fr_package(mckpt, tmp_path_factory) -> Path:
    if not HAS_SPACY:
        pytest.skip("spacy (rosettamt[argos]) is not installed")
    out = export(ExportConfig(checkpoint=str(mckpt), format="argos", direction="en-fr",
                              output=str(tmp_path_factory.mktemp("a") / "argos")))
    return out / "translate-en_fr.argosmodel"


def test_an_argos_package_of_one_direction_adds_the_tag_itself(fr_package, mt, sources, tmp_path):
    """CTranslate2 on the package's model, fed plain pieces as Argos feeds them, translates en-fr exactly
    like the checkpoint with tgt_lang=fr; rosettamt's backend=ctranslate2 on the package does too."""
    import sentencepiece as spm

    with zipfile.ZipFile(fr_package) as archive:
        archive.extractall(tmp_path)
    root = tmp_path / "translate-en_fr"
    meta = json.loads((root / "metadata.json").read_text(encoding="utf-8"))
    assert (meta["from_code"], meta["to_code"]) == ("en", "fr")
    sp = spm.SentencePieceProcessor(model_file=str(root / "sentencepiece.model"))
    raw = ctranslate2.Translator(str(root / "model"), intra_threads=1)
    results = raw.translate_batch([sp.encode(s, out_type=str) for s in sources], beam_size=3, length_penalty=1.0)
    got = [" ".join(sp.decode_pieces(r.hypotheses[0]).split()) for r in results]
    assert got == mt.translate(sources, tgt_lang="fr", **SEARCH)
    via_rosettamt = Translator.from_export(root, device="cpu")
    assert not via_rosettamt.multilingual and via_rosettamt.directions == [("en", "fr")]
    assert via_rosettamt.translate(sources, **SEARCH) == got  # the tag is not added twice


@pytest.mark.skipif(not HAS_ARGOS, reason="argostranslate is not installed (pip install argostranslate)")
def test_argos_installs_the_one_direction_package_and_translates_into_it(fr_package, sources, tmp_path):
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "ARGOS_CHUNK_TYPE": "SPACY"}
    script = ("import json, sys\nfrom pathlib import Path\nimport argostranslate.package, argostranslate.translate\n"
              "argostranslate.package.install_from_path(Path(sys.argv[1]))\n"
              "print(json.dumps([argostranslate.translate.translate(s, 'en', 'fr') for s in sys.argv[2:]]))\n")
    run = subprocess.run([sys.executable, "-c", script, str(fr_package), *sources[:4]], env=env, capture_output=True,
                         text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-2000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert len(got) == 4 and all(looks_like(g, "fr") > 0.8 for g in got), got
