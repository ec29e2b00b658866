"""rosettamt-serve through a real server process on an ephemeral 127.0.0.1 port, toy checkpoint:
LibreTranslate's /translate (JSON and form, one text or a list, alternatives) and /languages,
rosettamt's /v1/translate (search settings, n-best scores, the attention payload), every input
error with its status and JSON body, 200 concurrent requests answered as the offline Translator
answers them (in real batches), and SIGTERM with requests in flight (answered, then exit 0)."""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from helpers.serve import start_server
from helpers.toy_checkpoint import read_lines, toy_checkpoint

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytestmark = pytest.mark.slow
MAX_CHARS, MAX_SENTENCES = 400, 6


@pytest.fixture(scope="module")
def ckpt(toy_files, tmp_path_factory):
    return toy_checkpoint(toy_files, tmp_path_factory)


@pytest.fixture(scope="module")
def sentences(toy_files):
    return read_lines(toy_files["test"][0])


@pytest.fixture(scope="module")
def offline(ckpt):
    from rosettamt.translate import Translator

    return Translator.from_checkpoint(ckpt, device="cpu")


@pytest.fixture(scope="module")
def server(ckpt):
    srv = start_server(ckpt, f"serve.max_chars={MAX_CHARS}", f"serve.max_sentences={MAX_SENTENCES}")
    yield srv
    assert srv.stop(signal.SIGINT) == 0, srv.log  # Ctrl-C ends it as cleanly as SIGTERM (tested below)
    assert "SIGINT: no new requests" in srv.log


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def test_languages_health_page_and_offline_docs(client):
    assert client.get("/languages").json() == [{"code": "src", "name": "src", "targets": ["tgt"]}]
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["model"]["source"] == "src" and health["model"]["heads"] == 4
    assert health["model"]["checkpoint"].endswith("last.pt") and not health["model"]["checkpoint"].startswith("/")
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/translate", "/languages", "/detect", "/v1/translate", "/health"} <= set(paths)
    assert {"400", "403", "413", "429", "503"} <= set(paths["/v1/translate"]["post"]["responses"])
    assert "422" not in paths["/v1/translate"]["post"]["responses"]  # FastAPI's default; we answer 400
    page = client.get("/")
    assert page.status_code == 200 and "static/app.js" in page.text
    docs = client.get("/docs").text
    assert "http" not in docs.split("<body>")[1].replace("/openapi.json", "")  # nothing from a CDN
    for path in ("/static/app.js", "/static/heatmap.js", "/static/style.css", "/static/favicon.svg",
                 "/static/vendor/swagger-ui/swagger-ui-bundle.js", "/static/vendor/swagger-ui/swagger-ui.css"):
        assert client.get(path).status_code == 200, path


def test_libretranslate_json_and_form_single_and_list(client, offline, sentences, toy_files):
    a, b, c = sentences[:3]
    best = offline.translate([a, b, c], beam_size=5)
    r = client.post("/translate", json={"q": a, "source": "src", "target": "tgt", "format": "text"})
    assert r.status_code == 200 and r.json() == {"translatedText": best[0]}
    r = client.post("/translate", json={"q": [a, b, ""], "source": "src", "target": "tgt"})
    assert r.json() == {"translatedText": [best[0], best[1], ""]}
    r = client.post("/translate", data={"q": b, "source": "src", "target": "tgt"})  # urlencoded form
    assert r.json() == {"translatedText": best[1]}
    r = client.post("/translate", files={"q": (None, c), "source": (None, "src")})  # multipart form
    assert r.json() == {"translatedText": best[2]}
    r = client.post("/translate", data={"q": [a, c]})  # repeated form field: a list
    assert r.json() == {"translatedText": [best[0], best[2]]}
    r = client.post("/translate", json={"q": f"{a}\n{b}", "source": "auto"})  # lines stay lines
    assert r.json()["translatedText"] == f"{best[0]}\n{best[1]}"
    found = r.json()["detectedLanguage"]  # the checkpoint's language profiles (rosettamt.langid) say
    assert found["language"] == "src" and found["confidence"] > 90, found
    tgt_text = read_lines(toy_files["test"][1])[0]  # a target-language text sent as the source
    r = client.post("/translate", json={"q": [a, tgt_text], "source": "auto"}).json()
    assert [d["language"] for d in r["detectedLanguage"]] == ["src", "src"]  # the one source it translates ...
    assert r["detectedLanguage"][1]["confidence"] < 10, r  # ... which the second text does not read like


