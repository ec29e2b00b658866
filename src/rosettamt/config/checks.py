"""Range checks of option values that a type cannot express (a beam of 0, a dropout of 2, a
port past 65535), made before any work starts and named by option, and :func:`resolve_decode`,
the one place per-call decoding changes meet the configured ones."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, Optional

from rosettamt.config.commands import ServeAppConfig
from rosettamt.config.choices import Select, Strategy
from rosettamt.config.groups import MAX_POSITIONS, DataConfig, DecodeConfig, TokenizerConfig, TrainConfig, TrainerConfig
from rosettamt.errors import UserError


# ---------------------------------------------------------------------------- decode options


# A beam (or n-best list) wider than this is an allocation of gigabytes per step, not a search.
MAX_BEAM = 1000


def check_decode(cfg: DecodeConfig, prefix: str = "decode.") -> None:
    """Reject settings no search can run with, naming the option (they come from the command line)."""
    for name, value, low in (("beam_size", cfg.beam_size, 1), ("nbest", cfg.nbest, 1),
                             ("max_tokens", cfg.max_tokens, 1), ("min_len", cfg.min_len, 0),
                             ("max_len_a", cfg.max_len_a, 0), ("max_len_b", cfg.max_len_b, 0)):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise UserError(f"{prefix}{name}={value!r}: expected a number")
        if not _finite(value) or value < low:
            raise UserError(f"{prefix}{name}={value} must be a finite number >= {low}")
        if name in ("beam_size", "nbest") and value > MAX_BEAM:
            raise UserError(f"{prefix}{name}={value} must be at most {MAX_BEAM}")
    if not isinstance(cfg.length_penalty, (int, float)) or not math.isfinite(cfg.length_penalty):
        raise UserError(f"{prefix}length_penalty={cfg.length_penalty!r} must be a finite number")


def _finite(value: Any) -> bool:
    """A Python int is always finite (math.isfinite overflows on one past float's range)."""
    return isinstance(value, int) or math.isfinite(value)


def _check_ranges(prefix: str, obj: Any, rules: Dict[str, tuple]) -> None:
    """rules: field -> (low, high, low_inclusive, high_inclusive); None = unbounded. Non-finite fails."""
    for name, (low, high, low_in, high_in) in rules.items():
        value = getattr(obj, name)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and _finite(value)
        ok = ok and (low is None or value > low or (low_in and value == low))
        ok = ok and (high is None or value < high or (high_in and value == high))
        if not ok:
            lo = "" if low is None else ("[" if low_in else "(") + f"{low}"
            hi = "" if high is None else f"{high}" + ("]" if high_in else ")")
            where = f"in {lo}, {hi}" if low is not None and high is not None else (
                f">{'=' if low_in else ''} {low}" if low is not None else f"<{'=' if high_in else ''} {high}")
            raise UserError(f"{prefix}{name}={value} must be {where}")


def check_selection(tc: TrainerConfig) -> None:
    """trainer.average_best / trainer.select: the averages asked for can be made, a fixed pick is computed."""
    if tc.average_best < 0 or tc.average_best == 1 or tc.average_best > max(tc.keep_best, 0):
        raise UserError(f"trainer.average_best={tc.average_best} must be 0 (off) or 2..trainer.keep_best "
                        f"(={tc.keep_best}): only the best keep_best checkpoints are kept")
    if tc.select in (Select.average_last, Select.average_best) and getattr(tc, tc.select.value) < 2:
        raise UserError(f"trainer.select={tc.select.value} needs trainer.{tc.select.value} >= 2 "
                        f"(it is {getattr(tc, tc.select.value)})")


def check_train(cfg: "TrainConfig") -> None:
    """Every number of a training config in its range, before any data is prepared or step taken
    (decode.* too: the run ends by decoding the test splits with them)."""
    _check_ranges("optim.", cfg.optim, {
        "lr": (0.0, None, True, False), "eps": (0.0, None, False, False),
        "weight_decay": (0.0, None, True, False), "min_lr": (0.0, None, True, False),
        "clip_norm": (0.0, None, True, False), "accum_steps": (1, None, True, False),
        "label_smoothing": (0.0, 1.0, True, False), "warmup_steps": (0, None, True, False)})
    if len(cfg.optim.betas) != 2 or not all(isinstance(b, (int, float)) and 0.0 <= b < 1.0 for b in cfg.optim.betas):
        raise UserError(f"optim.betas={list(cfg.optim.betas)} must be two numbers in [0, 1)")
    _check_ranges("model.", cfg.model, {name: (0.0, 1.0, True, False)
                                        for name in ("dropout", "attn_dropout", "act_dropout")})
    _check_ranges("model.", cfg.model, {"max_positions": (1, MAX_POSITIONS, True, True)})
    # counters where 0 (or less) means "off" keep that meaning; these have no "off"
    _check_ranges("trainer.", cfg.trainer, {"max_tokens": (1, None, True, False), "log_every": (1, None, True, False),
                                            "rdrop_alpha": (0.0, None, True, False),
                                            "max_time": (0.0, None, True, False)})  # 0 = no time limit
    _check_ranges("", cfg, {"seed": (0, MAX_RUN_SEED, True, True)})
    check_tokenizer(cfg.tokenizer)
    check_selection(cfg.trainer)
    if cfg.trainer.max_steps <= 0 and cfg.trainer.max_epochs <= 0 and cfg.trainer.max_time <= 0:
        raise UserError("no stop condition: set trainer.max_steps, trainer.max_epochs or trainer.max_time")
    check_decode(cfg.decode)
    check_directions(cfg.data, cfg.tokenizer)
    from rosettamt.checkpoint.names import check_data_names

    check_data_names(cfg.data)  # what the checkpoints' users will refuse, refused now


def check_tokenizer(tok: TokenizerConfig) -> None:
    """The SentencePiece settings in range before any data work (its own messages name no option)."""
    _check_ranges("tokenizer.", tok, {"vocab_size": (1, None, True, False),
                                      "character_coverage": (0.0, 1.0, False, True),
                                      "input_sentence_size": (0, None, True, False),
                                      "seed": (0, MAX_SEED, True, True)})


MAX_SEED = 2**32 - 1  # tokenizer.seed: SentencePiece's seed is a 32-bit number
MAX_RUN_SEED = 2**63 - 1  # seed: torch.manual_seed takes 64 bits, and the ranks' seed + rank must fit


def check_directions(data: DataConfig, tokenizer: Optional[TokenizerConfig] = None) -> Any:
    """The directions of a multilingual data config (data.langs / data.pairs), checked; None if bilingual.

    A multilingual config needs one joint tokenizer and a positive sampling temperature. Its
    default direction is data.src_lang -> data.tgt_lang when that is one of its directions, else
    the first direction (``data`` is updated, so the stored config names it).
    """
    from rosettamt import langs as L

    dirs = L.directions(data.langs, data.pairs)
    if dirs is None:
        if data.pair_files:
            raise UserError("data.pair_files is for multilingual runs: set data.langs or data.pairs too")
        return None
    _check_ranges("data.", data, {"sampling_temperature": (0.0, None, False, False)})
    if tokenizer is not None and not tokenizer.joint:
        raise UserError("a multilingual run (data.langs / data.pairs) needs one joint tokenizer: "
                        "tokenizer.joint=true")
    if (data.src_lang, data.tgt_lang) not in dirs:
        data.src_lang, data.tgt_lang = dirs[0]
    names = {L.pair_name(d) for d in dirs}
    unknown = sorted(set(data.pair_files) - names)
    if unknown:
        raise UserError(f"data.pair_files has direction(s) {', '.join(unknown)} that are not trained "
                        f"(directions: {', '.join(sorted(names))})")
    return dirs


MAX_WAIT_MS = 60000  # serve.max_wait_ms: a batch waits at most a minute for company
MAX_REQUEST_TIMEOUT = 3600  # serve.request_timeout: an hour (also what a stop waits for requests in flight)


def check_serve(cfg: "ServeAppConfig") -> None:
    """rosettamt-serve's options in their ranges before the model loads (errors name the option)."""
    s = cfg.serve
    _check_ranges("serve.", s, {
        "port": (0, 65535, True, True), "max_chars": (1, None, True, False),
        "max_sentences": (1, None, True, False), "max_batch_tokens": (1, None, True, False),
        "max_wait_ms": (0, MAX_WAIT_MS, True, True), "queue_size": (1, None, True, False),
        "request_timeout": (0, MAX_REQUEST_TIMEOUT, False, True), "max_beam_size": (1, MAX_BEAM, True, True),
        "max_nbest": (1, MAX_BEAM, True, True), "min_length_penalty": (None, s.max_length_penalty, False, True),
        "max_length_penalty": (s.min_length_penalty, None, True, False), "threads": (0, None, True, False)})
    if s.queue_size < s.max_sentences:
        raise UserError(f"serve.queue_size={s.queue_size} must hold one full request "
                        f"(serve.max_sentences={s.max_sentences})")
    if any(not isinstance(k, str) or not k for k in s.api_keys):
        raise UserError("serve.api_keys: every key must be a non-empty string")
    check_decode(cfg.decode)
    default = resolve_decode(cfg.decode)
    if default.beam_size > s.max_beam_size or default.nbest > s.max_nbest:
        raise UserError(f"decode: a beam of {default.beam_size} with nbest={default.nbest} is outside "
                        f"serve.max_beam_size={s.max_beam_size} / serve.max_nbest={s.max_nbest}")
    if not s.min_length_penalty <= default.length_penalty <= s.max_length_penalty:
        raise UserError(f"decode.length_penalty={default.length_penalty} is outside [serve.min_length_penalty, "
                        f"serve.max_length_penalty] = [{s.min_length_penalty}, {s.max_length_penalty}]")


def resolve_decode(cfg: DecodeConfig, beam_size: Optional[int] = None, nbest: Optional[int] = None,
                   strategy: Any = None, **overrides: Any) -> DecodeConfig:
    """``cfg`` with per-call changes, normalised and checked: the one place decode options meet.

    A beam_size > 1 means beam search, and n-best needs a beam at least n wide, so ``nbest=3``
    alone widens a greedy or narrower search to a beam of 3. Only an explicit
    ``strategy="greedy"`` pins the beam to 1 (and then refuses nbest > 1). The result has
    ``strategy == beam`` exactly when ``beam_size > 1``.
    """
    if strategy is not None:
        try:
            strategy = Strategy(str(strategy))
        except ValueError:
            raise UserError(f"strategy={strategy}: use greedy or beam") from None
    nbest = cfg.nbest if nbest is None else nbest
    if isinstance(nbest, bool) or not isinstance(nbest, int) or not 1 <= nbest <= MAX_BEAM:
        raise UserError(f"nbest={nbest!r}: must be a whole number in [1, {MAX_BEAM}]")
    if strategy == Strategy.greedy:
        if nbest > 1:
            raise UserError(f"nbest={nbest} needs beam search, not greedy")
        beam = 1
    elif beam_size is not None:
        beam = beam_size
    elif strategy is None and cfg.strategy == Strategy.greedy:
        beam = 1
    else:
        beam = cfg.beam_size
    if isinstance(beam, bool) or not isinstance(beam, int) or beam < 1:
        raise UserError(f"beam_size={beam!r}: must be a whole number >= 1")
    beam = max(beam, nbest)
    strategy = Strategy.beam if beam > 1 else Strategy.greedy
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(DecodeConfig)})
    if unknown:
        raise UserError(f"unknown decoding option(s): {', '.join(unknown)}")
    out = dataclasses.replace(cfg, strategy=strategy, beam_size=beam, nbest=nbest, **overrides)
    check_decode(out, prefix="")
    return out
