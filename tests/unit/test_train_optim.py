"""Loss, learning-rate schedule, optimizer and CPU threads: the numbers the training loop stands on."""

from __future__ import annotations

import math
import platform
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from rosettamt.config import OptimConfig, OptimName, Schedule
from rosettamt.errors import UserError
from rosettamt.train.loss import label_smoothed_loss
from rosettamt.train.optim import build_optimizer, build_scheduler, lr_factor


def _logits_and_target(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 5, 11, generator=g)  # (B, T, V)
    target = torch.randint(1, 11, (3, 5), generator=g)  # (B, T)
    target[0, 3:] = 0  # padding
    target[2, 1:] = 0
    return logits, target


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_loss_matches_torch_cross_entropy_with_smoothing_and_padding(eps):
    logits, target = _logits_and_target()
    loss, nll = label_smoothed_loss(logits, target, eps, pad_id=0)
    ref = F.cross_entropy(logits.view(-1, 11), target.view(-1), ignore_index=0, label_smoothing=eps,
                          reduction="sum")
    ref_nll = F.cross_entropy(logits.view(-1, 11), target.view(-1), ignore_index=0, reduction="sum")
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(nll, ref_nll)


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_hand_written_gradient_matches_autograd_of_torch_cross_entropy(eps):
    logits, target = _logits_and_target(seed=1)
    ours = logits.clone().requires_grad_(True)
    loss, nll = label_smoothed_loss(ours, target, eps, pad_id=0)
    (0.7 * loss + 0.2 * nll).backward()  # both outputs carry gradient
    ref = logits.clone().requires_grad_(True)
    flat, tgt = ref.view(-1, 11), target.view(-1)
    (0.7 * F.cross_entropy(flat, tgt, ignore_index=0, label_smoothing=eps, reduction="sum")
     + 0.2 * F.cross_entropy(flat, tgt, ignore_index=0, reduction="sum")).backward()
    torch.testing.assert_close(ours.grad, ref.grad)
    assert torch.autograd.gradcheck(lambda z: label_smoothed_loss(z, target, eps)[0],
                                    (logits.double().requires_grad_(True),))


def test_padding_positions_do_not_affect_the_loss_or_its_gradient():
    logits, target = _logits_and_target()
    changed = logits.clone()
    changed[target == 0] = 100.0 * torch.randn_like(changed[target == 0])
    a, _ = label_smoothed_loss(logits, target, 0.1)
    b, _ = label_smoothed_loss(changed, target, 0.1)
    torch.testing.assert_close(a, b)
    x = logits.clone().requires_grad_(True)
    label_smoothed_loss(x, target, 0.1)[0].backward()
    assert torch.all(x.grad[target == 0] == 0) and torch.any(x.grad[target != 0] != 0)


def test_smoothing_penalises_overconfidence():
    target = torch.tensor([[1, 2]])
    sharp = F.one_hot(target, 4).float() * 50  # (1, 2, 4): almost all mass on the label
    soft = F.one_hot(target, 4).float() * 3
    assert label_smoothed_loss(sharp, target, 0.0)[0] < label_smoothed_loss(soft, target, 0.0)[0]
    assert label_smoothed_loss(sharp, target, 0.2)[0] > label_smoothed_loss(soft, target, 0.2)[0]


def _lrs(cfg: OptimConfig, max_steps: int, n: int):
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(model, cfg, torch.device("cpu"))
    sched = build_scheduler(opt, cfg, max_steps)
    lrs = []
    for _ in range(n):
        lrs.append(opt.param_groups[0]["lr"])  # the lr this update uses
        opt.step()
        sched.step()
    return lrs


def test_inverse_sqrt_warms_up_linearly_then_decays_as_inverse_sqrt():
    cfg = OptimConfig(lr=1e-3, warmup_steps=10, schedule=Schedule.inverse_sqrt)
    lrs = _lrs(cfg, 0, 40)
    assert lrs[0] == pytest.approx(1e-4) and lrs[0] > 0  # the first update already moves
    assert all(b > a for a, b in zip(lrs[:9], lrs[1:10]))  # rising during warmup
    assert lrs[9] == pytest.approx(1e-3)  # peak at update number warmup_steps
    assert lrs[39] == pytest.approx(1e-3 * math.sqrt(10 / 40))
    assert all(b < a for a, b in zip(lrs[9:], lrs[10:]))


