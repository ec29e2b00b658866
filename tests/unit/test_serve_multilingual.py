"""rosettamt-serve's app in-process (FastAPI's TestClient) on a multilingual model: /languages
lists every direction, source/target pick the direction on /translate and /v1/translate, an
unknown direction is a one-line 400; a bilingual model's answers stay as they were."""

from __future__ import annotations

import pytest

from helpers.toy_multilingual import looks_like, multilingual_checkpoint, toy_pairs

pytest.importorskip("fastapi")
pytest.importorskip("httpx")


def client_for(translator):
    from fastapi.testclient import TestClient

    from rosettamt.config import DecodeConfig, ServeConfig
    from rosettamt.serve.app import create_app
    from rosettamt.serve.model import ServedModel
    from rosettamt.serve.service import Service

    service = Service(lambda: ServedModel(translator), ServeConfig(), DecodeConfig())
    return TestClient(create_app(service))


def wait_ready(c) -> None:
    import time

    for _ in range(1200):  # the worker thread wraps the already loaded Translator: quick
        if c.get("/health").status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError(c.get("/health").json())


@pytest.fixture(scope="module")
def mt(tmp_path_factory):
    from rosettamt.translate import Translator

    return Translator.from_checkpoint(multilingual_checkpoint(tmp_path_factory), device="cpu")


@pytest.fixture(scope="module")
def client(mt):
    with client_for(mt) as c:  # the lifespan starts the worker
        wait_ready(c)
        yield c


@pytest.fixture(scope="module")
def sources():
    return [s for s, _, _ in toy_pairs(6, seed=21)]


def test_languages_and_health_list_every_direction(client):
    assert client.get("/languages").json() == [{"code": "en", "name": "English", "targets": ["de", "fr"]}]
    model = client.get("/health").json()["model"]
    assert model["directions"] == ["en-de", "en-fr"] and (model["source"], model["target"]) == ("en", "de")


def test_source_and_target_pick_the_direction(client, mt, sources):
    for target in ("de", "fr"):
        r = client.post("/translate", json={"q": sources, "source": "en", "target": target})
        assert r.status_code == 200, r.text
        texts = r.json()["translatedText"]
        assert texts == [c[0].text for c in mt.translate_nbest(sources, tgt_lang=target, beam_size=1)]
        assert all(looks_like(t, target) > 0.8 for t in texts)
    form = client.post("/translate", data={"q": sources[0], "source": "auto", "target": "fr"}).json()
    assert looks_like(form["translatedText"], "fr") > 0.8 and form["detectedLanguage"]["language"] == "en"
    default = client.post("/translate", json={"q": sources[0]}).json()["translatedText"]
    assert looks_like(default, "de") > 0.8  # the model's default direction
    v1 = client.post("/v1/translate", json={"q": sources[:2], "target": "fr", "nbest": 2}).json()
    assert v1["settings"]["target"] == "fr" and all(looks_like(t["text"], "fr") > 0.8 for t in v1["translations"])
    att = client.post("/v1/translate", json={"q": sources[0], "target": "fr", "attention": True}).json()
    (item,) = att["translations"]
    assert item["source_pieces"][0] == "<2fr>"  # the page's heatmap shows the tag, as the prompt's does
    assert len(item["nbest"][0]["attention"][0][0][0]) == len(item["source_pieces"])


@pytest.mark.parametrize("path, body, words", [
    ("/translate", {"q": "a dog", "source": "en", "target": "cs"}, "not trained to translate en-cs"),
    ("/translate", {"q": "a dog", "source": "de", "target": "fr"}, "not trained to translate de-fr"),
    ("/translate", {"q": "a dog", "target": 3}, "target must be a string"),
    ("/v1/translate", {"q": "a dog", "target": "cs"}, "does not translate into 'cs'"),
    ("/v1/translate", {"q": "a dog", "source": "fr", "target": "de"}, "not trained to translate fr-de"),
])
def test_unknown_directions_are_one_line_400s(client, path, body, words):
    r = client.post(path, json=body)
    assert r.status_code == 400 and words in r.json()["error"] and "\n" not in r.json()["error"]


def test_a_bilingual_model_answers_as_before(translator):
    with client_for(translator) as c:
        wait_ready(c)
        assert c.get("/languages").json() == [{"code": "src", "name": "src", "targets": ["tgt"]}]
        assert "directions" not in c.get("/health").json()["model"]
        ok = c.post("/v1/translate", json={"q": "A dog runs.", "source": "src", "target": "tgt"}).json()
        assert set(ok["settings"]) == {"beam_size", "nbest", "length_penalty"}
        assert ok["translations"][0]["text"] == translator.translate("A dog runs.", beam_size=ok["settings"]["beam_size"],
                                                                     length_penalty=ok["settings"]["length_penalty"])[0]
        bad = c.post("/v1/translate", json={"q": "A dog runs.", "target": "fr"})
        assert bad.status_code == 400 and "target=fr is not served" in bad.json()["error"]
