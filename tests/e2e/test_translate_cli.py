"""rosettamt-translate as a user runs it: pipes, files, n-best, heatmaps, and the prompt on a
pseudo-terminal (pexpect)."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest

from rosettamt.config import DecodeConfig
from rosettamt.translate import Translator
from helpers.translate_cli import TIMEOUT, cli_env, command, run_cli
from helpers.toy_checkpoint import read_lines, toy_checkpoint

pexpect = pytest.importorskip("pexpect")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ckpt(toy_files, tmp_path_factory) -> Path:
    return toy_checkpoint(toy_files, tmp_path_factory)


@pytest.fixture(scope="module")
def translator(ckpt) -> Translator:
    return Translator.from_checkpoint(ckpt, device="cpu", decode=DecodeConfig(strategy="beam", beam_size=5))


@pytest.fixture(scope="module")
def test_pairs(toy_files):
    src, ref = (read_lines(p) for p in toy_files["test"])
    return src[:30], ref[:30]


@pytest.fixture
def env(tmp_path) -> dict:
    return cli_env(tmp_path)


def overlap(a: str, b: str) -> float:
    return len(set(a.split()) & set(b.split())) / max(len(set(b.split())), 1)


def test_pipe_prints_only_translations_one_per_line_in_order(ckpt, translator, test_pairs, tmp_path, env):
    src, ref = test_pairs
    lines = src[:10] + ["", "   "] + src[10:20] + ["\t"] + src[20:]
    result = run_cli([f"checkpoint={ckpt}"], "\n".join(lines).encode() + b"\n", tmp_path, env)
    assert result.returncode == 0, result.stderr.decode()
    # stdout is exactly the translations (beam 5 is translate.yaml's default), nothing else
    expected = translator.translate(lines)
    assert result.stdout.decode() == "".join(t + "\n" for t in expected)
    out = result.stdout.decode().split("\n")[:-1]
    assert len(out) == len(lines) and out[10] == out[11] == out[22] == ""
    out = out[:10] + out[12:22] + out[23:]
    own = sum(overlap(o, r) for o, r in zip(out, ref)) / len(ref)
    shifted = sum(overlap(o, r) for o, r in zip(out, ref[1:] + ref[:1])) / len(ref)
    assert own > shifted + 0.2, (own, shifted)
    assert "Traceback" not in result.stderr.decode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]  # Hydra wrote no files, no logs


def test_invalid_utf8_is_replaced_and_warned_and_greedy_works(ckpt, test_pairs, tmp_path, env):
    src, _ = test_pairs
    data = src[0].encode() + b"\n" + b"bad \xff\xfe\xc3 bytes\n" + src[1].encode() + b"\r\n" + src[2].encode()
    result = run_cli([f"checkpoint={ckpt}", "decode=greedy"], data, tmp_path, env)
    assert result.returncode == 0, result.stderr.decode()
    err = result.stderr.decode()
    assert "invalid UTF-8" in err and "line 2" in err and "Traceback" not in err
    t = Translator.from_checkpoint(ckpt, device="cpu")  # greedy by default
    assert result.stdout.decode().splitlines() == t.translate([src[0], "bad \ufffd\ufffd\ufffd bytes", src[1], src[2]])


def test_files_and_nbest(ckpt, translator, test_pairs, tmp_path, env):
    src, _ = test_pairs
    (tmp_path / "in.txt").write_text("\n".join(src[:5]) + "\n", encoding="utf-8")
    result = run_cli([f"run_dir={ckpt.parent.parent}", f"input={tmp_path / 'in.txt'}",
                      f"output={tmp_path / 'out.txt'}", "nbest=3"], b"", tmp_path, env)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b""
    rows = [r.split("\t") for r in (tmp_path / "out.txt").read_text(encoding="utf-8").splitlines()]
    expected = translator.translate(src[:5], nbest=3)
    assert rows == [[str(i), f"{c.score:.4f}", c.text] for i, cands in enumerate(expected, 1) for c in cands]
    assert len(rows) > 5


def test_show_attention_writes_heatmaps_under_the_run_dir(ckpt, test_pairs, tmp_path, env):
    src, _ = test_pairs
    run_dir = tmp_path / "run"
    shutil.copytree(ckpt.parent, run_dir / "checkpoints")
    result = run_cli([f"run_dir={run_dir}", "show_attention=true", "attention_head=1"],
                     f"{src[0]}\n{src[1]}\n".encode(), tmp_path, env)
    assert result.returncode == 0, result.stderr.decode()
    pngs = sorted((run_dir / "attention").glob("*.png"))
    assert [p.name for p in pngs] == ["001.png", "002.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000 for p in pngs)
    assert all(str(p) in result.stderr.decode() for p in pngs)
    assert len(result.stdout.decode().splitlines()) == 2  # translations only, paths went to stderr


def test_bad_options_give_one_line_errors(ckpt, tmp_path, env):
    for args, message in [([], "exactly one of checkpoint=PATH or run_dir=DIR"),
                          ([f"checkpoint={ckpt}", "attention_layer=9"], "attention_layer=9"),
                          ([f"checkpoint={ckpt}", f"input={tmp_path / 'none.txt'}"], "none.txt: no such file")]:
        result = run_cli(args, b"a dog\n", tmp_path, env)
        err = result.stderr.decode()
        assert result.returncode == 2 and message in err, err
        assert "Traceback" not in err and result.stdout == b""


# ---------------------------------------------------------------------- the interactive prompt


def spawn(ckpt: Path, env: dict, cwd: Path, *args: str):
    cmd = command() + [f"checkpoint={ckpt}", *args]
    # SIGINT as on a user's terminal: a suite started in the background (`pytest &` from a script) runs
    # with SIGINT ignored, which the child would inherit, and Python then never raises KeyboardInterrupt
    child = pexpect.spawn(cmd[0], cmd[1:], env=env, cwd=str(cwd), encoding="utf-8", timeout=TIMEOUT,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    child.expect_exact("Ctrl-D to quit.")  # the banner ("en -> de ...") holds a "> " of its own
    child.expect_exact("> ")  # the model is loaded once, before the first prompt
    return child


def test_interactive_prompt_translates_and_exits_on_ctrl_d(ckpt, translator, test_pairs, tmp_path, env):
    src, _ = test_pairs
    child = spawn(ckpt, env, tmp_path)
    child.sendline(src[0])
    child.expect_exact(translator.translate(src[0])[0] + "\r\n")
    child.expect_exact("> ")
    child.sendline(":beam 3")
    child.expect_exact("beam 3")
    child.expect_exact("> ")
    child.sendline(src[1])
    child.expect_exact(translator.translate(src[1], beam_size=3)[0] + "\r\n")
    child.expect_exact("> ")
    child.sendline(":attn on")
    child.expect_exact("> ")
    child.sendline(src[2])
    child.expect_exact(translator.translate(src[2], beam_size=3)[0] + "\r\n")  # printed before the plot
    # typed while the plot is made (its first one imports matplotlib): a line, then Ctrl-D. Both are
    # taken in order once the prompt is free; readline used to lose such a Ctrl-D (prompt/typeahead.py)
    child.sendline(src[3])
    child.sendeof()
    child.expect(r"-> \S+ \(\d\.\d\d\)")  # the text view of the attention
    child.expect(r"attention plot: (\S+\.png)")
    assert Path(child.match.group(1)).is_file()
    child.expect_exact(translator.translate(src[3], beam_size=3)[0] + "\r\n")
    child.expect(r"attention plot: (\S+\.png)")
    child.expect(pexpect.EOF, timeout=30)
    child.close()
    assert child.exitstatus == 0 and "Traceback" not in child.before
    history = (Path(env["HOME"]) / ".rosettamt_history").read_text(encoding="utf-8")
    assert src[0] in history and src[3] in history


def signal_state(pid: int) -> str:
    """Pending / blocked / caught signal masks of a process and what each of its threads waits in."""
    proc = Path(f"/proc/{pid}")
    try:
        status = [line for line in (proc / "status").read_text().splitlines()
                  if line.startswith(("SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt", "State"))]
        waits = [f"{t.name}:{(t / 'wchan').read_text()}:{(t / 'status').read_text().split('SigPnd:')[1].split()[0]}"
                 for t in sorted((proc / "task").iterdir())]
    except OSError as err:
        return f"unreadable ({err})"
    return "; ".join(status + waits)


def _sigint_blocked(pid: int) -> dict:
    """thread id -> whether the thread blocks SIGINT (Linux /proc)."""
    blocked = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "status").read_text()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        status = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        blocked[int(task.name)] = bool(int(status["SigBlk"].strip(), 16) & (1 << (signal.SIGINT - 1)))
    return blocked


def _sigint_caught(pid: int) -> bool:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return bool(int(status["SigCgt"].strip(), 16) & (1 << (signal.SIGINT - 1)))


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads thread signal masks from Linux /proc")
def test_at_the_prompt_only_the_main_thread_can_take_ctrl_c(ckpt, tmp_path, env):
    """A SIGINT that the kernel hands to one of torch's threads never wakes the main thread, which
    sits in readline's select(): the prompt would then ignore that Ctrl-C for good. So every other
    thread blocks SIGINT, and the main thread takes it while it waits for a line."""
    child = spawn(ckpt, env, tmp_path)
    child.sendline("ein kleines haus")  # a translation: torch's thread pools exist from here on
    child.expect_exact("> ")
    blocked = _sigint_blocked(child.pid)
    assert len(blocked) > 1, "expected torch's worker threads beside the main thread"
    assert blocked.pop(child.pid) is False  # the main thread, at the prompt
    assert _sigint_caught(child.pid), signal_state(child.pid)  # Python's KeyboardInterrupt handler is installed
    assert all(blocked.values()), blocked
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_interactive_prompt_exits_cleanly_on_ctrl_c(ckpt, tmp_path, env):
    child = spawn(ckpt, env, tmp_path)
    child.send("a half typed")  # no Enter: Ctrl-C abandons the line and the prompt
    child.expect_exact("a half typed")  # echoed: readline has it
    child.sendintr()  # Ctrl-C
    try:
        child.expect(pexpect.EOF)
    except pexpect.TIMEOUT:  # as when the suite ran with SIGINT ignored (see spawn): say where the signal went
        pytest.fail(f"no exit after Ctrl-C; signal state of pid {child.pid}: {signal_state(child.pid)}")
    child.close()
    assert child.exitstatus == 0, (child.exitstatus, child.signalstatus, child.before)
    assert "Traceback" not in child.before and "KeyboardInterrupt" not in child.before