def test_cosine_reaches_min_lr_at_max_steps_and_constant_stays():
    cfg = OptimConfig(lr=1e-3, warmup_steps=5, schedule=Schedule.cosine, min_lr=1e-5)
    lrs = _lrs(cfg, 50, 60)
    assert lrs[4] == pytest.approx(1e-3)
    assert lrs[49] == pytest.approx(1e-5) and lrs[59] == pytest.approx(1e-5)
    mid = 5 + (50 - 5) // 2 - 1
    assert 1e-5 < lrs[mid] < 1e-3
    const = _lrs(OptimConfig(lr=2e-3, warmup_steps=4, schedule=Schedule.constant), 0, 20)
    assert const[3:] == pytest.approx([2e-3] * 17)
    with pytest.raises(UserError, match="max_steps"):
        lr_factor(cfg, 0)


def test_weight_decay_only_on_matrices_and_optimizer_kind():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    opt = build_optimizer(model, OptimConfig(name=OptimName.adamw, weight_decay=0.1), torch.device("cpu"))
    assert type(opt) is torch.optim.AdamW
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert decayed == {id(model[0].weight)}
    assert type(build_optimizer(model, OptimConfig(name=OptimName.adam), torch.device("cpu"))) is torch.optim.Adam
    with pytest.raises(UserError, match="betas"):
        build_optimizer(model, OptimConfig(betas=[0.9]), torch.device("cpu"))


def test_threads_default_to_physical_cores_unless_pinned(monkeypatch):
    import os

    from rosettamt.device import physical_cores, set_threads

    before = torch.get_num_threads()
    try:
        assert 1 <= physical_cores() <= (os.cpu_count() or 1)
        assert set_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        assert set_threads(0, local_world_size=1) == physical_cores()
        assert set_threads(0, local_world_size=64) == 1  # ranks on one machine share its cores
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert set_threads(0) == 1  # an explicit OMP_NUM_THREADS is respected
    finally:
        torch.set_num_threads(before)


KEEP_FREED = """
import sys, torch
from rosettamt.device import keep_freed_memory, setup_allocator
def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20
if sys.argv[1].startswith("decode"):  # what decode.keep_freed_memory=true|false does on CPU
    from rosettamt.config import DecodeConfig, ModelConfig
    from rosettamt.model import Seq2SeqTransformer
    from rosettamt.search import translate_ids
    model = Seq2SeqTransformer(ModelConfig(d_model=16, encoder_layers=1, decoder_layers=1, n_heads=2, d_ff=16,
                                           src_vocab_size=12, tgt_vocab_size=12, max_positions=16))
    cfg = DecodeConfig(keep_freed_memory=sys.argv[1] == "decode1")
    took = setup_allocator(cfg.keep_freed_memory, "cpu")  # what the commands do at start
    translate_ids(model, [[5, 6, 7]], cfg, "cpu")
else:
    took = keep_freed_memory() if sys.argv[1] == "1" else False
x = torch.ones(64 * 2**20)  # 256 MiB, touched
before = rss_mib()
del x
print(took, before - rss_mib())  # MiB given back to the OS by the free
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_keep_freed_memory_keeps_big_blocks_in_the_process():
    """glibc's default unmaps a freed 256 MiB tensor at once (the next one page-faults in again);
    after keep_freed_memory() the block stays in the process for the next allocation."""
    out = {}
    for arg in ("0", "1", "decode0", "decode1"):
        proc = subprocess.run([sys.executable, "-c", KEEP_FREED, arg], capture_output=True, text=True, check=True)
        took, released = proc.stdout.split()
        out[arg] = (took == "True", float(released))
    assert out["0"][1] > 200  # the default: unmapped on free
    assert out["1"] == (True, pytest.approx(0, abs=16))  # kept
    assert out["decode0"][1] > 200  # decode.keep_freed_memory=false leaves malloc alone
    assert out["decode1"][1] == pytest.approx(0, abs=16)  # decoding on CPU turns it on by default


@pytest.mark.parametrize("spec", ["tpu", "mps", "cpu:x", ""])
def test_a_device_rosettamt_cannot_use_is_one_line(spec):
    from rosettamt.device import resolve_device, setup_allocator

    for call in (lambda: resolve_device(spec), lambda: setup_allocator(True, spec)):
        with pytest.raises(UserError, match="device=") as err:
            call()
        assert "\n" not in str(err.value)
    assert resolve_device("cpu").type == "cpu" and resolve_device("auto").type in ("cpu", "cuda")


def test_the_allocator_setting_does_not_ask_torch_for_the_gpu(monkeypatch):
    """With backend=ctranslate2 the GPU is CTranslate2's: a torch without CUDA is no error there."""
    import torch

    from rosettamt.device import resolve_device, setup_allocator

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert setup_allocator(True, "cuda") is False and setup_allocator(True, "cuda:1") is False
    for spec in ("cuda", "cuda:7"):  # torch itself is asked only where torch runs the model
        with pytest.raises(UserError, match="CUDA is not available"):
            resolve_device(spec)
