"""Language detection in rosettamt-serve (in-process): /detect ranks the model's languages by the
profiles its checkpoint carries, source=auto reports each text's likeliest source among those
translating into the target (on /translate and /v1/translate), and a model saved without profiles
answers as before (its source language, "assumed" at 100)."""

from __future__ import annotations

import random

import pytest

from helpers.toy import SRC_WORDS
from helpers.toy_multilingual import multilingual_checkpoint
from helpers.toy_multiway import sentence

pytest.importorskip("fastapi")
pytest.importorskip("httpx")


def text(lang: str, seed: int) -> str:
    rng = random.Random(seed)
    return sentence([rng.choice(SRC_WORDS) for _ in range(rng.randint(4, 7))], lang)


@pytest.fixture(scope="module")
def detecting_checkpoint(tmp_path_factory):
    """The toy multilingual checkpoint (en-de, en-fr) said to know fr-de too, so that two sources
    (en, fr) translate into de, with profiles of its three toy languages as training stores them."""
    from rosettamt.checkpoint import load_checkpoint, save_checkpoint
    from rosettamt.langid import LangId

    ckpt = load_checkpoint(multilingual_checkpoint(tmp_path_factory))
    ckpt["config"]["data"]["pairs"] = ["en-de", "en-fr", "fr-de"]
    ckpt["langid"] = LangId.build({lang: [text(lang, i) for i in range(400)] for lang in ("en", "de", "fr")}).state_dict()
    path = tmp_path_factory.mktemp("detect") / "detect.pt"
    save_checkpoint(ckpt, path)
    return path


def serve(path):
    from fastapi.testclient import TestClient

    from rosettamt.config import DecodeConfig, ServeConfig
    from rosettamt.serve.app import create_app
    from rosettamt.serve.model import ServedModel
    from rosettamt.serve.service import Service
    from rosettamt.translate import Translator

    translator = Translator.from_checkpoint(path, device="cpu")
    return TestClient(create_app(Service(lambda: ServedModel(translator), ServeConfig(), DecodeConfig())))


def ready(c):
    import time

    for _ in range(1200):
        if c.get("/health").status_code == 200:
            return c.get("/health").json()
        time.sleep(0.05)
    raise AssertionError(c.get("/health").json())


@pytest.fixture(scope="module")
def client(detecting_checkpoint):
    with serve(detecting_checkpoint) as c:
        assert ready(c)["model"]["detection"] is True
        yield c


def test_detect_ranks_the_model_languages(client):
    for lang in ("en", "de", "fr"):
        for seed in range(1000, 1010):  # sentences the profiles were not built from
            ranking = client.post("/detect", data={"q": text(lang, seed)}).json()
            assert [d["language"] for d in ranking][0] == lang and ranking[0]["confidence"] > 90, ranking
            assert sorted(d["language"] for d in ranking) == ["de", "en", "fr"]
            assert ranking == sorted(ranking, key=lambda d: -d["confidence"])


def test_source_auto_reports_each_texts_source(client):
    en, fr, de = text("en", 2000), text("fr", 2001), text("de", 2002)
    r = client.post("/translate", json={"q": [en, fr, de], "source": "auto", "target": "de"})
    assert r.status_code == 200, r.text
    found = r.json()["detectedLanguage"]
    assert [d["language"] for d in found[:2]] == ["en", "fr"] and min(d["confidence"] for d in found[:2]) > 90
    # already German: reported as the likelier of the two sources, with the low confidence it has
    assert found[2]["language"] in ("en", "fr") and found[2]["confidence"] < 10, found
    single = client.post("/translate", data={"q": fr, "source": "auto", "target": "de"}).json()
    assert single["detectedLanguage"] == found[1]
    # into fr only en translates: a French text gets en, at a confidence that shows it is not English
    r = client.post("/translate", json={"q": fr, "source": "auto", "target": "fr"}).json()
    assert r["detectedLanguage"]["language"] == "en" and r["detectedLanguage"]["confidence"] < 10
    assert "detectedLanguage" not in client.post("/translate", json={"q": fr, "source": "fr", "target": "de"}).json()
    v1 = client.post("/v1/translate", json={"q": [en, fr], "source": "auto", "target": "de"}).json()
    assert [t["detected_language"] for t in v1["translations"]] == found[:2]
    assert v1["settings"]["source"] == "auto"  # each text's own source is in its detected_language
    plain = client.post("/v1/translate", json={"q": en, "target": "de"}).json()
    assert "detected_language" not in plain["translations"][0]


def test_a_model_without_profiles_assumes_its_source(tmp_path_factory):
    with serve(multilingual_checkpoint(tmp_path_factory)) as c:
        assert ready(c)["model"]["detection"] is False
        assert c.post("/detect", data={"q": text("fr", 1)}).json() == [{"confidence": 100.0, "language": "en"}]
        r = c.post("/translate", json={"q": [text("fr", 1)], "source": "auto", "target": "fr"}).json()
        assert r["detectedLanguage"] == [{"confidence": 100.0, "language": "en"}]


def test_profiles_are_the_models_languages_or_none(detecting_checkpoint, tmp_path, caplog):
    """A profile of a language the model does not serve is not listed; a model whose profiles lack
    one of its languages detects nothing (a warning), rather than passing an assumption off as found."""
    import logging

    from rosettamt.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(detecting_checkpoint)
    ckpt["langid"]["languages"]["cs"] = ckpt["langid"]["languages"]["de"]
    save_checkpoint(ckpt, tmp_path / "extra.pt")
    with serve(tmp_path / "extra.pt") as c:
        assert ready(c)["model"]["detection"] is True
        assert sorted(d["language"] for d in c.post("/detect", data={"q": text("en", 5)}).json()) == ["de", "en", "fr"]
    del ckpt["langid"]["languages"]["cs"], ckpt["langid"]["languages"]["fr"]
    save_checkpoint(ckpt, tmp_path / "partial.pt")
    with caplog.at_level(logging.WARNING), serve(tmp_path / "partial.pt") as c:
        assert ready(c)["model"]["detection"] is False
        assert c.post("/detect", data={"q": text("fr", 5)}).json() == [{"confidence": 100.0, "language": "en"}]
    assert "language profiles lack fr; languages will not be detected" in caplog.text
