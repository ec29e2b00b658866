"""Device, precision, CPU threads and the allocator: the machine-facing knobs every stage shares.

A leaf module (it imports only the config schema and the error type), so training, search,
translation and checkpoint loading all take their device helpers from here. The process-wide
settings (threads, :func:`keep_freed_memory`) are made once, by the entry points.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys
from pathlib import Path
from typing import ContextManager, Union

import torch

from rosettamt.config import Precision
from rosettamt.errors import UserError

log = logging.getLogger(__name__)


def resolve_device(spec: Union[str, torch.device], local_rank: int = 0) -> torch.device:
    """``auto`` -> this rank's GPU when CUDA is present, else the CPU; anything else as written."""
    if isinstance(spec, torch.device):
        return spec
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cuda":
        spec = f"cuda:{local_rank}"
    device_type(spec)  # a device= rosettamt cannot use at all: one line
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device={spec!r} but CUDA is not available here; use device=cpu or device=auto")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"device={spec!r} but this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def autocast_dtype(precision: Precision, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32. ``auto`` means bf16 on CUDA, fp32 on CPU."""
    if precision == Precision.fp32:
        return None
    if precision == Precision.auto:
        return torch.bfloat16 if device.type == "cuda" else None
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UserError("trainer.precision=bf16 but this GPU has no bf16 support; use trainer.precision=fp32")
    return torch.bfloat16


def inference_dtype(precision: Precision, device: torch.device) -> torch.dtype:
    """The dtype a model is cast to for decoding (decode.precision): no autocast, the weights
    themselves, so every matmul runs in it. ``auto`` means bf16 on CUDA, fp32 on CPU."""
    if precision == Precision.fp32 or (precision == Precision.auto and device.type != "cuda"):
        return torch.float32
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UserError("decode.precision=bf16 but this GPU has no bf16 support; use decode.precision=fp32")
    return torch.bfloat16


def autocast(device: torch.device, dtype: torch.dtype | None) -> ContextManager:
    """Mixed precision for the forward pass; a no-op context for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def physical_cores() -> int:
    """Physical cores usable by this process (hyper-threads share a core's FPUs, so count cores)."""
    try:
        usable = os.sched_getaffinity(0)
    except AttributeError:  # not Linux
        usable = set(range(os.cpu_count() or 1))
    cores, proc, phys = set(), None, "0"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "processor":
                proc = int(value)
            elif key == "physical id":
                phys = value
            elif key == "core id" and proc in usable:
                cores.add((phys, value))
    except (OSError, ValueError):
        pass
    return max(1, len(cores) or len(usable))


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed memory for reuse; True if it took effect.

    By default glibc serves big blocks (above a threshold that starts at 128 KiB and rises to at
    most 32 MiB) with their own mmap and unmaps them on free. A training step frees and
    re-allocates several such blocks (the (tokens, vocab) logits, their log-softmax and gradient),
    a decoding step the growing, reordered K/V cache, and the kernel then zero-fills every page
    again on first touch: on a small model that is a sizeable part of the step. With mmap off (M_MMAP_MAX=0) and a
    high trim threshold the blocks come from the heap and stay there between steps. No-op where
    the C library is not glibc.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # malloc.h
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 1 << 30))


def set_threads(threads: int, local_world_size: int = 1) -> int:
    """Intra-op threads for this process: ``threads``, or (0) the physical cores shared by local ranks.

    An explicit OMP_NUM_THREADS in the environment wins over the automatic choice, so a
    caller that pins threads (CI, a benchmark harness) is respected.
    """
    if threads <= 0:
        env = os.environ.get("OMP_NUM_THREADS", "")
        threads = int(env) if env.isdigit() and int(env) > 0 else max(1, physical_cores() // local_world_size)
    torch.set_num_threads(threads)
    return threads


def setup_allocator(enabled: bool, device: Union[str, torch.device] = "cpu") -> bool:
    """The entry points' one call for ``trainer.keep_freed_memory`` / ``decode.keep_freed_memory``:
    keep freed memory (see :func:`keep_freed_memory`) when enabled and the work runs on the CPU."""
    if not enabled:
        return False
    return device_type(device) == "cpu" and keep_freed_memory()


def device_type(spec: Union[str, torch.device]) -> str:
    """``cpu`` or ``cuda`` for a device= value (``auto``: what resolve_device would pick), without asking
    whether torch can use it (with backend=ctranslate2 the GPU is CTranslate2's); UserError otherwise."""
    if isinstance(spec, torch.device):
        return spec.type
    if spec == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(spec).type
    except (RuntimeError, TypeError) as err:
        first = (str(err).strip().splitlines() or [""])[0]
        raise UserError(f"device={spec!r} is not a device (use auto, cpu, cuda or cuda:N): {first}") from None
    if kind not in ("cpu", "cuda"):
        raise UserError(f"device={spec!r}: rosettamt runs on cpu or cuda (use auto, cpu, cuda or cuda:N)")
    return kind
