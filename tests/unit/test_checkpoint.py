"""Checkpoints: atomic writes, weights_only loading, clear errors, best-k bookkeeping, averaging."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from rosettamt import checkpoint as ck
from rosettamt.config import DataConfig, ModelConfig, TokenizerConfig, TrainConfig, to_dict
from rosettamt.errors import UserError
from rosettamt.model import Seq2SeqTransformer
from rosettamt.train.average import average_checkpoints, select_checkpoints
from rosettamt.train.saver import CheckpointSaver


@pytest.fixture(scope="module")
def tokenizer(toy_files, tmp_path_factory):
    from datasets import Dataset

    from rosettamt.data.tokenizer import train_or_load

    src, tgt = (Path(p).read_text(encoding="utf-8").splitlines() for p in toy_files["train"])
    tok, _ = train_or_load(Dataset.from_dict({"src": src, "tgt": tgt}), TokenizerConfig(vocab_size=100),
                           DataConfig(source="files", files=toy_files), tmp_path_factory.mktemp("tok"))
    return tok


def _model_cfg(tok, d_model: int = 16) -> ModelConfig:
    return ModelConfig(d_model=d_model, encoder_layers=1, decoder_layers=1, n_heads=2, d_ff=32, dropout=0.0,
                       max_positions=64, src_vocab_size=tok.src_vocab_size, tgt_vocab_size=tok.tgt_vocab_size,
                       joint_vocab=tok.joint)


def _ckpt(tok, seed: int = 0, d_model: int = 16, **extra) -> dict:
    torch.manual_seed(seed)
    cfg = _model_cfg(tok, d_model)
    model = Seq2SeqTransformer(cfg)
    return {"model": model.state_dict(), "model_config": to_dict(cfg), "config": to_dict(TrainConfig(model=cfg)),
            "tokenizer": tok.state_dict(), "step": seed, "epoch": 0, "val_bleu": None, **extra}


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_roundtrip_keeps_weights_and_plain_data(tmp_path, tokenizer):
    state = _ckpt(tokenizer, rng=[{"torch": torch.get_rng_state(), "python": [3, [1, 2], None]}])
    ck.save_checkpoint(state, tmp_path / "a.pt")
    back = ck.load_checkpoint(tmp_path / "a.pt")
    assert back["format"] == ck.FORMAT and back["step"] == state["step"]
    assert _same_weights(back["model"], state["model"])
    assert back["tokenizer"] == state["tokenizer"]  # bytes of the SentencePiece model included
    assert torch.equal(back["rng"][0]["torch"], state["rng"][0]["torch"])
    assert oct((tmp_path / "a.pt").stat().st_mode & 0o777) != oct(0o600)  # not left private by mkstemp


def test_rng_states_survive_a_checkpoint_roundtrip(tmp_path):
    import random

    import numpy as np

    from rosettamt.train.rng import get_rng_state, set_rng_state

    torch.manual_seed(5), random.seed(5), np.random.seed(5)
    ck.save_checkpoint({"rng": [get_rng_state()], "model": {}, "model_config": {}, "tokenizer": {}},
                       tmp_path / "r.pt")
    expected = (torch.rand(3), random.random(), np.random.rand(3), random.gauss(0, 1))
    torch.manual_seed(9), random.seed(9), np.random.seed(9)  # move every generator elsewhere
    set_rng_state(ck.load_checkpoint(tmp_path / "r.pt")["rng"][0])
    again = (torch.rand(3), random.random(), np.random.rand(3), random.gauss(0, 1))
    assert torch.equal(expected[0], again[0]) and expected[1] == again[1] and expected[3] == again[3]
    assert np.array_equal(expected[2], again[2])


def test_failed_write_keeps_the_previous_file_and_leaves_no_temp(tmp_path, tokenizer):
    path = tmp_path / "last.pt"
    ck.save_checkpoint(_ckpt(tokenizer, seed=1), path)
    with pytest.raises(Exception):
        ck.save_checkpoint({**_ckpt(tokenizer, seed=2), "bad": lambda: None}, path)  # lambdas do not pickle
    assert ck.load_checkpoint(path)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


SAVER = textwrap.dedent("""
    import sys, torch
    from pathlib import Path
    from rosettamt.checkpoint import save_checkpoint
    path = Path(sys.argv[1])
    step = 0
    while True:
        step += 1
        w = torch.full((2_000_000,), float(step))  # 8 MB: a write takes a while, a kill lands inside one
        save_checkpoint({"model": {"w": w}, "model_config": {}, "tokenizer": {}, "step": step}, path)
        print(step, flush=True)
