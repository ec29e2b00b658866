"""The model card (README.md) of an export: what the model is, how it was trained, its scores, how to run it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from rosettamt.export.common import Source
from rosettamt.export.hf import CLASSES


def run_scores(run_dir: Optional[Path]) -> List[Dict[str, Any]]:
    """The test scores a training run left beside its checkpoints (``*.scores.json``), if any."""
    if run_dir is None or not Path(run_dir).is_dir():
        return []
    scores = []
    for path in sorted(Path(run_dir).rglob("*.scores.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and "bleu" in data:
            scores.append({"file": path.name, **{k: data.get(k) for k in ("name", "sentences", "decode", "bleu",
                                                                          "chrf", "bleu_signature")}})
    return scores


def _training_lines(config: Dict[str, Any]) -> List[str]:
    data, model, optim = config.get("data") or {}, config.get("model") or {}, config.get("optim") or {}
    tok, trainer = config.get("tokenizer") or {}, config.get("trainer") or {}
    lines = [f"- data: source `{data.get('source')}`" + (f", hub `{data.get('hub_name')}`" if data.get("hub_name") else "")
             + f", {data.get('src_lang')} -> {data.get('tgt_lang')}, train split `{data.get('train_split')}`"]
    lines.append(f"- tokenizer: SentencePiece {tok.get('type')}, vocabulary {tok.get('vocab_size')}, "
                 f"{'joint' if tok.get('joint') else 'separate'}")
    keys = ("d_model", "encoder_layers", "decoder_layers", "n_heads", "d_ff", "norm", "positions", "activation",
            "scale_embedding", "tie_output", "tie_all", "dropout")
    lines.append("- model: " + ", ".join(f"{k}={model.get(k)}" for k in keys if k in model))
    lines.append(f"- optimiser: {optim.get('name')}, lr {optim.get('lr')}, {optim.get('schedule')} schedule, "
                 f"warmup {optim.get('warmup_steps')}, label smoothing {optim.get('label_smoothing')}; "
                 f"batches of {trainer.get('max_tokens')} tokens")
    return lines


def model_card(source: Source, arch: str, generation: Any, caveat: Optional[str], run_dir: Optional[Path]) -> str:
    """README.md of a Hugging Face export."""
    src_lang, tgt_lang = source.langs
    config = source.ckpt.get("config") or {}
    lines = [
        "---", f"language: [{src_lang}, {tgt_lang}]", "library_name: transformers", "pipeline_tag: translation",
        "tags: [rosettamt, translation]", "---", "",
        f"# rosettamt {src_lang} -> {tgt_lang} ({arch} architecture)", "",
        f"A Transformer translation model trained with rosettamt, exported from `{source.path.name}` "
        f"(step {source.ckpt.get('step')}, validation BLEU {source.ckpt.get('val_bleu')}). It is a stock "
        f"transformers `{CLASSES[arch][1]}`, loaded without custom code.",
        "", "```python", "from transformers import AutoModelForSeq2SeqLM, AutoTokenizer", "",
        "tok = AutoTokenizer.from_pretrained(DIR)", "model = AutoModelForSeq2SeqLM.from_pretrained(DIR)",
        'batch = tok(["A sentence to translate."], return_tensors="pt", padding=True)',
        "print(tok.batch_decode(model.generate(**batch), skip_special_tokens=True))", "```", "",
        "## Decoding", "",
        "`generation_config.json` repeats rosettamt-translate's search: " + (
            f"beam search with {generation.num_beams} beams, length_penalty {generation.length_penalty} (length "
            "counted with EOS), early_stopping=true (a sentence ends with that many finished hypotheses)"
            if generation.num_beams > 1 else "greedy search (for beam search pass num_beams=K, early_stopping=True)")
        + f"; PAD and BOS are never generated, at least {generation.min_length - 1} token(s) come before EOS, "
        f"and EOS is forced at max_length {generation.max_length}.",
        "rosettamt also caps each output at floor(max_len_a * source length + max_len_b) tokens "
        "(source length with EOS); generate() has one max_length for the batch.",
    ]
    if caveat:
        lines += ["", f"Note: {caveat}."]
    if config:
        lines += ["", "## Training", ""] + _training_lines(config)
    scores = run_scores(run_dir)
    if scores:
        lines += ["", "## Scores (rosettamt-evaluate on the training run)", "", "| split | decode | sentences | BLEU | chrF |",
                  "| --- | --- | --- | --- | --- |"]
        lines += [f"| {s['name']} | {s['decode']} | {s['sentences']} | {s['bleu']:.2f} | {s['chrf']:.2f} |"
                  for s in scores if isinstance(s.get("bleu"), (int, float)) and isinstance(s.get("chrf"), (int, float))]
        signature = next((s["bleu_signature"] for s in scores if s.get("bleu_signature")), None)
        if signature:
            lines += ["", f"BLEU signature: `{signature}`"]
    return "\n".join(lines) + "\n"
