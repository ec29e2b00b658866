"""sacreBLEU scores with their signatures, and the Multi30k papers' protocol.

BLEU (cased, 13a), chrF and lowercased BLEU are sacreBLEU's own, so ``sacrebleu REF -i HYP``
on the same lines gives the same numbers. The paper protocol (``metric.paper_protocol``) is
what Multi30k papers report: both sides lowercased, Moses punctuation normalisation and
tokenisation (with escaping), then BLEU without further tokenisation. It is labelled as such
and is not comparable with sacreBLEU's default BLEU.
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence

from sacrebleu.metrics import BLEU, CHRF

from rosettamt.errors import UserError

PAPER_LABEL = "multi30k-paper:lowercase+moses-normalize-punct+moses-tokenize(escape)"


def paper_tokenize(lines: Sequence[str], lang: str) -> List[str]:
    """The Multi30k evaluation pipeline: lowercase | normalize-punctuation.perl | tokenizer.perl (escaping)."""
    try:
        from sacremoses import MosesPunctNormalizer, MosesTokenizer
    except ImportError:
        raise UserError("metric.paper_protocol=true needs sacremoses: pip install sacremoses") from None
    normalizer, tokenizer = MosesPunctNormalizer(lang=lang), MosesTokenizer(lang=lang)
    return [tokenizer.tokenize(normalizer.normalize(line.lower()), escape=True, return_str=True) for line in lines]


def score(hyps: Sequence[str], refs: Sequence[str], tgt_lang: str = "en",
          paper_protocol: bool = False) -> Dict[str, Any]:
    """sacreBLEU BLEU (cased, 13a), chrF and lowercased BLEU with signatures; optionally the paper BLEU."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references")
    if not refs:  # callers say which file or split was empty (inputs.read_pair); sacrebleu would fail obscurely
        raise ValueError("no lines to score")
    hyps, refs = list(hyps), list(refs)
    out: Dict[str, Any] = {}
    for key, metric in (("bleu", BLEU()), ("chrf", CHRF()), ("bleu_lc", BLEU(lowercase=True))):
        out[key] = metric.corpus_score(hyps, [refs]).score
        out[f"{key}_signature"] = str(metric.get_signature())
    out["paper_bleu"] = out["paper_signature"] = None
    if paper_protocol:
        bleu = BLEU(tokenize="none", force=True)  # tokenized on purpose: no "forgot to detokenize" warning
        out["paper_bleu"] = bleu.corpus_score(paper_tokenize(hyps, tgt_lang), [paper_tokenize(refs, tgt_lang)]).score
        out["paper_signature"] = f"{PAPER_LABEL}|lang:{tgt_lang}|{bleu.get_signature()}"
    return out