""")


def test_sigkill_at_any_moment_never_leaves_a_truncated_or_mismatched_file(tmp_path):
    script = tmp_path / "saver.py"
    script.write_text(SAVER)
    path = tmp_path / "last.pt"
    rng = random.Random(0)
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip()  # one save completed
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        ckpt = ck.load_checkpoint(path)
        assert torch.all(ckpt["model"]["w"] == float(ckpt["step"]))  # weights and counters of the same save
    assert [p.name for p in tmp_path.glob("*.pt")] == ["last.pt"]


def test_truncated_corrupt_missing_and_foreign_files_are_user_errors(tmp_path, tokenizer):
    good = tmp_path / "good.pt"
    ck.save_checkpoint(_ckpt(tokenizer), good)
    data = good.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "noise.pt").write_bytes(os.urandom(4096))
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(UserError, match=r"trunc\.pt is corrupt or truncated"):
        ck.load_checkpoint(tmp_path / "trunc.pt")
    with pytest.raises(UserError, match=r"noise\.pt is corrupt or truncated"):
        ck.load_checkpoint(tmp_path / "noise.pt")
    with pytest.raises(UserError, match="does not exist"):
        ck.load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(UserError, match="not a rosettamt checkpoint"):
        ck.load_checkpoint(tmp_path / "foreign.pt")


class _Evil:
    """Unpickling this would create a file: a checkpoint must never be able to run code."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_loading_is_weights_only_and_never_runs_code(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"format": ck.FORMAT, "model": {}, "model_config": {}, "tokenizer": {},
                "payload": _Evil(str(marker))}, tmp_path / "evil.pt")
    with pytest.raises(UserError, match=r"refused: it holds Python objects \(.*open\).*weights_only=True"):
        ck.load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()


def test_a_different_model_config_is_named_in_the_error(tmp_path, tokenizer):
    ck.save_checkpoint(_ckpt(tokenizer, d_model=16), tmp_path / "a.pt")
    ckpt = ck.load_checkpoint(tmp_path / "a.pt")
    other = _model_cfg(tokenizer, d_model=24)
    model = Seq2SeqTransformer(other)
    with pytest.raises(UserError, match=r"d_model=16 \(checkpoint\) != 24 \(config\)"):
        ck.load_model_state(model, ckpt, tmp_path / "a.pt", expected_config=to_dict(other))
    with pytest.raises(UserError, match=r"does not fit this model: shape .*\(100, 16\) \(checkpoint\) != \(100, 24\) \(model\)"):
        ck.load_model_state(model, ckpt, tmp_path / "a.pt")  # no config given: the shapes still say it


def test_load_for_inference_rebuilds_model_and_tokenizer_from_the_file_alone(tmp_path, tokenizer):
    state = _ckpt(tokenizer, seed=3, optimizer={"state": {}}, rng=[])
    ck.save_checkpoint(state, tmp_path / "a.pt")
    model, tok, ckpt = ck.load_for_inference(tmp_path / "a.pt", "cpu")
    assert not model.training and "optimizer" not in ckpt
    assert tok.content_hash == tokenizer.content_hash
    assert _same_weights(model.state_dict(), state["model"])
    src = torch.tensor([tok.encode_src(["The dog runs."])[0] + [3]])  # (1, S)
    assert model(src, src != 0, torch.tensor([[2]])).shape == (1, 1, tok.tgt_vocab_size)


