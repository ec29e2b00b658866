"""rosettamt-serve as a user starts it: --help, one-line errors (exit 2) for what is wrong before
or while the model loads, the missing extra, a wheel that carries the page, and backend=ctranslate2
(an export behind the same API, without attention)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from helpers.serve import start_server
from helpers.toy_checkpoint import read_lines, toy_checkpoint

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_DATASETS_OFFLINE": "1"}


def serve(*args: str, cwd: Path, code: str = "") -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", code + "from rosettamt.cli.serve import main; main()"] if code else \
        [sys.executable, "-m", "rosettamt.serve"]
    return subprocess.run(cmd + list(args), cwd=cwd, env=ENV, capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def ckpt(toy_files, tmp_path_factory):
    return toy_checkpoint(toy_files, tmp_path_factory)


def test_help_shows_the_serve_options(tmp_path):
    res = serve("--help", cwd=tmp_path)
    assert res.returncode == 0 and "max_batch_tokens" in res.stdout and "port: 5000" in res.stdout


def test_what_is_wrong_is_one_line_and_exit_2(ckpt, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cases = [([], "give exactly one of checkpoint=PATH or run_dir=DIR"),
                 ([f"run_dir={tmp_path / 'none'}"], "no such directory"),
                 ([f"checkpoint={ckpt}", "serve.port=70000"], "serve.port=70000 must be in [0, 65535]"),
                 ([f"checkpoint={ckpt}", "serve.queue_size=5"], "serve.queue_size=5 must hold one full request"),
                 ([f"checkpoint={ckpt}", "serve.max_wait_ms=1e300"], "serve.max_wait_ms=1e+300 must be in [0, 60000]"),
                 ([f"checkpoint={ckpt}", "serve.request_timeout=1e300"], "serve.request_timeout=1e+300 must be in"),
                 ([f"checkpoint={ckpt}", "decode.beam_size=9"], "outside serve.max_beam_size=8"),
                 ([f"checkpoint={ckpt}", f"model_dir={tmp_path}"], "model_dir= is the export folder"),
                 ([f"checkpoint={ckpt}", f"serve.port={port}"], f"cannot listen on 127.0.0.1:{port}")]
        for args, words in cases:
            res = serve(*args, cwd=tmp_path)
            lines = res.stderr.strip().splitlines()
            assert res.returncode == 2 and len(lines) == 1 and words in lines[0], (args, res.stderr)


def test_a_checkpoint_that_fails_to_load_stops_the_server_with_one_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    res = serve(f"checkpoint={bad}", "serve.port=0", cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("rosettamt: error: ") and "bad.pt" in last and "Traceback" not in res.stderr


def test_missing_extra_says_what_to_install(ckpt, tmp_path):
    res = serve(f"checkpoint={ckpt}", cwd=tmp_path, code="import sys; sys.modules['uvicorn'] = None; ")
    assert res.returncode == 2 and res.stderr.strip() == (
        "rosettamt: error: rosettamt-serve needs uvicorn: pip install 'rosettamt[serve]'")


def test_the_wheel_carries_the_page_and_the_docs(tmp_path):
    pytest.importorskip("hatchling")
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                          str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    (wheel,) = tmp_path.glob("rosettamt-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    static = "rosettamt/serve/static/"
    assert {static + n for n in ("index.html", "app.js", "heatmap.js", "style.css", "favicon.svg",
                                 "vendor/swagger-ui/swagger-ui-bundle.js", "vendor/swagger-ui/swagger-ui.css",
                                 "vendor/swagger-ui/LICENSE")} <= names
    assert "rosettamt/configs/serve.yaml" in names


def test_backend_ctranslate2_serves_an_export_without_attention(ckpt, toy_files, tmp_path):
    pytest.importorskip("ctranslate2")
    httpx = pytest.importorskip("httpx")
    from rosettamt.config import DecodeConfig
    from rosettamt.translate import Translator

    out = tmp_path / "toy-ct2"
    res = subprocess.run([sys.executable, "-m", "rosettamt.cli.export", f"checkpoint={ckpt}", "format=ctranslate2",
                          f"output={out}"], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-2000:]
    srv = start_server(None, "backend=ctranslate2", f"model_dir={out}", "ct2.threads=1",
                       "decode.length_norm=average", "decode.beam_size=4")
    try:
        src = read_lines(toy_files["test"][0])[:5]
        decode = DecodeConfig(strategy="beam", beam_size=4, length_norm="average")
        want = Translator.from_export(out, "cpu", decode, threads=1).translate(src)
        assert httpx.post(f"{srv.url}/translate", json={"q": src}).json() == {"translatedText": want}
        assert want == Translator.from_checkpoint(ckpt, device="cpu", decode=decode).translate(src)
        health = httpx.get(f"{srv.url}/health").json()
        assert health["model"]["backend"] == "ctranslate2" and health["model"]["attention"] is False
        r = httpx.post(f"{srv.url}/v1/translate", json={"q": src[0], "attention": True})
        assert r.status_code == 400 and "attention needs backend=rosettamt" in r.json()["error"]
        r = httpx.post(f"{srv.url}/v1/translate", json={"q": src[0], "length_penalty": 0.5})
        assert r.status_code == 400 and "decode.length_norm=average" in r.json()["error"]
    finally:
        assert srv.stop() == 0, srv.log
