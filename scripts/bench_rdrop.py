#!/usr/bin/env python
"""What R-Drop (trainer.rdrop_alpha > 0) costs per training step, against alpha = 0, interleaved.

    python scripts/bench_rdrop.py --threads 1 --steps 8 --rounds 3       # model=multi30k_tiny, 4096-token batches
    python scripts/bench_rdrop.py --model tiny --steps 2 --rounds 1 --vocab-size 1000   # smoke test

One process, one ``Trainer`` built from the recipe (``experiment=multi30k_en_de``: Multi30k
En->De, 8k joint BPE, dropout 0.3; no validation or checkpoints), the same batches for every variant, the variants taken in turn
(A/B/C, A/B/C, ...) so that a machine whose load drifts hurts them alike:

    off       trainer.rdrop_alpha = 0: one forward pass
    stacked   R-Drop as the trainer does it: one forward over the batch stacked on itself
    two-call  R-Drop with two forward calls (the alternative, for the comparison only)

Prints the median seconds per step of each variant and its ratio to ``off`` (and a JSON record
with ``--json``). The first round is warm-up and not counted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

REPO = Path(__file__).resolve().parents[1]


def two_call_loss(model, b, rows, target, smoothing, pad_id, device, amp, loss_fn=None, rdrop_alpha=0.0):
    """R-Drop with two separate forward calls: the variant the trainer does not use."""
    from rosettamt.device import autocast
    from rosettamt.train import objective

    if rdrop_alpha <= 0:
        return objective.micro_batch_loss(model, b, rows, target, smoothing, pad_id, device, amp, loss_fn)
    with autocast(device, amp):
        first = model(b.src, b.src_mask, b.tgt_in, rows)
        second = model(b.src, b.src_mask, b.tgt_in, rows)
    return objective.rdrop_loss(first, second, target, smoothing, pad_id, rdrop_alpha, loss_fn)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--experiment", default="multi30k_en_de", help="the recipe (configs/experiment/)")
    p.add_argument("--model", default="multi30k_tiny", help="model preset, over the recipe's")
    p.add_argument("--alpha", type=float, default=5.0, help="trainer.rdrop_alpha of the R-Drop variants")
    p.add_argument("--steps", type=int, default=8, help="steps per variant per round")
    p.add_argument("--rounds", type=int, default=3, help="rounds counted (one more is warm-up)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--max-tokens", type=int, default=4096)
    p.add_argument("--vocab-size", type=int, default=8000)
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "multi30k"))
    p.add_argument("--cache-dir", default=str(REPO / "data" / "cache"))
    p.add_argument("--json", help="also write the record here")
    args = p.parse_args()

    from hydra import compose, initialize_config_dir

    from rosettamt.config import register_schemas, to_object
    from rosettamt.device import setup_allocator
    from rosettamt.paths import config_dir
    from rosettamt.train import loop
    from rosettamt.train.objective import micro_batch_loss

    overrides = [f"experiment={args.experiment}", f"model={args.model}", f"trainer.threads={args.threads}",
                 f"trainer.max_tokens={args.max_tokens}", "trainer.device=cpu", "trainer.precision=fp32",
                 "trainer.val_every=0", "trainer.save_every=0", "trainer.evaluate_at_end=false",
                 f"tokenizer.vocab_size={args.vocab_size}", f"data.dir={Path(args.data_dir).resolve()}",
                 "data.download=false", f"data.cache_dir={Path(args.cache_dir).resolve()}"]
    register_schemas()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = to_object(compose(config_name="train", overrides=overrides))
    variants = {"off": (0.0, micro_batch_loss), "stacked": (args.alpha, micro_batch_loss),
                "two-call": (args.alpha, two_call_loss)}
    times: Dict[str, List[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="bench_rdrop_") as run_dir:
        setup_allocator(cfg.trainer.keep_freed_memory, cfg.trainer.device)
        trainer = loop.Trainer(cfg, Path(run_dir))
        stream = trainer.batches()
        batches = [next(stream) for _ in range(args.steps)]  # the same batches for every variant
        for rnd in range(args.rounds + 1):
            for name, (alpha, fn) in variants.items():
                trainer.tc.rdrop_alpha, loop.micro_batch_loss = alpha, fn
                for batch in batches:
                    start = time.perf_counter()
                    trainer.train_step([batch])
                    if rnd > 0:
                        times[name].append(time.perf_counter() - start)
        loop.micro_batch_loss = micro_batch_loss
    base = statistics.median(times["off"])
    tokens = sum(b.n_tgt_tokens for b in batches) / len(batches)
    record: Dict[str, Any] = {"model": args.model, "threads": args.threads, "max_tokens": args.max_tokens,
                              "alpha": args.alpha, "steps_per_variant": len(times["off"]),
                              "mean_tgt_tokens_per_batch": tokens, "variants": {}}
    print(f"| variant | median s/step | vs off | non-padding target tok/s |  ({args.model}, {args.threads} thread(s), "
          f"{len(times['off'])} steps each, interleaved)")
    print("|---|---|---|---|")
    for name, ts in times.items():
        med = statistics.median(ts)
        record["variants"][name] = {"median_s_per_step": med, "ratio": med / base, "all_s": ts}
        print(f"| {name} | {med:.3f} | {med / base:.2f}x | {tokens / med:,.0f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