def test_saver_keeps_the_best_k_and_the_index_tells_the_best(tmp_path, tokenizer):
    saver = CheckpointSaver(tmp_path / "checkpoints", keep_best=2, keep_periodic=2)
    for step, bleu in [(10, 10.0), (20, 20.0), (30, 15.0), (40, 5.0)]:
        saver.save(_ckpt(tokenizer, seed=step), step, last=True, bleu=bleu, periodic=True)
    names = sorted(p.name for p in (tmp_path / "checkpoints").glob("*.pt"))
    assert names == ["best-step0000020-bleu20.00.pt", "best-step0000030-bleu15.00.pt", "last.pt",
                     "step0000030.pt", "step0000040.pt"]
    assert ck.find_best_checkpoint(tmp_path).name == "best-step0000020-bleu20.00.pt"
    assert ck.load_checkpoint(tmp_path / "checkpoints" / "last.pt")["step"] == 40
    # resuming from step 25 forgets what was written after it
    CheckpointSaver(tmp_path / "checkpoints", keep_best=2, keep_periodic=2).forget_after(25)
    assert not (tmp_path / "checkpoints" / "best-step0000030-bleu15.00.pt").exists()
    assert ck.read_index(tmp_path / "checkpoints")["periodic"] == []


def test_find_best_checkpoint_falls_back_to_names_then_last(tmp_path, tokenizer):
    d = tmp_path / "checkpoints"
    with pytest.raises(UserError, match="no checkpoint"):
        ck.find_best_checkpoint(tmp_path)
    ck.save_checkpoint(_ckpt(tokenizer), tmp_path / "hand" / "best.pt")  # a folder made by hand
    ck.save_checkpoint(_ckpt(tokenizer), tmp_path / "hand" / "other.pt")
    assert ck.find_best_checkpoint(tmp_path / "hand") == tmp_path / "hand" / "best.pt"
    ck.save_checkpoint(_ckpt(tokenizer), d / "last.pt")
    assert ck.find_best_checkpoint(tmp_path) == d / "last.pt"
    for name in ("best-step0000100-bleu12.50.pt", "best-step0000200-bleu31.25.pt"):
        ck.save_checkpoint(_ckpt(tokenizer), d / name)
    assert ck.find_best_checkpoint(tmp_path).name == "best-step0000200-bleu31.25.pt"
    ck.write_index(d, {"best": [{"file": "best-step0000100-bleu12.50.pt", "step": 100, "bleu": 12.5}],
                       "averaged": {"file": "last.pt", "step": 300, "bleu": 13.0}})
    assert ck.find_best_checkpoint(d) == d / "last.pt"  # the averaged entry wins on BLEU


def test_average_is_the_elementwise_mean_and_checks_the_configs(tmp_path, tokenizer):
    saver = CheckpointSaver(tmp_path / "checkpoints", keep_best=3, keep_periodic=3)
    states = [_ckpt(tokenizer, seed=s) for s in (1, 2, 3)]
    for i, state in enumerate(states):
        saver.save(state, step=i + 1, last=True, bleu=float(i), periodic=True)
    avg = average_checkpoints(select_checkpoints(tmp_path, last=2))
    for k, v in avg["model"].items():
        torch.testing.assert_close(v, (states[1]["model"][k] + states[2]["model"][k]) / 2)
    best = select_checkpoints(tmp_path, best=1)
    assert [p.name for p in best] == ["best-step0000003-bleu2.00.pt"]
    with pytest.raises(UserError, match="4 requested"):
        select_checkpoints(tmp_path, last=4)
    ck.save_checkpoint(_ckpt(tokenizer, d_model=24), tmp_path / "other.pt")
    with pytest.raises(UserError, match="different models.*d_model"):
        average_checkpoints([tmp_path / "checkpoints" / "last.pt", tmp_path / "other.pt"])


