"""rosettamt's decode options as CTranslate2's translate_batch options, or why they cannot be.

Where CTranslate2's search and rosettamt's (search/beam.py) agree:
  * candidates: both take each sentence's best 2k extensions; EOS among the best k ends a
    hypothesis, the best k others continue.
  * when a sentence is done: rosettamt stops at k finished hypotheses (or when none can still
    win). CTranslate2 does the same whenever a length penalty is set; with none it stops as soon
    as the best beam ends. So length_norm=none is passed as a length penalty of 1e-30: every
    length**1e-30 is 1.0 in float32, the scores stay the raw log-probs, and the k-finished rule holds.
  * length normalisation: CTranslate2 divides by length**length_penalty. With return_end_token the
    length counts EOS, as rosettamt's L does: average == length_penalty 1. GNMT's ((5 + L) / 6)**alpha
    has no CTranslate2 form and is refused for beam search.
  * min_len: EOS is disabled for the first min_len steps in both.
  * PAD and BOS are never produced (suppress_sequences).
Where they differ (the exports' tests and scripts/export_check.py measure it): CTranslate2
masks EOS/PAD/BOS before its log-softmax, rosettamt after (scores differ by the probability
those tokens had, tiny for a trained model); at the length limit rosettamt forces EOS while
CTranslate2 keeps the best candidates as they are (greedy outputs are cut to the same tokens).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

from rosettamt.config import DecodeConfig, LengthNorm, Strategy, resolve_decode
from rosettamt.errors import UserError

NO_PENALTY = 1e-30  # see above: a non-zero penalty that changes no score


def length_penalty(cfg: DecodeConfig) -> float:
    """CTranslate2's length_penalty for cfg's beam search (UserError for GNMT)."""
    if cfg.length_norm == LengthNorm.none or (cfg.length_norm == LengthNorm.gnmt and cfg.length_penalty == 0):
        return NO_PENALTY
    if cfg.length_norm == LengthNorm.average:
        return 1.0
    other = ", or decode=greedy" if cfg.nbest <= 1 else f" (nbest={cfg.nbest} searches with a beam of {cfg.beam_size})"
    raise UserError(f"backend=ctranslate2 has no GNMT length penalty (decode.length_norm={cfg.length_norm}, "
                    f"((5+L)/6)**alpha); use decode.length_norm=average or none{other}")


def translate_options(cfg: DecodeConfig, pad: str, bos: str) -> Dict[str, Any]:
    """Keyword arguments for ctranslate2.Translator.translate_batch (max_decoding_length is per batch)."""
    beam = cfg.beam_size if cfg.strategy == Strategy.beam else 1
    return dict(beam_size=beam, num_hypotheses=min(cfg.nbest, beam), patience=1.0,
                length_penalty=length_penalty(cfg) if beam > 1 else 0.0,
                min_decoding_length=cfg.min_len, return_end_token=True, return_scores=True,
                suppress_sequences=[[pad], [bos]], disable_unk=False, replace_unknowns=False)


def resolve_model_dir(checkpoint: Any, run_dir: Any, model_dir: Any, decode: DecodeConfig) -> Path:
    """backend=ctranslate2's model: model_dir= alone (an export folder), with decode options CTranslate2
    can run; checked before anything loads."""
    if model_dir is None or checkpoint is not None or run_dir is not None:
        raise UserError("backend=ctranslate2 runs an export: give model_dir=DIR (from rosettamt-export "
                        "format=ctranslate2) and neither checkpoint= nor run_dir=")
    if resolve_decode(decode).beam_size > 1:
        length_penalty(decode)  # GNMT is refused here
    return Path(model_dir).expanduser()
