"""The server's states through a real uvicorn server (in a thread of the test, so that the test
holds the gates): 503 while the model loads, 403 without the right key, 429 when the queue is
full, 503 when a request times out or the server is stopping, a model bug as a JSON 500 after
which the server goes on."""

from __future__ import annotations

import threading
import time

import pytest

from helpers.toy_checkpoint import toy_checkpoint

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytestmark = pytest.mark.slow
KEY = "k-123"


class Gated:
    """The served model, but loading and every batch wait for the test's gates."""

    def __init__(self, ckpt):
        self.ckpt = ckpt
        self.loading = threading.Event()
        self.working = threading.Event()
        self.working.set()

    def load(self):
        from rosettamt.serve.model import ServedModel
        from rosettamt.translate import Translator

        assert self.loading.wait(60)
        self.inner = ServedModel(Translator.from_checkpoint(self.ckpt, device="cpu"))
        self.info = self.inner.info
        return self

    def count_tokens(self, lines):
        return self.inner.count_tokens(lines)

    def translate(self, lines, settings):
        assert self.working.wait(60)
        if "boom" in lines:
            raise RuntimeError("a bug in the model")
        return self.inner.translate(lines, settings)

    def attend(self, lines, settings):
        return self.inner.attend(lines, settings)


@pytest.fixture(scope="module")
def served(toy_files, tmp_path_factory):
    from rosettamt.config import DecodeConfig, ServeConfig
    from rosettamt.serve.app import create_app
    from rosettamt.serve.server import bind, make_server, url_of
    from rosettamt.serve.service import Service

    model = Gated(toy_checkpoint(toy_files, tmp_path_factory))
    cfg = ServeConfig(api_keys=[KEY, "other"], queue_size=4, max_sentences=4, request_timeout=1.5, max_wait_ms=0)
    service = Service(model.load, cfg, DecodeConfig(strategy="beam", beam_size=2))
    sock = bind("127.0.0.1", 0)
    server = make_server(create_app(service, stop_timeout=5), service, sock, access_log=False, grace=5)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield model, service, url_of(sock)
    server.should_exit = True
    thread.join(30)
    assert not thread.is_alive()


def post(url, path, **body):
    return httpx.post(f"{url}{path}", json=body, timeout=30)


def test_states_in_order(served):
    """One server through its life: loading, keys, a full queue, a timeout, a bug, stopping."""
    model, service, url = served
    # loading: 503 everywhere but the page, health says so
    r = httpx.get(f"{url}/health")
    assert r.status_code == 503 and r.json()["status"] == "loading"
    for r in (post(url, "/translate", q="a", api_key=KEY), post(url, "/v1/translate", q="a", api_key=KEY),
              httpx.get(f"{url}/languages")):
        assert r.status_code == 503 and r.json() == {"error": "the model is loading; try again in a moment"}
        assert r.headers["retry-after"] == "1"
    assert httpx.get(f"{url}/").status_code == 200
    model.loading.set()
    deadline = time.monotonic() + 60
    while httpx.get(f"{url}/health").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.05)

    # keys: missing or wrong is 403 on both APIs, a right one translates
    assert post(url, "/translate", q="The dog.").json() == {"error": "Invalid API key: this server needs api_key"}
    for path in ("/translate", "/v1/translate"):
        r = post(url, path, q="The dog.", api_key="wrong")
        assert (r.status_code, r.json()) == (403, {"error": "Invalid API key"})
    assert post(url, "/v1/translate", q="The dog.").status_code == 403
    assert post(url, "/translate", q="The dog.", api_key="other").status_code == 200

    # a full queue: one line waits in a stopped model, four more do not fit a queue of four
    model.working.clear()
    waiting = {}
    first = threading.Thread(target=lambda: waiting.update(r=post(url, "/translate", q="The cat.", api_key=KEY)))
    first.start()
    while service.batcher.stats()["queued_sentences"] < 1:
        time.sleep(0.01)
    r = post(url, "/translate", q=["a", "b", "c", "d"], api_key=KEY)
    assert r.status_code == 429 and r.json()["error"].startswith("Too many requests: the queue is full")
    # ... and the waiting one times out (serve.request_timeout=1.5)
    first.join(30)
    assert waiting["r"].status_code == 503 and "timed out after 1.5 s" in waiting["r"].json()["error"]
    model.working.set()
    assert post(url, "/translate", q="The cat.", api_key=KEY).status_code == 200

    # a bug is a 500 with a JSON error, and the server goes on
    r = post(url, "/translate", q="boom", api_key=KEY)
    assert r.status_code == 500 and r.json() == {
        "error": "internal error (RuntimeError); the server log has the details"}
    assert post(url, "/translate", q="The cat.", api_key=KEY).status_code == 200

    # stopping: new requests are refused with 503
    service.stopping = True
    r = post(url, "/translate", q="The cat.", api_key=KEY)
    assert (r.status_code, r.json()) == (503, {"error": "the server is shutting down"})
    assert httpx.get(f"{url}/health").json()["status"] == "stopping"
