"""The catalogue of bad inputs (issue 15): broken corpora, out-of-range options, checkpoints from
elsewhere, output paths that cannot or must not be written. Each goes through its command as a
user types it, and each must end the same way: exit status 2, exactly one line on stderr starting
with ``rosettamt: error:`` that names the culprit, no traceback, and no file that existed before
changed (every file of the case's folder, the toy corpus and the toy checkpoint are hashed before
and after). The commands run two at a time; the assertions are one test per case.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List

import pytest
import torch

from rosettamt.checkpoint import load_checkpoint, save_checkpoint
from helpers.toy_checkpoint import other_tokenizer_checkpoint, toy_checkpoint

pytestmark = pytest.mark.slow
ROOT = os.geteuid() == 0  # root writes into read-only folders: those cases need a normal user
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
# Runs a command with a full disk under $ROSETTAMT_TEST_FULL_DISK: fsync of any file there fails.
FULL_DISK = textwrap.dedent("""
    import errno, os, runpy, sys
    real_fsync, full = os.fsync, os.environ["ROSETTAMT_TEST_FULL_DISK"]
    def fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").startswith(full):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)
    os.fsync = fsync
    sys.argv[0] = sys.argv.pop(1)
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
""")


@dataclass
class Case:
    command: str  # prepare, train, evaluate, translate, average
    args: List[str]
    needle: str  # what the error line must name
    full_disk: bool = False

    def set(self, key: str, value: object) -> "Case":
        """This case with ``key=value`` instead of the key's current value."""
        self.args = [a for a in self.args if a.split("=", 1)[0] != key] + [f"{key}={value}"]
        return self


@dataclass
class Ctx:
    d: Path  # this case's folder (also its working directory)
    toy: Dict[str, List[str]]
    ckpt: Path

    def file(self, name: str, text: str = "x\n") -> Path:
        path = self.d / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def corpus(self, train_src: Path | str | None = None, train_tgt: Path | str | None = None) -> List[str]:
        train, val = self.toy["train"], self.toy["val"]
        return ["data=files", f"data.files.train=[{train_src or train[0]},{train_tgt or train[1]}]",
                f"data.files.val=[{val[0]},{val[1]}]", "data.test_splits=[]", f"data.cache_dir={self.d / 'cache'}",
                "tokenizer.vocab_size=100", f"hydra.run.dir={self.d / 'run'}"]

    def train(self, *extra: str) -> Case:
        return Case("train", [*self.corpus(), "model=tiny", "trainer=debug", "trainer.max_steps=5", *extra], "")

    def checkpoint_with(self, name: str, change: Callable[[dict], None]) -> Path:
        state = load_checkpoint(self.ckpt)
        change(state)
        save_checkpoint(state, self.d / name)
        return self.d / name


def _gz_damaged_in_the_middle(c: Ctx) -> Case:
    data = gzip.compress(Path(c.toy["train"][0]).read_bytes())
    middle = len(data) // 2
    (c.d / "train.src.gz").write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 64])
                                       + data[middle + 64:])
    return Case("prepare", c.corpus(c.d / "train.src.gz"), "train.src.gz")


def _misaligned(c: Ctx) -> Case:
    lines = Path(c.toy["train"][1]).read_text(encoding="utf-8").splitlines()
    tgt = c.file("train.tgt", "\n".join(lines[:-3]) + "\n")
    return Case("prepare", c.corpus(None, tgt), "differ in length")


def _not_utf8(c: Ctx) -> Case:
    src = c.d / "train.src"
    src.write_bytes(Path(c.toy["train"][0]).read_bytes().replace(b"dog", b"d\xffg", 1))
    return Case("prepare", c.corpus(src), "train.src:")


def _run_dir_through_a_file(c: Ctx) -> Case:
    case = c.train().set("hydra.run.dir", c.file("afile") / "run")
    case.needle = f"hydra.run.dir={c.d / 'afile' / 'run'}: {c.d / 'afile'} is a file, not a directory"
    return case


def _cache_dir_through_a_file(c: Ctx) -> Case:
    return Case("prepare", c.corpus(), "data.cache_dir=").set("data.cache_dir", c.file("afile") / "cache")


def _read_only(c: Ctx, name: str) -> Path:
    folder = c.d / name
    folder.mkdir()
    folder.chmod(0o555)
    return folder


def _translate(c: Ctx, *args: str, needle: str, checkpoint: Path | None = None) -> Case:
    return Case("translate", [f"checkpoint={checkpoint or c.ckpt}", "device=cpu", "decode=greedy", *args], needle)


