"""A checkpoint's evaluation: decode the sources, write hypotheses and references, score them.

Files land next to the checkpoint (or in ``output_dir``): ``{ckpt}.{split}.{greedy|beamK}.hyp.{lang}``,
``.ref.{lang}`` and ``.scores.json``; the scores are computed on exactly the lines written
(scoring.py), so the sacrebleu CLI on those files agrees. The sources come from inputs.py.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from rosettamt.atomic import atomic_write_text, writable_dir
from rosettamt.checkpoint import load_for_inference, resolve_checkpoint
from rosettamt.config import CT2Config, DataConfig, DecodeConfig, MetricConfig, Strategy
from rosettamt.device import resolve_device
from rosettamt.errors import UserError
from rosettamt.evaluate.corpus_config import corpus_config, override_keys, read_splits
from rosettamt.evaluate.inputs import read_pair
from rosettamt.evaluate.scoring import score
from rosettamt.search import translate_ids
from rosettamt.search.translate_ids import check_lengths

log = logging.getLogger("rosettamt.evaluate")  # the name log lines carried before the split


@dataclass
class EvalResult:
    """Scores and throughput of one decoded split (or file)."""

    name: str  # split name, or the source file's name
    sentences: int
    bleu: float
    bleu_signature: str
    chrf: float
    chrf_signature: str
    bleu_lc: float  # lowercased BLEU
    bleu_lc_signature: str
    paper_bleu: Optional[float]  # Multi30k paper protocol (metric.paper_protocol), else None
    paper_signature: Optional[str]
    hyp_file: str
    ref_file: str
    decode: str  # "greedy" or "beam5"
    seconds: float  # decoding time only
    sentences_per_s: float
    tokens_per_s: float  # generated target subword tokens (EOS not counted) per second
    direction: Optional[str] = None  # a multilingual model's direction ("en-de"); None for a bilingual one

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def report(self) -> str:
        """Human-readable lines for the terminal."""
        name = self.name if self.direction is None else f"{self.direction} {self.name}"
        lines = [
            f"{name}: {self.sentences} sentences, {self.decode}, {self.seconds:.1f} s, "
            f"{self.sentences_per_s:.1f} sentences/s, {self.tokens_per_s:.0f} tokens/s",
            f"  BLEU       {self.bleu:6.2f}  {self.bleu_signature}",
            f"  chrF       {self.chrf:6.2f}  {self.chrf_signature}",
            f"  BLEU (lc)  {self.bleu_lc:6.2f}  {self.bleu_lc_signature}",
        ]
        if self.paper_bleu is not None:
            lines.append(f"  BLEU paper {self.paper_bleu:6.2f}  {self.paper_signature}")
        lines.append(f"  hypotheses: {self.hyp_file}")
        return "\n".join(lines)


def decode_tag(cfg: DecodeConfig, model=None) -> str:
    """Short name of the search, used in file names: greedy, beam5; -bf16 / -int8 when the model decodes so."""
    tag = "greedy" if cfg.strategy == Strategy.greedy else f"beam{cfg.beam_size}"
    if hasattr(model, "search"):  # an engine: -ct2, -ct2-int8, ...
        return tag + model.tag
    if model is not None and next(model.parameters()).dtype == torch.bfloat16:
        tag += "-bf16"
    if getattr(model, "int8", False):  # decode.precision=int8 (model/int8.py)
        tag += "-int8"
    return tag


def translate_texts(model, tokenizer, texts: Sequence[str], cfg: DecodeConfig, device,
                    progress: bool = False, src_prefix: Sequence[int] = ()) -> Tuple[List[str], float, int]:
    """Source sentences -> (detokenized best hypotheses, decoding seconds, generated tokens).

    ``src_prefix``: ids every source starts with (a multilingual model's target tag)."""
    src_ids = tokenizer.encode_src(list(texts)) if texts else []
    if src_prefix:
        src_ids = [list(src_prefix) + ids for ids in src_ids]
    start = time.perf_counter()
    if hasattr(model, "search"):  # an engine (rosettamt.engine): backend=ctranslate2
        results = model.search(src_ids, cfg, progress=progress)
    else:
        results = translate_ids(model, src_ids, cfg, device, progress=progress)
    seconds = time.perf_counter() - start
    best = [hyps[0].tokens for hyps in results]
    hyps = [tokenizer.detokenize(ids) for ids in best]
    return hyps, seconds, sum(len(ids) for ids in best)


def evaluate_texts(model, tokenizer, src: Sequence[str], refs: Sequence[str], name: str,
                   out_prefix: Path, decode: DecodeConfig, metric: MetricConfig, device,
                   tgt_lang: str, progress: bool = False, src_prefix: Sequence[int] = (),
                   direction: Optional[str] = None) -> EvalResult:
    """Decode src, write ``{out_prefix}.hyp`` / ``.ref`` / ``.json``, score against refs.

    Each file is written whole or not at all (temp file + rename): a stopped run leaves the old one.
    ``src_prefix`` / ``direction``: a multilingual model's target tag id and the direction's name.
    """
    hyps, seconds, tokens = translate_texts(model, tokenizer, src, decode, device, progress, src_prefix)
    refs = [r.rstrip() for r in refs]  # as the sacrebleu CLI reads a file
    hyp_file, ref_file = Path(f"{out_prefix}.hyp.{tgt_lang}"), Path(f"{out_prefix}.ref.{tgt_lang}")
    atomic_write_text(hyp_file, "".join(h + "\n" for h in hyps))
    atomic_write_text(ref_file, "".join(r + "\n" for r in refs))
    scores = score(hyps, refs, tgt_lang, metric.paper_protocol)
    seconds = max(seconds, 1e-9)
    result = EvalResult(name=name, sentences=len(hyps), hyp_file=str(hyp_file), ref_file=str(ref_file),
                        decode=decode_tag(decode, model), seconds=seconds, sentences_per_s=len(hyps) / seconds,
                        tokens_per_s=tokens / seconds, direction=direction, **scores)
    atomic_write_text(Path(f"{out_prefix}.scores.json"), json.dumps(result.to_dict(), indent=1) + "\n")
    return result


def evaluate(
    checkpoint: Optional[str | Path] = None,
    *,
    run_dir: Optional[str | Path] = None,
    splits: Sequence[str] = ("test_2016_flickr",),
    src_file: Optional[str | Path] = None,
    ref_file: Optional[str | Path] = None,
    data: Optional[DataConfig] = None,
    data_dir: Optional[str | Path] = None,
    data_overrides: Sequence[str] = (),
    decode: Optional[DecodeConfig] = None,
    metric: Optional[MetricConfig] = None,
    output_dir: Optional[str | Path] = None,
    device: Any = "auto",
    progress: bool = True,
    backend: str = "rosettamt",
    model_dir: Optional[str | Path] = None,
    ct2: Optional[CT2Config] = None,
    src_lang: Optional[str] = None,
    tgt_lang: Optional[str] = None,
) -> List[EvalResult]:
    """Score a checkpoint (or a run's best one) on corpus splits, or on a src_file/ref_file pair.

    The corpus comes from ``data`` (the caller's own config, used as given), or else from what
    the user names (``data_dir``, ``data_overrides``: ``key=value`` as typed after ``data.``)
    on top of the few safe fields of the checkpoint's stored config: a checkpoint never makes
    this read a path, fetch a URL or write a cache the user did not give (corpus_config.py).
    Files go to output_dir or next to the checkpoint: ``{ckpt}.{split}.{greedy|beamK}.hyp.{lang}``,
    ``.ref`` and ``.scores.json``; the folder is checked before any work is done.

    A multilingual checkpoint (its data.langs / data.pairs) is scored in the direction that
    ``src_lang`` / ``tgt_lang`` pick (rosettamt.langs.pick_direction), or, for corpus splits with
    neither given, in every direction it knows (files ``{ckpt}.{src-tgt}.{split}...``; a split a
    direction lacks, like Czech test_2017_flickr, is skipped with a log line). A bilingual
    checkpoint accepts only its own pair there.
    """
    decode, metric = decode or DecodeConfig(), metric or MetricConfig()
    if (src_file is None) != (ref_file is None):
        raise UserError("give both src_file= and ref_file= (or neither, to score corpus splits with split=)")
    ct2_backend = str(backend) == "ctranslate2"  # model_dir= is a CTranslate2 export, searched by CTranslate2
    if ct2_backend:
        from rosettamt.engine.ct2 import CT2Engine
        from rosettamt.engine.ct2_options import resolve_model_dir

        checkpoint = resolve_model_dir(checkpoint, run_dir, model_dir, decode)
    else:
        checkpoint = resolve_checkpoint(checkpoint, run_dir)
    out_dir = writable_dir(Path(output_dir) if output_dir is not None else checkpoint.parent,
                           "output_dir" if output_dir is not None else "output_dir (default: the checkpoint's folder)")
    dev = resolve_device(device)
    if ct2_backend:  # an engine and the export's rosettamt.json (its "config" holds the data config)
        ct2 = ct2 or CT2Config()
        model, tokenizer, ckpt = CT2Engine.load(checkpoint, str(device), ct2.compute_type, ct2.threads)
    else:
        model, tokenizer, ckpt = load_for_inference(checkpoint, dev, decode.precision)
    check_lengths(decode, int(model.cfg.max_positions))
    data, from_checkpoint = corpus_config(ckpt, checkpoint, data, data_dir, data_overrides)
    tag = decode_tag(decode, model)

    dirs = _directions(data, src_lang, tgt_lang)
    if src_file is not None:
        src_path, ref_path = Path(src_file), Path(ref_file)  # type: ignore[arg-type]
        src, refs = read_pair(src_path, ref_path)
        # src_file=<(...) is /dev/fd/63 or /proc/self/fd/63: a name that means nothing (a named FIFO's does)
        name = "src_file" if str(src_path).startswith(("/dev/", "/proc/")) else src_path.name
        if dirs is None:
            jobs = {name: (src, refs)}
        else:
            if len(dirs) > 1:  # a file pair is one direction: the model's default unless src_lang/tgt_lang say
                from rosettamt.langs import pick_direction

                dirs = [pick_direction(dirs, None, None, (data.src_lang, data.tgt_lang))]
            runs = [(dirs[0], dirs[0][1], {name: (src, refs)})]
    else:
        if dirs is None:
            jobs = read_splits(data, list(splits), checkpoint, from_checkpoint, override_keys(data_overrides))
        else:
            from rosettamt.data.multilingual import direction_config

            plain = data.files and not any("{src}" in f or "{tgt}" in f for fs in data.files.values() for f in fs)
            if len(dirs) > 1 and plain and not data.pair_files:
                raise UserError(f"data.files names one file pair, and this model translates {len(dirs)} directions: "
                                "choose one with src_lang= / tgt_lang=, or put {src} and {tgt} in the paths "
                                "(data.files.test=[test.{src},test.{tgt}]) to score them all")
            runs = []
            for d in dirs:
                ddata = direction_config(data, d, only=len(dirs) == 1)
                runs.append((d, d[1], read_splits(ddata, list(splits), checkpoint, from_checkpoint,
                                                  override_keys(data_overrides))))

    results = []
    if dirs is None:
        for name, (src, refs) in jobs.items():
            log.info("decoding %s (%d sentences, %s) with %s", name, len(src), tag, checkpoint)
            prefix = out_dir / f"{checkpoint.stem}.{name}.{tag}"
            results.append(evaluate_texts(model, tokenizer, src, refs, name, prefix, decode, metric, dev,
                                          data.tgt_lang, progress))
        return results
    from rosettamt.langs import pair_name

    for d, lang, jobs in runs:
        pair = pair_name(d)
        for name, (src, refs) in jobs.items():
            log.info("decoding %s %s (%d sentences, %s) with %s", pair, name, len(src), tag, checkpoint)
            prefix = out_dir / f"{checkpoint.stem}.{pair}.{name}.{tag}"
            results.append(evaluate_texts(model, tokenizer, src, refs, name, prefix, decode, metric, dev,
                                          lang, progress, src_prefix=[tokenizer.tag_id(lang)], direction=pair))
    return results


def _directions(data: DataConfig, src_lang: Optional[str], tgt_lang: Optional[str]):
    """The directions to score: None for a bilingual model (whose pair src_lang/tgt_lang must match),
    else those src_lang/tgt_lang pick from the model's (all of them when neither is given)."""
    from rosettamt import langs as L

    dirs = L.directions(data.langs, data.pairs)
    if dirs is None:
        for option, given, own in (("src_lang", src_lang, data.src_lang), ("tgt_lang", tgt_lang, data.tgt_lang)):
            if given is not None and given != own:
                raise UserError(f"{option}={given}: this model translates {data.src_lang}-{data.tgt_lang} only")
        return None
    if src_lang is None and tgt_lang is None:
        return dirs
    return [L.pick_direction(dirs, src_lang, tgt_lang, (data.src_lang, data.tgt_lang))]


def evaluate_splits(checkpoint: str | Path, data: Optional[DataConfig], splits: Sequence[str],
                    decode: Optional[DecodeConfig] = None, metric: Optional[MetricConfig] = None,
                    device: Any = "auto", output_dir: Optional[str | Path] = None,
                    progress: bool = False) -> Dict[str, Dict[str, Any]]:
    """The trainer's end-of-run call: {split: EvalResult as a plain dict} for a checkpoint's test splits."""
    results = evaluate(checkpoint, splits=splits, data=data, decode=decode, metric=metric,
                       output_dir=output_dir, device=device, progress=progress)
    return {r.name: r.to_dict() for r in results}


def evaluate_directions(checkpoint: str | Path, data: DataConfig, splits: Sequence[str],
                        decode: Optional[DecodeConfig] = None, metric: Optional[MetricConfig] = None,
                        device: Any = "auto", output_dir: Optional[str | Path] = None,
                        progress: bool = False) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """The trainer's end-of-run call for a multilingual run: {direction: {split: scores}}, every
    direction of ``data`` on each of ``splits`` it has."""
    results = evaluate(checkpoint, splits=splits, data=data, decode=decode, metric=metric,
                       output_dir=output_dir, device=device, progress=progress)
    out: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for r in results:
        out.setdefault(str(r.direction), {})[r.name] = r.to_dict()
    return out

