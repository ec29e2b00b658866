#!/usr/bin/env python
"""Training throughput of rosettamt's own training step (the trainer's code, not a copy of it).

    python scripts/bench_train.py                                   # model=small, 8k joint BPE, 4096-token batches
    python scripts/bench_train.py --model base --steps 100 --json bench.json
    python scripts/bench_train.py --naive-loss --no-fused-optim     # ablations (combine freely)
    python scripts/bench_train.py --random-batches                  # no length bucketing: what padding costs
    python scripts/bench_train.py --device cuda --precision bf16 --compile
    python scripts/bench_train.py --precision bf16                  # CPU: bf16 weight copies (trainer.bf16_weights)
    python scripts/bench_train.py --precision bf16 trainer.bf16_weights=false   # CPU: bf16 autocast instead
    python scripts/bench_train.py --model tiny --steps 3 --warmup 1 --vocab-size 1000   # smoke test

The run is built by ``rosettamt.train.loop.Trainer`` itself from the packaged Hydra configs
(``model=<preset>``; extra positional arguments are further Hydra overrides of configs/train.yaml,
e.g. ``optim.clip_norm=0``): the same data preparation (tokenizer and id caches under
``--cache-dir``, shared with training), model, AdamW + schedule, token-bucketed sampler and
``Trainer.train_step`` (forward under autocast, label-smoothed loss, backward, clipping,
optimizer and scheduler step). The first ``--warmup`` steps are not timed; the next ``--steps``
are, each including the batch's collate, as the trainer's own tokens/s is. On CUDA the device is
synchronised before the clock is read.

Ablations switch off one speed feature each:

    --no-fused-optim    optim.fused=false: the foreach AdamW instead of the fused kernel
    --naive-loss        F.cross_entropy(label_smoothing=...) with autograd, instead of train/loss.py's
                        hand-written gradient (the NLL is not computed separately: not needed here)
    --random-batches    batches of random examples under the same padded-token budget (no bucketing)
    --all-positions     project and score every target position, padding included (the trainer
                        passes only the non-padding rows to the output projection)
    --math-attention    F.scaled_dot_product_attention restricted to the math (unfused) kernel
    --explicit-attention  the module's own q k^T / masked_fill / softmax path (as with need_weights)

Reports target tokens/s and source+target tokens/s (padding not counted), seconds per step, the
padding share of the timed batches, peak RSS and (CUDA) peak memory: a Markdown table row on
stdout, the full record as JSON with ``--json``. Peer anchors are printed alongside.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

REPO = Path(__file__).resolve().parents[1]
PRESETS = ("tiny", "small", "multi30k_tiny", "base")

# Non-padding target tokens/s measured by the project on the same 2-core CPU:
# model=small, 8k joint BPE, 4096-token batches.
ANCHORS = [("JoeyNMT 2.3", 660), ("HF MarianMTModel loop", 1600), ("OpenNMT-py 3.5", 1850),
           ("rosettamt goal", 2400)]
ANCHOR_SETTING = dict(model="small", vocab_size=8000, max_tokens=4096, device="cpu", threads=2)


def compose_train(overrides: List[str]) -> Any:
    """The TrainConfig dataclass that ``rosettamt-train <overrides>`` would get."""
    from hydra import compose, initialize_config_dir

    from rosettamt.config import register_schemas, to_object
    from rosettamt.paths import config_dir

    register_schemas()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return to_object(compose(config_name="train", overrides=overrides))


def build_config(args: argparse.Namespace) -> Any:
    from rosettamt.config import Precision

    cfg = compose_train([f"model={args.model}", *args.overrides])
    steps = args.warmup + args.steps
    cfg.data.src_lang, cfg.data.tgt_lang = args.src, args.tgt
    cfg.data.dir, cfg.data.download = str(Path(args.data_dir).resolve()), False
    cfg.data.cache_dir = str(Path(args.cache_dir).resolve())
    cfg.tokenizer.vocab_size, cfg.tokenizer.joint = args.vocab_size, True
    tc = cfg.trainer
    tc.device, tc.precision = args.device, Precision(args.precision)
    tc.compile, tc.threads = args.compile, args.threads
    tc.max_tokens, tc.max_steps, tc.max_epochs, tc.max_time = args.max_tokens, steps, 0, 0.0
    tc.val_every = tc.save_every = 0
    tc.log_every = max(tc.log_every, steps)
    tc.evaluate_at_end, tc.resume, tc.resume_from = False, False, None
    if args.no_fused_optim:
        cfg.optim.fused = False
    if args.no_keep_freed_memory:
        tc.keep_freed_memory = False
    return cfg


def naive_loss(logits: Any, target: Any, smoothing: float, pad_id: int = 0) -> Any:
    """What most trainers do: torch's cross_entropy with label_smoothing, autograd for the gradient."""
    import torch.nn.functional as F

    flat = logits.reshape(-1, logits.size(-1)).float()  # (B*T, V)
    loss = F.cross_entropy(flat, target.reshape(-1), ignore_index=pad_id, label_smoothing=smoothing,
                           reduction="sum")
    return loss, loss.detach()  # the trainer logs the NLL; the benchmark does not read it


