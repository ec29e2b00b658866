"""Issue 15 through the commands: long rosettamt-translate / rosettamt-evaluate runs stop cleanly on
SIGTERM (one line, exit 143, no half-written output), and a checkpoint's stored data config makes
rosettamt-evaluate touch no network and no path the user did not give."""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List

import pytest

from rosettamt.checkpoint import load_checkpoint, save_checkpoint
from helpers.toy_checkpoint import read_lines, toy_checkpoint

pytestmark = pytest.mark.slow
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def ckpt(toy_files, tmp_path_factory) -> Path:
    return toy_checkpoint(toy_files, tmp_path_factory)


@pytest.fixture(scope="module")
def many_lines(toy_files, tmp_path_factory) -> Path:
    """Enough toy sentences that translating them takes far longer than the test waits."""
    path = tmp_path_factory.mktemp("long") / "many.src"
    path.write_text("\n".join(read_lines(toy_files["train"][0]) * 10) + "\n", encoding="utf-8")
    return path


def _command(name: str, *args: str) -> List[str]:
    return [sys.executable, "-m", f"rosettamt.cli.{name}", *args]


def _sigterm_when(proc: subprocess.Popen, log: Path, marker: str, timeout: float = 120) -> None:
    """SIGTERM once ``marker`` is in the log file (the work is under way), a moment later."""
    end = time.time() + timeout
    while marker not in (log.read_text(errors="replace") if log.is_file() else ""):
        assert proc.poll() is None, f"the command ended before {marker!r} was logged"
        assert time.time() < end, f"{marker!r} never logged"
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)


def _assert_one_line_143(proc: subprocess.Popen, stderr: Path) -> None:
    assert proc.wait(timeout=120) == 143, stderr.read_text()[-3000:]
    err = stderr.read_text()
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "rosettamt: terminated (SIGTERM)"


def test_translate_stops_on_sigterm_and_keeps_the_old_output(ckpt, many_lines, tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("the translations of yesterday\n")
    stderr = tmp_path / "stderr.txt"
    with open(stderr, "w") as err:
        proc = subprocess.Popen(_command("translate", f"checkpoint={ckpt}", f"input={many_lines}", f"output={out}",
                                         "device=cpu"), cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL, stderr=err)
        _sigterm_when(proc, stderr, "loaded ")
        _assert_one_line_143(proc, stderr)
    assert out.read_text() == "the translations of yesterday\n"  # never half a file in its place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt", "stderr.txt"]  # no temp file left


def test_evaluate_stops_on_sigterm_and_writes_nothing(ckpt, many_lines, tmp_path):
    ev, stderr, stdout = tmp_path / "ev", tmp_path / "stderr.txt", tmp_path / "stdout.txt"
    with open(stderr, "w") as err, open(stdout, "w") as out:
        proc = subprocess.Popen(_command("evaluate", f"checkpoint={ckpt}", f"src_file={many_lines}",
                                         f"ref_file={many_lines}", "device=cpu", f"output_dir={ev}",
                                         f"hydra.run.dir={tmp_path / 'hydra'}"),
                                cwd=tmp_path, env=ENV, stdout=out, stderr=err)
        _sigterm_when(proc, tmp_path / "hydra" / "evaluate.log", "decoding ")
        _assert_one_line_143(proc, stderr)
    assert not ev.exists() or list(ev.iterdir()) == []  # no hypotheses, scores or temp files


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A stand-in for the address a checkpoint names: it records every request (and has nothing)."""

    requests: List[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.requests.append(self.path)
        self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stand_in_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/data", _Recorder.requests
    server.shutdown()
    server.server_close()


def test_a_checkpoints_data_config_fetches_nothing_and_creates_nothing(ckpt, toy_files, tmp_path, stand_in_server):
    """Its stored data.url points at a local stand-in server, its data.dir and cache_dir into a temp
    folder: without a corpus given, evaluate asks for one; with data.dir= it reads the user's files.
    Neither run sends a request or creates anything at the stored places (nor a cache in the cwd)."""
    url, requests = stand_in_server
    stored = tmp_path / "stored"
    state = load_checkpoint(ckpt)
    state["config"]["data"] = {"source": "multi30k", "src_lang": "en", "tgt_lang": "de", "download": True,
                               "url": url, "dir": str(stored / "multi30k"), "cache_dir": str(stored / "cache")}
    foreign = tmp_path / "downloaded" / "model.pt"
    foreign.parent.mkdir()
    save_checkpoint(state, foreign)
    work = tmp_path / "work"
    work.mkdir()
    common = [f"checkpoint={foreign}", "split=[test_2016_flickr]", "device=cpu", "decode=greedy",
              f"hydra.run.dir={tmp_path / 'hydra'}"]

    asked = subprocess.run(_command("evaluate", *common), cwd=work, env=ENV, capture_output=True, text=True,
                           timeout=300)
    assert asked.returncode == 2, asked.stderr[-3000:]
    assert asked.stderr.strip().splitlines()[-1].startswith("rosettamt: error: data.dir=data/multi30k")
    assert "data_dir=DIR (or data.dir=DIR)" in asked.stderr and "data.download=true" in asked.stderr

    corpus = tmp_path / "corpus"  # the user's own copy, under Multi30k's file names
    corpus.mkdir()
    for path, lang in zip(toy_files["test"], ("en", "de")):
        (corpus / f"test_2016_flickr.{lang}").write_text(Path(path).read_text())
    ran = subprocess.run(_command("evaluate", *common, f"data.dir={corpus}"), cwd=work, env=ENV,
                         capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "test_2016_flickr: 100 sentences" in ran.stdout
    assert (foreign.parent / "model.test_2016_flickr.greedy.hyp.de").is_file()

    assert requests == []  # no download from the checkpoint's address
    assert not stored.exists()  # neither its data.dir nor its cache_dir was created
    assert list(work.iterdir()) == []  # and no cache in the working directory