def test_average_output_replaces_only_an_earlier_average(tmp_path, tokenizer):
    from rosettamt.cli.average import check_replaceable

    saver = CheckpointSaver(tmp_path / "checkpoints", keep_best=2, keep_periodic=2)
    for step in (1, 2):
        saver.save(_ckpt(tokenizer, seed=step, optimizer={"state": {}}), step=step, last=True, bleu=float(step),
                   periodic=True)
    folder = tmp_path / "checkpoints"
    best = folder / ck.read_index(folder)["best"][0]["file"]
    ck.save_checkpoint({**_ckpt(tokenizer), "optimizer": {}}, tmp_path / "resumable.pt")
    (tmp_path / "notes.pt").write_text("not a checkpoint\n")
    ck.save_checkpoint(_ckpt(tokenizer), tmp_path / "model.pt")  # an inference checkpoint, not an average
    index = ck.read_index(folder)
    ck.write_index(folder, {**index, "format": 2})  # a key this version does not know
    before = {p: p.read_bytes() for p in (folder / "last.pt", best, tmp_path / "resumable.pt", tmp_path / "notes.pt",
                                          tmp_path / "model.pt")}
    for path, message in [(folder / "last.pt", "named in index.json"), (best, "named in index.json"),
                          (tmp_path / "resumable.pt", "holds training state"),
                          (tmp_path / "notes.pt", "cannot be replaced: checkpoint .*notes.pt is corrupt"),
                          (tmp_path / "model.pt", "not an earlier average")]:
        with pytest.raises(UserError, match=message):
            check_replaceable(path)
    assert all(p.read_bytes() == data for p, data in before.items())
    earlier = average_checkpoints(select_checkpoints(tmp_path, last=2))
    ck.save_checkpoint(earlier, folder / "averaged-last2.pt")
    check_replaceable(folder / "averaged-last2.pt")  # an earlier average: replaced
    check_replaceable(tmp_path / "new.pt")  # nothing there yet
    (tmp_path / "mine").mkdir()
    ck.save_checkpoint(earlier, tmp_path / "mine" / "last.pt")  # outside a run, last.pt is just a name
    check_replaceable(tmp_path / "mine" / "last.pt")
    ck.save_checkpoint(earlier, tmp_path / "checkpoints" / "last.pt")  # a run's last.pt, even an average
    with pytest.raises(UserError, match="named in index.json"):
        check_replaceable(tmp_path / "checkpoints" / "last.pt")


