#!/usr/bin/env python
"""OpenNMT-py 3.5.1 beside rosettamt: training tokens/s of the same model, in one sitting.

    python scripts/bench_onmt.py                                # install if needed, then both runs
    python scripts/bench_onmt.py --install-only                 # just the virtual environment
    python scripts/bench_onmt.py --precision bf16               # rosettamt's side in bf16 (OpenNMT-py fp32)
    python scripts/bench_onmt.py --onmt-steps 40 --skip-rosettamt   # a quick check of the OpenNMT-py side

OpenNMT-py lives in its own virtual environment (``--venv``, default ``.venv-onmt`` at the
repository root, git-ignored), made on first use with: ``pip install torch==2.13.0``, then
``pip install --no-deps OpenNMT-py==3.5.1`` and its requirements by hand (OpenNMT-py 3.5.1
pins torch<2.3; the same torch as rosettamt's keeps the comparison about the trainers).

Both sides train model ``small``: 3+3 layers, hidden 256, 4 heads, FFN 1024, pre-norm, shared
embeddings (tied with the output layer), dropout 0.1, label smoothing 0.1, clipping at 1.0, Adam
(betas 0.9/0.98) + noam warmup, 4,096-token batches (``batch_type: tokens``), 2 threads, on
Multi30k en-de through the same joint 8k SentencePiece model (rosettamt's, from its tokenizer
cache; OpenNMT-py applies it with its ``sentencepiece`` transform). rosettamt runs first
(``scripts/bench_train.py``, which also prepares that tokenizer), then OpenNMT-py for
``--onmt-steps`` steps; its target tokens/s is read from its log lines over steps 21-80
(``report_every: 20``: three windows of 20 steps; the harmonic mean of the windows' rates, since
each window has about the same number of tokens). rosettamt's figure is bench_train.py's over
its timed steps after 20 untimed ones. The JSON (``--json``) holds both records and the ratio.
Timings on a shared machine are noisy: only the ratio from one sitting on a quiet machine counts.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
ONMT_REQUIREMENTS = ["configargparse", "ctranslate2", "pyonmttok", "pyyaml", "sacrebleu", "rapidfuzz",
                     "pyahocorasick", "six", "tensorboard", "sentencepiece", "spacy", "fasttext-wheel"]
STEP_LINE = re.compile(r"Step\s+(\d+)/\s*\d+;.*?([\d.]+)/\s*([\d.]+) tok/s;\s*([\d.]+) sec")


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def install(venv: Path, log: Path) -> None:
    """Create the virtual environment and install OpenNMT-py 3.5.1 into it (skipped when present)."""
    if (venv / "bin" / "onmt_train").exists():
        return
    print(f"installing OpenNMT-py 3.5.1 into {venv} (log: {log}) ...", flush=True)
    pip = [str(venv_python(venv)), "-m", "pip", "install"]
    steps = [[sys.executable, "-m", "venv", str(venv)], pip + ["torch==2.13.0"],
             pip + ["--no-deps", "OpenNMT-py==3.5.1"], pip + ONMT_REQUIREMENTS]
    with log.open("a", encoding="utf-8") as out:
        for cmd in steps:
            if subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
                sys.exit(f"bench_onmt: failed: {' '.join(cmd)} (see {log})")


def find_tokenizer(cache_dir: Path, src: str, tgt: str, vocab_size: int) -> Path:
    """rosettamt's joint SentencePiece model for this pair and size, from its tokenizer cache."""
    for meta_path in sorted((cache_dir / "tokenizers").glob("*/meta.json")):
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if (meta.get("joint") and meta.get("vocab_size") == vocab_size and not meta.get("tags")
                and {meta.get("src_lang"), meta.get("tgt_lang")} == {src, tgt}
                and (meta_path.parent / "joint.model").exists()):
            return meta_path.parent / "joint.model"
    sys.exit(f"bench_onmt: no joint {vocab_size} tokenizer for {src}-{tgt} under {cache_dir}/tokenizers; "
             "run scripts/bench_train.py once (or drop --skip-rosettamt)")