def force_explicit_attention() -> None:
    """Route every attention call through the explicit softmax path (need_weights=True)."""
    from rosettamt.model.attention import MultiHeadAttention

    attend = MultiHeadAttention.attend

    def explicit(self, q, k, v, mask=None, is_causal=False, need_weights=False):  # type: ignore[no-untyped-def]
        out, weights = attend(self, q, k, v, mask=mask, is_causal=is_causal, need_weights=True)
        return out, weights if need_weights else None

    MultiHeadAttention.attend = explicit  # type: ignore[method-assign]


def random_batches(trainer: Any, seed: int) -> Iterator[Any]:
    """Endless batches of random examples, packed under the sampler's padded-token budget."""
    import numpy as np

    from rosettamt.data.batching import collate_rows
    from rosettamt.data.packing import pack_by_tokens

    s = trainer.sampler
    cost = np.maximum(s.src_lens, s.tgt_lens)  # as TokenBatchSampler: lengths with EOS / BOS
    epoch = 0
    while True:
        order = np.random.default_rng([seed, epoch]).permutation(len(cost))
        for rows in pack_by_tokens(order, cost, s.max_tokens):
            yield collate_rows(trainer.train_ids, rows.tolist())
        epoch += 1


def epoch_padding(trainer: Any, seed: int, random: bool) -> float:
    """Padding share of a whole epoch of the batches used (bucketed or random)."""
    import numpy as np

    from rosettamt.data.batching import padding_fraction
    from rosettamt.data.packing import pack_by_tokens

    s = trainer.sampler
    if not random:
        return s.padding_fraction
    cost = np.maximum(s.src_lens, s.tgt_lens)
    order = np.random.default_rng([seed, 0]).permutation(len(cost))
    return padding_fraction(pack_by_tokens(order, cost, s.max_tokens), s.src_lens, s.tgt_lens)


