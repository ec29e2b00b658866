"""rosettamt's own search as an engine: the model and translate_ids (length-sorted batches)."""

from __future__ import annotations

from typing import Any, List, Sequence

import torch

from rosettamt.config import DecodeConfig
from rosettamt.search import Hypothesis, translate_ids


class NativeEngine:
    """A Seq2SeqTransformer on a device, searched by rosettamt.search."""

    def __init__(self, model: torch.nn.Module, device: Any) -> None:
        self.model, self.device = model, device
        self.cfg = model.cfg
        self.tag = "-bf16" if next(model.parameters()).dtype == torch.bfloat16 else ""

    def search(self, src_ids: Sequence[Sequence[int]], cfg: DecodeConfig, progress: bool = False) -> List[List[Hypothesis]]:
        with torch.inference_mode():
            return translate_ids(self.model, src_ids, cfg, self.device, progress=progress)