def _output_is_the_input(c: Ctx, link: str) -> Case:
    source = c.file("in.txt", "A dog runs.\nThe cat sits.\n")
    out = source
    if link == "symlink":
        out = c.d / "out.txt"
        out.symlink_to(source)
    elif link == "hardlink":
        out = c.d / "out.txt"
        os.link(source, out)
    return _translate(c, f"input={source}", f"output={out}", needle="is the input file")


def _evaluate(c: Ctx, checkpoint: Path, *args: str, needle: str) -> Case:
    test = c.toy["test"]
    return Case("evaluate", [f"checkpoint={checkpoint}", f"src_file={test[0]}", f"ref_file={test[1]}", "device=cpu",
                             "decode=greedy", f"output_dir={c.d / 'ev'}", f"hydra.run.dir={c.d / 'hydra'}", *args],
                needle)


def _truncated_checkpoint(c: Ctx) -> Case:
    data = c.ckpt.read_bytes()
    (c.d / "cut.pt").write_bytes(data[: len(data) // 2])
    return _evaluate(c, c.d / "cut.pt", needle="corrupt or truncated")


def _pickled_object(c: Ctx) -> Case:
    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"format": "rosettamt-1", "model": Payload(), "model_config": {}, "tokenizer": {}}, c.d / "evil.pt")
    return _translate(c, needle="holds Python objects", checkpoint=c.d / "evil.pt")


def _stored_config_not_a_mapping(c: Ctx) -> Case:
    bad = c.checkpoint_with("bad.pt", lambda s: s.update(model_config=[1, 2]))
    return _evaluate(c, bad, needle="model_config is a list")


def _shapes_do_not_match(c: Ctx) -> Case:
    bad = c.checkpoint_with("bad.pt", lambda s: s["model_config"].update(d_ff=4096))
    return _translate(c, needle="does not fit", checkpoint=bad)


def _stored_files_not_named(c: Ctx) -> Case:
    case = _evaluate(c, c.ckpt, needle="data.files.test=")
    case.args = [a for a in case.args if not a.startswith(("src_file=", "ref_file="))] + ["split=[test]"]
    return case


def _average_other_tokenizer(c: Ctx) -> Case:
    other = other_tokenizer_checkpoint(c.ckpt, c.d)
    return Case("average", [f"inputs=[{c.ckpt},{other}]", f"output={c.d / 'avg.pt'}"], "tokenizers differ")


def _full_disk(c: Ctx) -> Case:
    c.file("in.txt", "A dog runs.\n")
    (c.d / "full").mkdir()
    old = c.file("full/out.txt", "the translations of yesterday\n")
    case = _translate(c, f"input={c.d / 'in.txt'}", f"output={old}", needle="No space left on device")
    case.full_disk = True
    return case


