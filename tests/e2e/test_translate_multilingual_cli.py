"""rosettamt-translate on a toy multilingual checkpoint as a user runs it: tgt_lang= picks the
language of piped input, a direction the model does not know (or any other pair for a bilingual
model) is a one-line error with exit status 2, and the prompt's :tgt switches language."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.translate_cli import TIMEOUT, cli_env, command, run_cli
from helpers.toy_checkpoint import toy_checkpoint
from helpers.toy_multilingual import looks_like, multilingual_checkpoint, toy_pairs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mckpt(tmp_path_factory) -> Path:
    return multilingual_checkpoint(tmp_path_factory)


@pytest.fixture
def env(tmp_path) -> dict:
    return cli_env(tmp_path)


def test_pipe_translates_into_tgt_lang_and_bad_directions_exit_2(mckpt, toy_files, tmp_path_factory, tmp_path, env):
    sources = [s for s, _, _ in toy_pairs(8, seed=41)]
    stdin = ("\n".join(sources) + "\n").encode()
    for lang in ("fr", "de"):
        run = run_cli([f"checkpoint={mckpt}", "device=cpu", f"tgt_lang={lang}", "src_lang=en"], stdin, tmp_path, env)
        assert run.returncode == 0, run.stderr.decode()[-2000:]
        lines = run.stdout.decode().splitlines()
        assert len(lines) == len(sources) and all(looks_like(line, lang) > 0.8 for line in lines), lines
    bilingual = toy_checkpoint(toy_files, tmp_path_factory)
    for ckpt, option, words in ((mckpt, "tgt_lang=cs", "does not translate into 'cs'"),
                                (mckpt, "src_lang=de", "src_lang=de needs tgt_lang="),
                                (mckpt, "tgt_lang=French", "tgt_lang"),
                                (bilingual, "tgt_lang=fr", "translates only src-tgt")):
        run = run_cli([f"checkpoint={ckpt}", "device=cpu", option], stdin, tmp_path, env)
        err = run.stderr.decode().strip().splitlines()
        assert run.returncode == 2 and run.stdout == b"", (option, run.stderr.decode()[-2000:])
        assert err[-1].startswith("rosettamt: error:") and words in err[-1], err


def test_prompt_switches_language_with_tgt(mckpt, tmp_path, env):
    pexpect = pytest.importorskip("pexpect")
    from rosettamt.config import DecodeConfig
    from rosettamt.translate import Translator

    offline = Translator.from_checkpoint(mckpt, device="cpu", decode=DecodeConfig(strategy="beam", beam_size=5))
    cmd = command() + [f"checkpoint={mckpt}", "device=cpu"]
    child = pexpect.spawn(cmd[0], cmd[1:], cwd=str(tmp_path), env=env, timeout=TIMEOUT, encoding="utf-8")
    try:
        child.expect_exact("2 directions (direction: en -> de,")  # the banner names the default direction
        child.expect_exact("Ctrl-D to quit.")
        child.expect_exact("> ")
        sentence = toy_pairs(1, seed=43)[0][0]
        for lang in ("fr", "de"):
            child.sendline(f":tgt {lang}")
            child.expect_exact(f"direction: en -> {lang},")
            child.expect_exact("> ")
            child.sendline(sentence)
            want = offline.translate(sentence, tgt_lang=lang)[0]
            assert looks_like(want, lang) > 0.8
            child.expect_exact(want + "\r\n")
            child.expect_exact("> ")
        child.sendline(":tgt cs")
        child.expect_exact("does not translate into 'cs'")
        child.expect_exact("> ")
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