def write_vocab(spm_model: Path, path: Path) -> int:
    """OpenNMT-py's shared vocabulary: the SentencePiece pieces (its own specials are added by it)."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(spm_model))
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())
              if not (sp.is_control(i) or sp.is_unknown(i))]
    path.write_text("".join(f"{p}\t{len(pieces) - i}\n" for i, p in enumerate(pieces)), encoding="utf-8")
    return len(pieces)


def write_text(src_gz: Path, dst: Path) -> None:
    with gzip.open(src_gz, "rt", encoding="utf-8") as f:
        dst.write_text(f.read(), encoding="utf-8")


def _shown(path: Path) -> str:
    """``path`` relative to the repository when it is inside it (no machine paths in results)."""
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return path.name


def onmt_config(work: Path, spm_model: Path, args: argparse.Namespace) -> str:
    w = work.as_posix()
    return f"""# written by scripts/bench_onmt.py: model 'small' as rosettamt builds it
save_data: {w}/run
src_vocab: {w}/vocab.txt
share_vocab: true
src_subword_model: {spm_model.as_posix()}
tgt_subword_model: {spm_model.as_posix()}
src_seq_length: 256
tgt_seq_length: 256
data:
  corpus_1:
    path_src: {w}/train.{args.src}
    path_tgt: {w}/train.{args.tgt}
    transforms: [sentencepiece, filtertoolong]
  valid:
    path_src: {w}/val.{args.src}
    path_tgt: {w}/val.{args.tgt}
    transforms: [sentencepiece, filtertoolong]
save_model: {w}/model
save_checkpoint_steps: 1000000
valid_steps: 1000000
train_steps: {args.onmt_steps}
report_every: 20
log_file: {w}/train.log
seed: {args.seed}
num_workers: {args.onmt_workers}
model_dtype: fp32
encoder_type: transformer
decoder_type: transformer
enc_layers: 3
dec_layers: 3
hidden_size: 256
word_vec_size: 256
transformer_ff: 1024
heads: 4
position_encoding: true
share_embeddings: true
share_decoder_embeddings: true
layer_norm: standard
dropout: [0.1]
attention_dropout: [0.0]
param_init: 0.0
param_init_glorot: true
optim: adam
adam_beta1: 0.9
adam_beta2: 0.98
decay_method: noam
learning_rate: 2.0
warmup_steps: 4000
max_grad_norm: 1.0
label_smoothing: 0.1
batch_type: tokens
batch_size: {args.max_tokens}
valid_batch_size: {args.max_tokens}
accum_count: [1]
normalization: tokens
"""


def parse_log(text: str, first: int, last: int) -> Dict[str, Any]:
    """Target tokens/s over steps first..last from OpenNMT-py's 'Step N/M; ... src/tgt tok/s' lines."""
    windows = {int(m.group(1)): float(m.group(3)) for m in STEP_LINE.finditer(text)}  # step -> rate (deduplicated)
    inside = sorted((step, rate) for step, rate in windows.items() if first < step <= last)
    if not inside:
        sys.exit(f"bench_onmt: no OpenNMT-py log line for steps {first + 1}-{last}; see its log")
    rates = [rate for _, rate in inside]
    return {"windows": [{"step": s, "tgt_tok_per_s": r} for s, r in inside],
            "tgt_tok_per_s": len(rates) / sum(1.0 / r for r in rates)}


