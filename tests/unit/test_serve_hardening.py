"""rosettamt-serve's app in-process (FastAPI's TestClient) on the toy checkpoint, fed what a
careless or hostile client sends: a chunked body past the size limit (refused while it arrives,
never read whole), lone surrogates in any field, malformed numbers, and serve options too large
to run with. Each is a one-line 4xx JSON error or a one-line startup error, never a 500."""

from __future__ import annotations

import asyncio
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
KEY = "sekret"


def make_service(translator, **serve):
    from rosettamt.config import DecodeConfig, ServeConfig
    from rosettamt.serve.model import ServedModel
    from rosettamt.serve.service import Service

    return Service(lambda: ServedModel(translator), ServeConfig(**serve), DecodeConfig())


@pytest.fixture(scope="module")
def client(translator):
    from fastapi.testclient import TestClient

    from rosettamt.serve.app import create_app

    with TestClient(create_app(make_service(translator, api_keys=[KEY]))) as c:  # the lifespan starts the worker
        for _ in range(1200):
            if c.get("/health").status_code == 200:
                break
            time.sleep(0.05)
        yield c


def test_a_chunked_body_past_the_limit_is_refused_before_it_is_read_whole(client):
    limit = 5000 * 12 + 65536  # create_app's body limit for the default serve.max_chars
    chunk, chunks = 16384, 200  # 3.2 MB offered, without a Content-Length
    received, sent = [], []

    async def receive():
        received.append(chunk)
        body = b'{"api_key": "sekret", "q": "' + b"a" * (chunk - 28) if len(received) == 1 else b"a" * chunk
        more = len(received) < chunks
        return {"type": "http.request", "body": body if more else body[:-2] + b'"}', "more_body": more}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/translate", "raw_path": b"/translate", "query_string": b"",
             "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
             "headers": [(b"host", b"test"), (b"content-type", b"application/json"),
                         (b"transfer-encoding", b"chunked")]}
    asyncio.run(client.app(scope, receive, send))
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert [m["status"] for m in starts] == [413], sent
    assert b"larger than this server takes" in b"".join(m.get("body", b"") for m in sent)
    assert sum(received) <= limit + chunk  # stopped reading once past the limit


@pytest.mark.parametrize("path,body,status,words", [
    ("/translate", '{"q": "A dog runs.", "api_key": "\\ud800"}', 403, "Invalid API key"),
    ("/translate", '{"q": "A dog runs.", "api_key": "sekret\\udfff"}', 403, "Invalid API key"),
    ("/translate", '{"q": "A dog runs.", "api_key": "sekret", "source": "\\ud800"}', 400, "source=\\ud800 is not"),
    ("/translate", '{"q": "A dog runs.", "api_key": "sekret", "target": "x\\ud800"}', 400, "target=x\\ud800"),
    ("/translate", '{"q": "A dog runs.", "api_key": "sekret", "format": "\\ud800"}', 400, "format=\\ud800"),
    ("/translate", '{"q": "A dog runs.", "api_key": "sekret", "alternatives": "\\ud800"}', 400, "whole number"),
    ("/v1/translate", '{"q": "A dog runs.", "api_key": "\\ud800"}', 403, "Invalid API key"),
    ("/v1/translate", '{"q": "A dog runs.", "api_key": "sekret", "target": "\\ud800"}', 400, "target=\\ud800"),
    ("/v1/translate", '{"q": "A dog runs.", "api_key": "sekret", "\\ud800": 1}', 400, "Invalid request"),
    ("/translate", '{"q": "A dog runs.", "api_key": "sekret", "source": "a\\nb"}', 400, "source=a\\nb is not"),
])
def test_lone_surrogates_and_control_characters_are_echoed_escaped(client, path, body, status, words):
    r = client.post(path, content=body.encode(), headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert list(r.json()) == ["error"] and words in r.json()["error"] and "\n" not in r.json()["error"], r.text


@pytest.mark.parametrize("value", ["--1", "-", "1-", "+-1", "²", "٣", "1_0", "9" * 5000])
def test_a_malformed_whole_number_is_a_400(client, value):
    r = client.post("/translate", data={"q": "A dog runs.", "api_key": KEY, "alternatives": value})
    assert r.status_code == 400, r.text
    assert "alternatives must be a whole number" in r.json()["error"] and len(r.json()["error"]) < 200


def test_a_form_whole_number_still_counts(client):
    r = client.post("/translate", data={"q": "A dog runs.", "api_key": KEY, "alternatives": " 1 "})
    assert r.status_code == 200 and len(r.json()["alternatives"]) == 1, r.text
    r = client.post("/translate", data={"q": "A dog runs.", "api_key": KEY, "alternatives": "-1"})
    assert r.status_code == 400 and "outside [0, 4]" in r.json()["error"], r.text


@pytest.mark.parametrize("option,value,words", [
    ("max_wait_ms", 1e300, "serve.max_wait_ms=1e+300 must be in [0, 60000]"),
    ("max_wait_ms", 60001, "serve.max_wait_ms=60001 must be in [0, 60000]"),
    ("request_timeout", 1e300, "serve.request_timeout=1e+300 must be in (0, 3600]"),
    ("request_timeout", float("inf"), "serve.request_timeout=inf must be in (0, 3600]"),
    ("max_beam_size", 10**10, "serve.max_beam_size=10000000000 must be in [1, 1000]"),
    ("max_nbest", 1001, "serve.max_nbest=1001 must be in [1, 1000]"),
])
def test_serve_times_too_large_to_run_with_are_refused_at_startup(option, value, words):
    from rosettamt.config import ServeAppConfig, check_serve
    from rosettamt.errors import UserError

    cfg = ServeAppConfig(checkpoint="x.pt")
    check_serve(cfg)
    setattr(cfg.serve, option, value)
    with pytest.raises(UserError) as err:
        check_serve(cfg)
    assert str(err.value) == words


def test_the_largest_serve_times_run(translator):
    from rosettamt.config import ServeAppConfig, check_serve

    cfg = ServeAppConfig(checkpoint="x.pt")
    cfg.serve.max_wait_ms, cfg.serve.request_timeout = 60000, 3600
    check_serve(cfg)
    service = make_service(translator, max_wait_ms=60000, request_timeout=3600)
    service.start()
    try:
        for _ in range(1200):
            if service.status == "ok":
                break
            time.sleep(0.05)
        future = service.batcher.submit(["A dog runs."], service.settings())
        assert service.batcher._thread.is_alive() and not future.done()  # waiting for company, not dead
    finally:
        assert service.stop(30)
    assert future.done()