def test_a_libretranslate_client_works_unchanged(server, offline, sentences):
    """The calls LibreTranslate's Python client (libretranslatepy) makes, made the way it makes them:
    urllib, form-encoded POSTs, a GET /languages with a form body, the base URL with a slash."""
    import json
    from urllib import parse, request

    base = server.url + "/"

    def call(path, params, method=None):
        req = request.Request(base + path, data=parse.urlencode(params).encode(), method=method)
        with request.urlopen(req, timeout=60) as response:
            return json.loads(response.read().decode())

    assert call("translate", {"q": sentences[0], "source": "src", "target": "tgt"})["translatedText"] == \
        offline.translate(sentences[0], beam_size=5)[0]
    assert call("languages", {}, method="GET") == [{"code": "src", "name": "src", "targets": ["tgt"]}]
    detected = call("detect", {"q": sentences[0]})
    assert [d["language"] for d in detected] == ["src", "tgt"] and detected[0]["confidence"] > 90, detected


def test_libretranslate_alternatives(client, offline, sentences):
    nbest = offline.translate(sentences[3:5], beam_size=5, nbest=3)
    r = client.post("/translate", json={"q": sentences[3], "alternatives": 2, "api_key": "ignored"})
    assert r.json() == {"translatedText": nbest[0][0].text, "alternatives": [c.text for c in nbest[0][1:]]}
    r = client.post("/translate", data={"q": sentences[3:5], "alternatives": "2"})
    assert r.json()["alternatives"] == [[c.text for c in cands[1:]] for cands in nbest]


def test_v1_search_settings_nbest_and_scores(client, offline, sentences):
    body = {"q": sentences[5:8], "beam_size": 3, "nbest": 2, "length_penalty": 0.6}
    data = client.post("/v1/translate", json=body).json()
    assert data["settings"] == {"beam_size": 3, "nbest": 2, "length_penalty": 0.6}
    ref = offline.translate(sentences[5:8], beam_size=3, nbest=2, length_penalty=0.6)
    for got, cands in zip(data["translations"], ref):
        assert [c["text"] for c in got["nbest"]] == [c.text for c in cands] and got["text"] == cands[0].text
        assert np.allclose([c["score"] for c in got["nbest"]], [c.score for c in cands], atol=1e-4)
        assert "source_pieces" not in got
    one = client.post("/v1/translate", json={"q": sentences[5], "beam_size": 1}).json()["translations"][0]
    assert one["text"] == offline.translate(sentences[5], beam_size=1)[0] and len(one["nbest"]) == 1


def test_v1_attention_shapes_match_pieces_and_rows_sum_to_one(client, offline, sentences):
    data = client.post("/v1/translate", json={"q": sentences[8:10], "nbest": 2, "attention": True}).json()
    for sentence, got in zip(sentences[8:10], data["translations"]):
        ref = offline.nbest_with_attention(sentence, nbest=2, beam_size=5)
        assert got["source_pieces"] == ref[0].src_tokens and got["text"] == ref[0].text
        assert len(got["nbest"]) == 2
        for cand, want in zip(got["nbest"], ref):
            weights = np.array(cand["attention"])  # (layers, heads, target pieces, source pieces)
            assert weights.shape == (2, 4, len(cand["target_pieces"]), len(got["source_pieces"]))
            assert cand["target_pieces"] == want.tgt_tokens and cand["text"] == want.text
            assert np.allclose(weights.sum(-1), 1.0, atol=1e-3) and np.allclose(weights, want.weights, atol=1e-4)