CASES: Dict[str, Callable[[Ctx], Case]] = {
    # corpora
    "corpus/gzip-damaged-in-the-middle": _gz_damaged_in_the_middle,
    "corpus/files-of-different-length": _misaligned,
    "corpus/not-utf8": _not_utf8,
    # options
    "option/negative-learning-rate": lambda c: Case("train", c.train("optim.lr=-0.001").args, "optim.lr=-0.001"),
    "option/beam-size-zero-given-to-train": lambda c: Case("train", c.train("decode.beam_size=0").args,
                                                           "decode.beam_size=0"),
    "option/nan-length-penalty": lambda c: _translate(c, "decode.length_penalty=nan", needle="length_penalty=nan"),
    # rejected while Hydra composes the config: its several-line report becomes one line
    "option/unknown-precision": lambda c: _translate(c, "decode.precision=int4", needle="decode.precision: Invalid"),
    "option/misspelled-key": lambda c: Case("train", c.train("trainer.max_step=5").args, "trainer.max_step"),
    "option/misspelled-key-added-with-plus": lambda c: Case("train", c.train("+trainer.max_stepz=5").args,
                                                            "trainer.max_stepz: no such option"),
    "option/unknown-config-group-option": lambda c: _translate(c, "decode=sampling", needle="decode/sampling"),
    "option/unparsable-override": lambda c: _translate(c, "decode.beam_size=[1", needle="override"),
    "option/negative-time-limit": lambda c: Case("train", c.train("trainer.max_time=-5").args, "trainer.max_time=-5"),
    "option/tokenizer-sample-size-negative": lambda c: Case(
        "prepare", [*c.corpus(), "tokenizer.input_sentence_size=-1"], "tokenizer.input_sentence_size=-1"),
    "option/tokenizer-coverage-above-one": lambda c: Case(
        "prepare", [*c.corpus(), "tokenizer.character_coverage=2"], "tokenizer.character_coverage=2"),
    # checkpoints
    "checkpoint/truncated": _truncated_checkpoint,
    "checkpoint/pickled-python-object": _pickled_object,
    "checkpoint/model-config-not-a-mapping": _stored_config_not_a_mapping,
    "checkpoint/weights-do-not-fit-the-config": _shapes_do_not_match,
    "checkpoint/stored-data-files-not-named-by-the-user": _stored_files_not_named,
    "checkpoint/average-different-tokenizers": _average_other_tokenizer,
    "checkpoint/language-code-that-is-a-path": lambda c: _evaluate(c, c.checkpoint_with(
        "bad.pt", lambda s: s["config"]["data"].update(tgt_lang="tgt/../../escaped")), needle="not a plain name"),
    # output paths
    "output/translate-output-is-the-input": lambda c: _output_is_the_input(c, "same"),
    "output/translate-output-symlinks-to-the-input": lambda c: _output_is_the_input(c, "symlink"),
    "output/translate-output-is-a-hard-link-of-the-input": lambda c: _output_is_the_input(c, "hardlink"),
    "output/translate-output-through-a-file": lambda c: _translate(
        c, f"input={c.file('in.txt')}", f"output={c.file('afile') / 'out.txt'}", needle="is a file, not a directory"),
    "output/train-run-dir-through-a-file": _run_dir_through_a_file,
    "output/cache-dir-through-a-file": _cache_dir_through_a_file,
    "output/evaluate-output-dir-through-a-file": lambda c: _evaluate(
        c, c.ckpt, needle="output_dir=").set("output_dir", c.file("afile") / "ev"),
    "output/average-output-through-a-file": lambda c: Case(
        "average", [f"inputs=[{c.ckpt},{c.ckpt}]", f"output={c.file('afile') / 'avg.pt'}"], "is a file"),
    "output/full-disk-keeps-the-old-output": _full_disk,
}
if not ROOT:
    CASES.update({
        "permission/translate-output-in-a-read-only-folder": lambda c: _translate(
            c, f"input={c.file('in.txt')}", f"output={_read_only(c, 'ro') / 'out.txt'}", needle="is not writable"),
        "permission/train-run-dir-in-a-read-only-folder": lambda c: Case(
            "train", c.train().args, "is not writable").set("hydra.run.dir", _read_only(c, "ro") / "run"),
        "permission/cache-dir-in-a-read-only-folder": lambda c: Case(
            "prepare", c.corpus(), "is not writable").set("data.cache_dir", _read_only(c, "ro") / "cache"),
    })


def _hashes(*roots: Path) -> Dict[str, str]:
    out = {}
    for root in roots:
        for path in ([root] if root.is_file() else sorted(root.rglob("*"))):
            if path.is_file() and not path.is_symlink():
                out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _run(case: Case, cwd: Path) -> subprocess.CompletedProcess:
    module = f"rosettamt.cli.{case.command}"
    cmd = [sys.executable, "-c", FULL_DISK, module] if case.full_disk else [sys.executable, "-m", module]
    env = {**ENV, "ROSETTAMT_TEST_FULL_DISK": str(cwd / "full")} if case.full_disk else ENV
    return subprocess.run([*cmd, *case.args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def outcomes(toy_files, tmp_path_factory) -> Dict[str, tuple]:
    """Every case run once: {case id: (case, completed process, hashes before, hashes after)}."""
    ckpt = toy_checkpoint(toy_files, tmp_path_factory)
    shared = [Path(p) for pair in toy_files.values() for p in pair] + [ckpt]
    prepared = {}
    for name, build in CASES.items():
        d = tmp_path_factory.mktemp(name.replace("/", "-"))
        case = build(Ctx(d, toy_files, ckpt))
        prepared[name] = (case, d, _hashes(d, *shared))
    with ThreadPoolExecutor(max_workers=2) as pool:
        procs = dict(zip(prepared, pool.map(lambda item: _run(item[0], item[1]), prepared.values())))
    out = {}
    for name, (case, d, before) in prepared.items():
        for path in d.rglob("*"):  # let the fixture's cleanup remove what the read-only cases made
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        out[name] = (case, procs[name], before, _hashes(d, *shared))
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_exit_2_and_changes_no_file(outcomes, name):
    case, proc, before, after = outcomes[name]
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in lines if line.startswith("rosettamt: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr[-3000:]
    assert case.needle in errors[0], errors[0]
    changed = sorted(path for path, digest in before.items() if after.get(path) != digest)
    assert changed == [], changed
