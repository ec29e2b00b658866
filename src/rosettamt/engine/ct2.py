"""A CTranslate2 export as an engine: the same batches, length limits and options as rosettamt's search.

Sources are cut to the model's positions and packed longest first by decode.max_tokens exactly as
translate_ids does; each batch is one translate_batch call. Ids travel as SentencePiece pieces
(the export's vocabularies are the SentencePiece models' piece lists, so piece <-> id is exact).
rosettamt's per-sentence limit max_len = floor(a * src_len + b) (src_len counting EOS) is applied
to each sentence: CTranslate2 gets the batch's largest limit + 1 steps, and a hypothesis that ran
past its own limit is cut there, which is exactly rosettamt's greedy output (EOS forced at
max_len) and rosettamt's beam output unless the limit changed the search.
"""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

from tqdm import tqdm

from rosettamt.config import DecodeConfig, ModelConfig, check_decode, from_dict
from rosettamt.data.packing import longest_first
from rosettamt.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from rosettamt.engine.ct2_options import translate_options
from rosettamt.errors import UserError
from rosettamt.search.hypothesis import Hypothesis
from rosettamt.search.translate_ids import restore_order

log = logging.getLogger(__name__)

COMPUTE_TYPES = ("default", "auto", "float32", "int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16",
                 "float16", "bfloat16")


def ct2_device(device: str) -> Tuple[str, int]:
    """rosettamt's device option (auto, cpu, cuda, cuda:N) as CTranslate2's (device, index)."""
    import ctranslate2

    if device == "auto":
        return ("cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"), 0
    kind, _, index = str(device).partition(":")
    if kind not in ("cpu", "cuda") or (index and not index.isdigit()):
        raise UserError(f"device={device!r}: use auto, cpu, cuda or cuda:N")
    if kind == "cuda" and ctranslate2.get_cuda_device_count() == 0:
        raise UserError(f"device={device!r} but CTranslate2 sees no CUDA device; use device=cpu")
    return kind, int(index or 0)


class CT2Engine:
    """ctranslate2.Translator over an export folder written by rosettamt-export format=ctranslate2."""

    def __init__(self, translator: Any, cfg: ModelConfig, src_pieces: List[str], tgt_pieces: List[str],
                 tag: str = "-ct2") -> None:
        self.translator, self.cfg, self.tag = translator, cfg, tag
        self.src_pieces = src_pieces
        self.tgt_ids: Dict[str, int] = {p: i for i, p in enumerate(tgt_pieces)}
        self.pad, self.bos = tgt_pieces[PAD_ID], tgt_pieces[BOS_ID]
        self.eos = tgt_pieces[EOS_ID]

    @classmethod
    def load(cls, folder: Path, device: str = "cpu", compute_type: str = "default",
             threads: int = 0) -> Tuple["CT2Engine", Any, Dict[str, Any]]:
        """(engine, rosettamt Tokenizer, the export's rosettamt.json) from an export folder."""
        from rosettamt.export.common import read_meta, require, spm_pieces, tokenizer_from_export

        ctranslate2 = require("ctranslate2", "ctranslate2", "backend=ctranslate2")
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise UserError(f"model_dir={folder}: no such directory (an export from rosettamt-export format=ctranslate2)")
        meta = read_meta(folder)
        if meta.get("kind") not in ("ctranslate2", "argos"):
            raise UserError(f"model_dir={folder} is a {meta.get('kind')} export; backend=ctranslate2 needs "
                            "format=ctranslate2")
        if compute_type not in COMPUTE_TYPES:
            raise UserError(f"ct2.compute_type={compute_type}: use one of {', '.join(COMPUTE_TYPES)}")
        if not isinstance(threads, int) or threads < 0:
            raise UserError(f"ct2.threads={threads!r} must be a whole number >= 0 (0 = CTranslate2's default)")
        model_path = folder / "model" if meta.get("kind") == "argos" else folder
        kind, index = ct2_device(device)
        try:
            translator = ctranslate2.Translator(str(model_path), device=kind, device_index=index,
                                                compute_type=compute_type, intra_threads=threads)
        except (RuntimeError, ValueError) as err:
            raise UserError(f"model_dir={folder}: CTranslate2 cannot load it ({err})") from None
        tokenizer = tokenizer_from_export(folder, meta)
        state = tokenizer.state_dict()
        src = spm_pieces(bytes(state["src_model"]))
        tgt = src if state["joint"] else spm_pieces(bytes(state["tgt_model"]))
        cfg = from_dict(ModelConfig, meta["model_config"])
        quant = compute_type if compute_type not in ("default", "auto") else meta.get("quantization", "float32")
        tag = "-ct2" if quant == "float32" else f"-ct2-{quant}"
        return cls(translator, cfg, src, tgt, tag), tokenizer, meta

    def search(self, src_ids: Sequence[Sequence[int]], cfg: DecodeConfig, progress: bool = False) -> List[List[Hypothesis]]:
        check_decode(cfg)
        options = translate_options(cfg, self.pad, self.bos)
        positions = self.cfg.max_positions
        sources: List[List[int]] = []
        for i, ids in enumerate(src_ids):
            if len(ids) + 1 > positions:  # as translate_ids: pieces + EOS must fit the positions
                log.warning("source %d has %d tokens, cut to model.max_positions=%d", i, len(ids) + 1, positions)
                ids = ids[: positions - 1]
            sources.append(list(ids))
        nonempty = [i for i, ids in enumerate(sources) if ids]
        batches = [[nonempty[j] for j in b] for b in longest_first([len(sources[i]) + 1 for i in nonempty],
                                                                    cfg.max_tokens)]
        outputs: List[List[List[Hypothesis]]] = []
        with tqdm(total=len(nonempty), desc="decoding", unit="sent", file=sys.stderr, disable=not progress,
                  dynamic_ncols=True) as bar:
            for batch in batches:
                limits = [self.max_len(len(sources[i]) + 1, cfg) for i in batch]
                pieces = [[self.src_pieces[t] for t in sources[i]] for i in batch]
                results = self.translator.translate_batch(pieces, max_decoding_length=max(limits) + 1, **options)
                outputs.append([self._hypotheses(r, limit, options["length_penalty"])
                                for r, limit in zip(results, limits)])
                bar.update(len(batch))
        empty = [i for i, ids in enumerate(sources) if not ids]
        batches.append(empty)
        outputs.append([[Hypothesis([], 0.0, 0.0)] for _ in empty])
        return restore_order(batches, outputs, len(sources))

    def max_len(self, src_len: int, cfg: DecodeConfig) -> int:
        """rosettamt's limit (search/stepper.length_limits): floor(a * src_len + b), capped by the positions."""
        cap = self.cfg.max_positions - 1  # b capped first: a huge int never meets a float (overflow)
        return max(0, math.floor(min(cfg.max_len_a * src_len + min(cfg.max_len_b, cap), cap)))

    def _hypotheses(self, result: Any, limit: int, penalty: float) -> List[Hypothesis]:
        """CTranslate2's hypotheses (pieces, EOS included) as rosettamt's (ids without EOS, cut at limit)."""
        out = []
        for pieces, score in zip(result.hypotheses, result.scores):
            length = len(pieces)  # CTranslate2 normalised by it (EOS counted when present)
            ended = bool(pieces) and pieces[-1] == self.eos
            ids = [self.tgt_ids.get(p, 1) for p in (pieces[:-1] if ended else pieces)]
            log_prob = score * (length ** penalty if length else 1.0)
            out.append(Hypothesis(ids[:limit], float(score), float(log_prob)))
        return out