def test_resolve_checkpoint_takes_exactly_one_existing_source(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    last = run / "checkpoints" / ck.LAST
    last.write_bytes(b"x")  # resolving never opens the file
    assert ck.resolve_checkpoint(checkpoint=str(last)) == last
    assert ck.resolve_checkpoint(run_dir=run) == last  # no index, no best: last.pt
    for kwargs, message in [
        ({}, "exactly one of checkpoint=PATH or run_dir=DIR"),
        ({"checkpoint": last, "run_dir": run}, "exactly one of checkpoint=PATH or run_dir=DIR"),
        ({"checkpoint": tmp_path / "nope.pt"}, "nope.pt: no such file"),
        ({"checkpoint": run}, "is a directory; use run_dir="),
        ({"run_dir": tmp_path / "nowhere"}, "run_dir=.*nowhere: no such directory"),
        ({"run_dir": tmp_path}, "no checkpoint in"),
    ]:
        with pytest.raises(UserError, match=message):
            ck.resolve_checkpoint(**kwargs)


def test_importing_checkpoint_paths_does_not_import_torch():
    code = "import sys, rosettamt.checkpoint as c; c.resolve_checkpoint; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# ---------------------------------------------------------------------------- untrusted checkpoints


def _tamper(tok, **changes) -> dict:
    """A checkpoint whose stored fields were changed by someone else: changes map a dotted path to a value."""
    state = _ckpt(tok)
    for dotted, value in changes.items():
        node, *rest = dotted.split(".")
        if rest:
            state[node] = dict(state[node], **{rest[0]: value})
        else:
            state[node] = value
    return state


@pytest.mark.parametrize("changes,message", [
    ({"model_config": [1, 2]}, r"model_config is a list, not a mapping"),
    ({"model_config.bogus": 1}, r"model_config has unknown key\(s\) bogus"),
    ({"model_config.d_model": "wide"}, r"model_config\.d_model is invalid"),
    ({"model_config.n_heads": 0}, r"stored model\.n_heads=0: .* must be > 0"),
    ({"model_config.d_model": 2 ** 20}, r"does not fit this model: shape"),  # claimed, never allocated
    ({"model_config.src_vocab_size": 10 ** 9, "model_config.tgt_vocab_size": 10 ** 9},
     r"does not fit this model: shape"),
    ({"model_config.decoder_layers": 10 ** 7}, r"decoder_layers=10000000 but the weights hold 1 decoder layers"),
    ({"model": "weights"}, r"model is not a mapping of parameter names to tensors"),
    ({"model": {"encoder.0.w": [1.0]}}, r"model is not a mapping of parameter names to tensors"),
    ({"tokenizer": "spm"}, r"tokenizer is a str, not a mapping"),
    ({"tokenizer.src_model": b"not a sentencepiece model"}, r"stored tokenizer is unreadable"),
])
def test_untrusted_checkpoint_fields_are_one_line_errors(tmp_path, tokenizer, changes, message):
    path = tmp_path / "other.pt"
    ck.save_checkpoint(_tamper(tokenizer, **changes), path)
    with pytest.raises(UserError, match=message) as err:
        ck.load_for_inference(path, "cpu")
    assert "\n" not in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize("name,pickle_bytes,message", [
    ("inst", b"(ios\nsystem\nS'echo x'\ntR.", r"refused: it holds Python objects \(os\.system\)"),
    ("newobj", b"\x80\x02cos\nsystem\nq\x00)\x81q\x01.", r"refused: it holds Python objects \(os\.system\)"),
    ("ext", b"\x80\x02\x82\x01.", r"refused: it holds Python objects"),
    ("garbage", b"\x80\x02}q\x00(X\x01", r"corrupt or truncated"),
])
def test_refused_and_damaged_pickles_say_which_they_are(tmp_path, name, pickle_bytes, message):
    """Hand-made payloads inside a real torch.save archive: refused ones say so, damaged ones too."""
    import zipfile

    torch.save({"a": 1}, tmp_path / "base.pt")
    with zipfile.ZipFile(tmp_path / "base.pt") as base, zipfile.ZipFile(tmp_path / f"{name}.pt", "w") as out:
        for member in base.namelist():
            out.writestr(member, pickle_bytes if member.endswith("data.pkl") else base.read(member))
    with pytest.raises(UserError, match=message):
        ck.load_checkpoint(tmp_path / f"{name}.pt")


def test_full_disk_or_unwritable_folder_is_one_line_and_keeps_the_last_good_file(tmp_path, tokenizer, monkeypatch):
    import errno

    path = tmp_path / "last.pt"
    ck.save_checkpoint(_ckpt(tokenizer, seed=1), path)
    real_save = torch.save

    def full_disk(obj, f):  # half a checkpoint reaches the disk, then it is full
        real_save({"half": torch.zeros(1000)}, f)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(UserError, match=rf"cannot write {path}: No space left on device; the previous file is untouched"):
        ck.save_checkpoint(_ckpt(tokenizer, seed=2), path)
    monkeypatch.setattr(torch, "save", real_save)
    assert ck.load_checkpoint(path)["step"] == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match=r"cannot write .*file/sub/last\.pt: Not a directory"):
        ck.save_checkpoint(_ckpt(tokenizer), blocker / "sub" / "last.pt")
    if os.geteuid() != 0:  # root writes anywhere: the permission case needs a normal user
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        with pytest.raises(UserError, match=r"cannot write .*ro/last\.pt: Permission denied"):
            ck.save_checkpoint(_ckpt(tokenizer), ro / "last.pt")