BAD = [  # (path, request kwargs, status, words of the error)
    ("/translate", {"json": {}}, 400, "missing q"),
    ("/translate", {"json": {"q": ""}}, 400, "missing q"),
    ("/translate", {"json": {"q": "   "}}, 400, "missing q"),
    ("/translate", {"data": {"source": "src"}}, 400, "missing q"),
    ("/translate", {"json": {"q": []}}, 400, "empty list"),
    ("/translate", {"json": {"q": ["a", 1]}}, 400, "q[1] is int"),
    ("/translate", {"json": {"q": {"a": 1}}}, 400, "string or a list"),
    ("/translate", {"json": {"q": "a", "source": "fr"}}, 400, "source=fr is not served"),
    ("/translate", {"json": {"q": "a", "target": "de"}}, 400, "target=de is not served"),
    ("/translate", {"json": {"q": "a", "target": 5}}, 400, "target must be a string"),
    ("/translate", {"json": {"q": "a", "format": "html"}}, 400, "format=html"),
    ("/translate", {"json": {"q": "a", "alternatives": "many"}}, 400, "alternatives must be a whole number"),
    ("/translate", {"json": {"q": "a", "alternatives": 1.5}}, 400, "alternatives must be a whole number"),
    ("/translate", {"json": {"q": "a", "alternatives": -1}}, 400, "outside [0, 4]"),
    ("/translate", {"json": {"q": "a", "alternatives": 9}}, 400, "outside [0, 4]"),
    ("/translate", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "JSON"),
    ("/translate", {"json": ["q"]}, 400, "must be an object"),
    ("/translate", {"files": {"q": ("a.txt", b"text")}}, 400, "not a file"),
    ("/v1/translate", {"json": {"q": "a", "beam": 5}}, 400, "beam: Extra inputs"),
    ("/v1/translate", {"json": {"q": "a", "beam_size": "5"}}, 400, "beam_size"),
    ("/v1/translate", {"json": {"q": "a", "beam_size": 0}}, 400, "beam_size=0 is outside [1, 8]"),
    ("/v1/translate", {"json": {"q": "a", "beam_size": 99}}, 400, "beam_size=99 is outside [1, 8]"),
    ("/v1/translate", {"json": {"q": "a", "nbest": 6}}, 400, "nbest=6 is outside [1, 5]"),
    ("/v1/translate", {"json": {"q": "a", "length_penalty": 9}}, 400, "length_penalty=9"),
    ("/v1/translate", {"json": {"q": "a", "attention": "yes"}}, 400, "attention"),
    ("/v1/translate", {"json": {"q": "a\nb", "attention": True}}, 400, "one line per item"),
    ("/v1/translate", {"json": {"q": [None]}}, 400, "q"),
    ("/v1/translate", {"content": b"[", "headers": {"Content-Type": "application/json"}}, 400, "JSON"),
    ("/translate", {"json": {"q": "a" * (MAX_CHARS + 1)}}, 413, f"exceed the limit of {MAX_CHARS}"),
    ("/translate", {"json": {"q": ["a"] * (MAX_SENTENCES + 1)}}, 413, f"limit of {MAX_SENTENCES}"),
    ("/translate", {"json": {"q": "a\n" * MAX_SENTENCES}}, 413, "lines exceed"),
    ("/v1/translate", {"json": {"q": "a" * (MAX_CHARS + 1)}}, 413, "characters exceed"),
    ("/translate", {"content": b"q=" + b"a" * 200_000,
                    "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 413, "bytes is larger"),
]


@pytest.mark.parametrize("path,kwargs,status,words", BAD, ids=[f"{b[2]}-{b[3][:24]}" for b in BAD])
def test_bad_input_is_a_json_error_never_a_500(client, path, kwargs, status, words):
    r = client.post(path, **kwargs)
    assert r.status_code == status, r.text
    body = r.json()
    assert list(body) == ["error"] and words in body["error"], body


def test_unknown_routes_and_methods_answer_json(client):
    r = client.get("/nope")
    assert r.status_code == 404 and r.json() == {"error": "Not Found"}
    r = client.get("/translate")
    assert r.status_code == 405 and list(r.json()) == ["error"]


def test_200_requests_from_20_clients_are_batched_and_equal_offline(server, offline, sentences):
    """Three kinds of request interleave (beam 5; beam 5 with 2 alternatives; v1 beam 3): each answer
    equals the offline Translator's for the same sentence and settings, and batches held several."""
    before = httpx.get(f"{server.url}/health").json()["batching"]
    jobs = [(i, sentences[i % len(sentences)], i % 3) for i in range(200)]
    plain = dict(zip(sentences, offline.translate(sentences, beam_size=5)))
    alts = dict(zip(sentences, offline.translate(sentences, beam_size=5, nbest=3)))
    beam3 = dict(zip(sentences, offline.translate(sentences, beam_size=3)))

    def client_loop(mine):
        out = []
        with httpx.Client(base_url=server.url, timeout=60) as c:
            for i, sentence, kind in mine:
                if kind == 0:
                    out.append((i, c.post("/translate", json={"q": sentence}).json()["translatedText"]))
                elif kind == 1:
                    r = c.post("/translate", data={"q": sentence, "alternatives": "2"}).json()
                    out.append((i, [r["translatedText"], *r["alternatives"]]))
                else:
                    r = c.post("/v1/translate", json={"q": sentence, "beam_size": 3}).json()
                    out.append((i, r["translations"][0]["text"]))
        return out

    with ThreadPoolExecutor(20) as pool:
        answers = dict(a for part in pool.map(client_loop, [jobs[k::20] for k in range(20)]) for a in part)
    assert len(answers) == 200
    for i, sentence, kind in jobs:
        want = (plain[sentence], [c.text for c in alts[sentence]], beam3[sentence])[kind]
        assert answers[i] == want, (sentence, kind)
    after = httpx.get(f"{server.url}/health").json()["batching"]
    batches, lines = after["batches"] - before["batches"], after["sentences"] - before["sentences"]
    assert lines == 200 and after["requests"] - before["requests"] == 200
    assert 1 <= batches < 200 and after["max_batch_sentences"] > 1, after


def test_sigterm_with_requests_in_flight_answers_them_then_exits_0(ckpt, sentences, offline):
    srv = start_server(ckpt, "serve.max_wait_ms=600")  # the worker collects for 0.6 s: requests stay in flight
    results, errors = {}, []

    def ask(i):
        try:
            auto = {"source": "auto"} if i % 2 else {}  # detection too is answered for a request in flight
            r = httpx.post(f"{srv.url}/translate", json={"q": sentences[i], **auto}, timeout=60)
            results[i] = (r.status_code, r.json())
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(repr(err))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while httpx.get(f"{srv.url}/health").json()["batching"]["queued_sentences"] < 8 and time.monotonic() < deadline:
        time.sleep(0.02)
    srv.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(60)
    assert srv.stop(sig=None, timeout=60) == 0, srv.log  # a second SIGTERM while it exits would be a hard stop
    assert errors == [] and len(results) == 8
    want = offline.translate(sentences[:8], beam_size=5)
    assert [(status, body["translatedText"]) for status, body in (results[i] for i in range(8))] == \
        [(200, w) for w in want]
    assert [results[i][1].get("detectedLanguage", {}).get("language") for i in range(8)] == [None, "src"] * 4
    assert "SIGTERM: no new requests" in srv.log and "stopped after 8 requests" in srv.log
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{srv.url}/health", timeout=5)