def run(args: argparse.Namespace) -> Dict[str, Any]:
    import torch

    from rosettamt.device import setup_allocator
    from rosettamt.model import count_parameters
    from rosettamt.train.loop import Trainer

    cfg = build_config(args)
    if args.explicit_attention:
        force_explicit_attention()
    attention_ctx: Any = contextlib.nullcontext
    if args.math_attention:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        attention_ctx = lambda: sdpa_kernel([SDPBackend.MATH])  # noqa: E731

    with tempfile.TemporaryDirectory(prefix="bench_train_") as run_dir:
        setup_allocator(cfg.trainer.keep_freed_memory, cfg.trainer.device)  # what rosettamt-train does
        # seeds, prepares data, builds model/optim/sampler; the loss and projection ablations are its options
        trainer = Trainer(cfg, Path(run_dir), loss_fn=naive_loss if args.naive_loss else None,
                          project_all_positions=args.all_positions)
        device = trainer.device
        stream = random_batches(trainer, cfg.seed) if args.random_batches else trainer.batches()

        def sync() -> None:
            if device.type == "cuda":
                torch.cuda.synchronize(device)

        trainer.train_model.train()
        trainer.meter.reset()
        times: List[float] = []
        warmup_s = 0.0  # the untimed steps: with --compile they hold the compilation
        tgt = src = real = padded = 0
        with attention_ctx():
            for i in range(args.warmup + args.steps):
                sync()
                start = time.perf_counter()
                batch = next(stream)
                trainer.train_step([batch])  # advances trainer.state.step
                sync()
                if i < args.warmup:
                    warmup_s += time.perf_counter() - start
                    continue
                times.append(time.perf_counter() - start)
                tgt += batch.n_tgt_tokens
                src += batch.n_src_tokens
                real += batch.n_src_tokens + batch.n_tgt_tokens
                padded += batch.src.numel() + batch.tgt_out.numel()
        loss = trainer.meter.summary()["loss"]  # all steps, warmup included; sanity: finite, falls with more steps
        seconds = sum(times)
        fused = trainer.optimizer.defaults.get("fused")
        rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        result: Dict[str, Any] = {
            "model": args.model, "params": count_parameters(trainer.model),
            "vocab_size": trainer.data.tokenizer.tgt_vocab_size, "pair": f"{args.src}-{args.tgt}",
            "device": str(device), "threads": trainer.threads if device.type == "cpu" else None,
            "precision": "bf16" if trainer.amp is not None else "fp32", "compile": args.compile,
            "max_tokens": args.max_tokens, "variant": variant(args),
            "optimizer": f"{type(trainer.optimizer).__name__} ({'fused' if fused else 'foreach'})",
            "steps": args.steps, "warmup": args.warmup, "seconds": seconds,
            "s_per_step": seconds / max(len(times), 1),
            "s_per_step_median": sorted(times)[len(times) // 2] if times else float("nan"),
            "tgt_tok_per_s": tgt / seconds if seconds else float("nan"),
            "src_tgt_tok_per_s": (src + tgt) / seconds if seconds else float("nan"),
            "tgt_tokens_per_step": tgt / max(len(times), 1),
            "padding": 1.0 - real / padded if padded else 0.0,
            "epoch_padding": epoch_padding(trainer, cfg.seed, args.random_batches),
            "mean_loss": loss, "peak_rss_mib": rss_kib / 1024, "torch": torch.__version__,
            "warmup_s": warmup_s, "bf16_weights": type(trainer.train_model).__name__ == "BF16Weights",
        }
        if args.compile:  # graphs compiled (1 = no recompilation) and graph breaks, warm-up and timed steps
            from torch._dynamo.utils import counters

            result["compiled_graphs"] = counters["stats"]["unique_graphs"]
            result["graph_breaks"] = sum(counters["graph_break"].values())
        if device.type == "cuda":
            result["peak_cuda_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
            result["gpu"] = torch.cuda.get_device_name(device)
    return result


def variant(args: argparse.Namespace) -> str:
    flags = [name for name in ("no_keep_freed_memory", "no_fused_optim", "naive_loss", "all_positions",
                               "random_batches", "math_attention", "explicit_attention") if getattr(args, name)]
    return ", ".join(f.replace("_", "-") for f in flags) or "default"


def markdown(r: Dict[str, Any]) -> str:
    cuda = "peak_cuda_mib" in r
    head = ("| model | device | precision | variant | batch tokens | tgt tok/s | src+tgt tok/s | s/step | "
            "padding | peak RSS (MiB) |" + (" peak CUDA (MiB) |" if cuda else ""))
    dev = r["device"] + (f" x{r['threads']}t" if r["threads"] else "") + (" compiled" if r["compile"] else "")
    row = (f"| {r['model']} | {dev} | {r['precision']} | {r['variant']} | {r['max_tokens']} | "
           f"{r['tgt_tok_per_s']:,.0f} | {r['src_tgt_tok_per_s']:,.0f} | {r['s_per_step']:.3f} | "
           f"{100 * r['padding']:.1f}% | {r['peak_rss_mib']:,.0f} |")
    if cuda:
        row += f" {r['peak_cuda_mib']:,.0f} |"
    return "\n".join([head, "|" + "---|" * (head.count("|") - 1), row])


def anchors(r: Dict[str, Any], args: argparse.Namespace) -> str:
    lines = ["Peer anchors (non-padding target tokens/s, same 2-core CPU, model=small, 8k joint BPE, "
             "4096-token batches):"]
    lines += [f"  {name:<24}{value:>7,}" for name, value in ANCHORS]
    same = (args.model == ANCHOR_SETTING["model"] and args.vocab_size == ANCHOR_SETTING["vocab_size"]
            and args.max_tokens == ANCHOR_SETTING["max_tokens"] and r["device"] == "cpu"
            and r["threads"] == ANCHOR_SETTING["threads"])
    lines.append(f"  {'this run':<24}{r['tgt_tok_per_s']:>7,.0f}"
                 + ("" if same else "   (different setting: not comparable with the anchors)"))
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs="*", help="extra Hydra overrides of configs/train.yaml (key=value)")
    p.add_argument("--model", default="small", choices=PRESETS, help="model preset (configs/model/)")
    p.add_argument("--vocab-size", type=int, default=8000, help="joint BPE vocabulary")
    p.add_argument("--max-tokens", type=int, default=4096, help="tokens per batch, padding counted")
    p.add_argument("--steps", type=int, default=50, help="timed steps")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (0 = one per physical core)")
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "multi30k"),
                   help="directory of {split}.{lang}.gz")
    p.add_argument("--cache-dir", default=str(REPO / "data" / "cache"),
                   help="tokenizer and id caches (shared with rosettamt-train)")
    p.add_argument("--src", default="en")
    p.add_argument("--tgt", default="de")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                   help="auto = bf16 on CUDA, fp32 on CPU (as the trainer)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (trainer.compile=true)")
    p.add_argument("--json", help="also write the result record here")
    p.add_argument("--no-fused-optim", action="store_true", help="foreach AdamW instead of fused")
    p.add_argument("--no-keep-freed-memory", action="store_true",
                   help="trainer.keep_freed_memory=false: glibc's default malloc (big blocks unmapped on free)")
    p.add_argument("--naive-loss", action="store_true", help="F.cross_entropy(label_smoothing) + autograd")
    p.add_argument("--random-batches", action="store_true", help="no length bucketing")
    p.add_argument("--all-positions", action="store_true", help="output projection on padding rows too")
    p.add_argument("--math-attention", action="store_true", help="SDPA math kernel only")
    p.add_argument("--explicit-attention", action="store_true", help="explicit softmax attention path")
    p.add_argument("-v", "--verbose", action="store_true", help="show the trainer's and datasets' log lines")
    args = p.parse_args()
    if args.steps < 1 or args.warmup < 0:
        p.error("--steps must be >= 1 and --warmup >= 0")

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        import datasets

        datasets.disable_progress_bars()
    from rosettamt.errors import UserError

    try:
        r = run(args)
    except UserError as err:
        sys.exit(f"bench_train: {err}")
    print(f"{r['model']} ({r['params']:,} parameters), vocab {r['vocab_size']}, {r['pair']}, {r['optimizer']}; "
          f"{r['steps']} timed steps after {r['warmup']}, {r['tgt_tokens_per_step']:.0f} target tokens/step, "
          f"epoch padding {100 * r['epoch_padding']:.1f}%, mean loss {r['mean_loss']:.3f}, "
          f"untimed warm-up {r['warmup_s']:.1f} s" + (f" ({r['compiled_graphs']} compiled graphs, {r['graph_breaks']} "
                                                    "graph breaks)" if r["compile"] else ""))
    print()
    print(markdown(r))
    print()
    print(anchors(r, args))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