def run_onmt(args: argparse.Namespace, spm_model: Path) -> Dict[str, Any]:
    work = Path(args.work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    data = Path(args.data_dir)
    for split in ("train", "val"):
        for lang in (args.src, args.tgt):
            write_text(data / f"{split}.{lang}.gz", work / f"{split}.{lang}")
    n_pieces = write_vocab(spm_model, work / "vocab.txt")
    config = work / "config.yaml"
    config.write_text(onmt_config(work, spm_model, args), encoding="utf-8")
    (work / "train.log").unlink(missing_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    start = time.perf_counter()
    proc = subprocess.run([str(Path(args.venv) / "bin" / "onmt_train"), "-config", str(config)], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    (work / "stdout.log").write_text(proc.stdout, encoding="utf-8")
    if proc.returncode != 0:
        sys.exit(f"bench_onmt: onmt_train failed (exit {proc.returncode}); see {work / 'stdout.log'}")
    # the step lines go to stdout (and, depending on the logger's setup, to log_file): read both
    log_text = proc.stdout + ((work / "train.log").read_text(encoding="utf-8") if (work / "train.log").exists() else "")
    result = parse_log(log_text, 20, 80)
    result.update(steps=args.onmt_steps, threads=args.threads, workers=args.onmt_workers, vocab_pieces=n_pieces,
                  wall_s=time.perf_counter() - start, version="OpenNMT-py 3.5.1", config=_shown(config))
    return result


def run_rosettamt(args: argparse.Namespace) -> Dict[str, Any]:
    out = Path(args.work_dir).resolve() / "rosettamt.json"
    cmd = [sys.executable, str(REPO / "scripts" / "bench_train.py"), "--model", "small", "--vocab-size",
           str(args.vocab_size), "--max-tokens", str(args.max_tokens), "--threads", str(args.threads),
           "--steps", str(args.rosettamt_steps), "--warmup", str(args.rosettamt_warmup), "--data-dir", args.data_dir,
           "--cache-dir", args.cache_dir, "--src", args.src, "--tgt", args.tgt, "--device", "cpu",
           "--precision", args.precision, "--json", str(out), *args.overrides]
    out.parent.mkdir(parents=True, exist_ok=True)
    if subprocess.run(cmd).returncode != 0:
        sys.exit("bench_onmt: scripts/bench_train.py failed")
    return json.loads(out.read_text(encoding="utf-8"))


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs="*", help="extra Hydra overrides for rosettamt's side (key=value)")
    p.add_argument("--venv", default=str(REPO / ".venv-onmt"), help="OpenNMT-py's virtual environment")
    p.add_argument("--work-dir", default=str(REPO / "outputs" / "bench_onmt"), help="data, config and logs")
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "multi30k"))
    p.add_argument("--cache-dir", default=str(REPO / "data" / "cache"), help="rosettamt's tokenizer cache")
    p.add_argument("--src", default="en")
    p.add_argument("--tgt", default="de")
    p.add_argument("--vocab-size", type=int, default=8000)
    p.add_argument("--max-tokens", type=int, default=4096)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--onmt-steps", type=int, default=80, help="OpenNMT-py steps (rate read over 21-80)")
    p.add_argument("--onmt-workers", type=int, default=0,
                   help="OpenNMT-py data-loader processes (0: in the training process, as rosettamt)")
    p.add_argument("--rosettamt-steps", type=int, default=60, help="timed steps after 20 untimed")
    p.add_argument("--rosettamt-warmup", type=int, default=20, help="untimed steps first")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16"), help="rosettamt's side")
    p.add_argument("--skip-rosettamt", action="store_true")
    p.add_argument("--install-only", action="store_true")
    p.add_argument("--json", default=str(REPO / "scripts" / "results" / "bench_onmt_small_cpu.json"))
    args = p.parse_args(argv)

    venv = Path(args.venv).resolve()
    install(venv, Path(args.work_dir).resolve().parent / "bench_onmt_install.log")
    if args.install_only:
        return
    record: Dict[str, Any] = {"setting": dict(model="small", vocab_size=args.vocab_size, max_tokens=args.max_tokens,
                                              threads=args.threads, pair=f"{args.src}-{args.tgt}", device="cpu"),
                              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if not args.skip_rosettamt:
        record["rosettamt"] = run_rosettamt(args)
    spm_model = find_tokenizer(Path(args.cache_dir), args.src, args.tgt, args.vocab_size)
    record["onmt"] = run_onmt(args, spm_model)
    onmt_rate = record["onmt"]["tgt_tok_per_s"]
    print(f"OpenNMT-py 3.5.1: {onmt_rate:,.0f} target tokens/s (steps 21-80)")
    if "rosettamt" in record:
        ours = record["rosettamt"]["tgt_tok_per_s"]
        record["ratio"] = ours / onmt_rate
        print(f"rosettamt {record['rosettamt']['precision']}: {ours:,.0f} target tokens/s; "
              f"ratio {record['ratio']:.2f}x")
    Path(args.json).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
