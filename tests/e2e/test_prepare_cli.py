"""rosettamt-prepare end to end on a Multi30k slice: counts printed, second run a cache hit, one-line errors."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SPLITS = ("train", "val", "test_2016_flickr", "test_2017_flickr")
ROW = re.compile(r"^(\S+)\s+(\d+) pairs\s+(\d+) dropped \(empty\)\s+(\d+) filtered \(too long\)\s+(\d+) kept$", re.M)


def _prepare(cwd: Path, *overrides: str) -> subprocess.CompletedProcess:
    exe = shutil.which("rosettamt-prepare")
    cmd = [exe] if exe else [sys.executable, "-m", "rosettamt.prepare"]
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(cmd + list(overrides), cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_prepare_prints_counts_and_second_run_is_a_cache_hit(multi30k_slice, tmp_path):
    work = tmp_path / "elsewhere"
    work.mkdir()
    args = ("data.src_lang=de", "data.tgt_lang=en", "data.max_len=16", "tokenizer.vocab_size=600")
    first = _prepare(work, f"data.dir={multi30k_slice}", *args)
    assert first.returncode == 0, first.stderr[-2000:]
    rows = {m[0]: tuple(map(int, m[1:])) for m in ROW.findall(first.stdout)}
    assert list(rows) == list(SPLITS)
    for split, (pairs, dropped, filtered, kept) in rows.items():
        assert pairs == 500 and dropped == 0 and kept == pairs - filtered
        assert (filtered > 0) if split == "train" else (filtered == 0)  # val/test never filtered
    assert re.search(r"tokenizer: vocab size 600 \(joint\), trained \(cache miss\)", first.stdout)
    assert (work / "data" / "cache" / "tokenizers").is_dir()  # relative cache_dir: under the cwd

    # same content through a relative data.dir: the caches are keyed by content, not by path
    second = _prepare(work, f"data.dir={os.path.relpath(multi30k_slice, work)}", *args)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "vocab size 600 (joint), cache hit" in second.stdout
    assert {m[0]: tuple(map(int, m[1:])) for m in ROW.findall(second.stdout)} == rows
    assert len(list((work / "data" / "cache" / "tokenizers").iterdir())) == 1


@pytest.mark.parametrize("override,needle", [("data.src_lang=xx", "data.src_lang='xx'"),
                                             ("data.test_splits=[test_2099]", "test_2099")])
def test_bad_input_is_one_line_on_stderr(multi30k_slice, tmp_path, override, needle):
    run = _prepare(tmp_path, f"data.dir={multi30k_slice}", override)
    assert run.returncode == 2
    errors = [line for line in run.stderr.splitlines() if line.startswith("rosettamt: error:")]
    assert len(errors) == 1 and needle in errors[0] and "Traceback" not in run.stderr
