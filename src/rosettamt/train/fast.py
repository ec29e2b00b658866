"""The model the training step runs: DDP, bf16 weight copies, torch.compile (issue 18's switches).

``training_model`` wraps the fp32 model (which stays what the optimizer, checkpoints and
validation see) for the forward pass of the training step:

* ``trainer.bf16_weights`` (with ``trainer.precision=bf16``; auto = on for the CPU): instead of
  autocast, the forward runs on a bf16 copy of the weights made by one differentiable cast per
  forward (:class:`BF16Weights`), so the activations stay bf16 from layer to layer (no casts
  around every op and no fp32 residual stream), and the gradient flows back through the cast
  into the fp32 weights' ``.grad``: the fp32 weights are the master copy the optimizer updates.
  Off: autocast as before.
* ``trainer.compile``: ``torch.compile`` of that model (see :func:`compiled`).
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

log = logging.getLogger(__name__)


class BF16Weights(nn.Module):
    """``module``'s forward on a low-precision copy of its floating weights and buffers.

    The parameters are cast inside autograd (``p.to(dtype)``), so their gradients arrive in the
    fp32 ``p.grad`` (accumulated there in fp32 across micro-batches). Each module's slot holds the
    copy during the forward only and gets its own parameter back afterwards, whatever happens;
    a tied weight is cast once and shared by all its slots.
    """

    def __init__(self, module: nn.Module, dtype: torch.dtype = torch.bfloat16) -> None:
        super().__init__()
        self.module = module
        self.dtype = dtype
        self._slots: List[Tuple[Dict[str, Any], str]] = [
            (store, name) for m in module.modules() for store in (m._parameters, m._buffers)
            for name, t in store.items() if t is not None and t.is_floating_point()]

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        saved = [store[name] for store, name in self._slots]
        copies: Dict[int, torch.Tensor] = {}
        try:
            for (store, name), t in zip(self._slots, saved):
                if id(t) not in copies:
                    copies[id(t)] = t.to(self.dtype)  # differentiable: the gradient reaches t.grad in fp32
                store[name] = copies[id(t)]
            return self.module(*args, **kwargs)
        finally:
            for (store, name), t in zip(self._slots, saved):
                store[name] = t


def use_bf16_weights(setting: Optional[bool], amp: Optional[torch.dtype], device: torch.device,
                     distributed: bool, compile: bool = False) -> bool:
    """Does this run train on bf16 weight copies? Only with a bf16 precision; auto (None) = on the CPU.
    Not under DDP (its gradient hooks watch the model's own parameters) nor with trainer.compile
    (new weight tensors every step would defeat the compiled graph's guards): autocast there."""
    if amp != torch.bfloat16 or setting is False:
        return False
    if distributed or compile:
        if setting:
            log.warning("trainer.bf16_weights is not used with %s; training with bf16 autocast",
                        "DDP" if distributed else "trainer.compile")
        return False
    return bool(setting) or device.type == "cpu"


def precision_label(amp: Optional[torch.dtype], train_amp: Optional[torch.dtype]) -> str:
    """How the training forward runs, for the start-up line: the autocast dtype the run asked for
    (``amp``) and the one left around the step once bf16 weight copies replace autocast."""
    if amp is None:
        return "fp32"
    name = str(amp).replace("torch.", "").replace("bfloat16", "bf16").replace("float16", "fp16")
    return f"{name} autocast" if train_amp is not None else f"{name} weight copies"


def training_model(model: nn.Module, tc: Any, amp: Optional[torch.dtype], device: torch.device,
                   ddp: Any = None) -> Tuple[nn.Module, Optional[torch.dtype]]:
    """The module the training step calls and the autocast dtype around it (None: no autocast).

    ``ddp``: a function that wraps a module in DistributedDataParallel, or None (one process).
    """
    train_model: nn.Module = model
    train_amp = amp
    if use_bf16_weights(tc.bf16_weights, amp, device, ddp is not None, tc.compile):
        train_model, train_amp = BF16Weights(model, amp), None  # activations bf16 already: no autocast
    elif ddp is not None:
        train_model = ddp(model)
    if tc.compile:
        train_model = compiled(train_model, device)
    return train_model, train_amp


def compiled(model: nn.Module, device: torch.device, backend: Any = "inductor") -> nn.Module:
    """``torch.compile`` of the training model, one graph for every batch shape.

    Batches differ in size (B sentences, S source and T target positions, K scored rows). With
    ``dynamic=True`` the sizes are symbols, but dynamo's "duck sizing" still gives two sizes that
    happen to be equal in the first batch one symbol (S == T is common in a length-bucketed batch),
    guards on that equality and recompiles the forward and backward when a later batch breaks it:
    several minutes of compilation each time on a small CPU, in the middle of training (that was
    most of trainer.compile's 2.5x slowdown here). Duck sizing is switched off for the process.
    """
    try:
        import torch.fx.experimental._config as fx_config

        fx_config.use_duck_shape = False
    except (ImportError, AttributeError):  # another torch: its defaults
        log.debug("torch.fx.experimental._config.use_duck_shape not found; duck sizing stays on")
    return torch.compile(model, dynamic=True, backend=backend)
