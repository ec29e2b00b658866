"""The training loop: token batches -> label-smoothed loss -> AdamW step, with validation and checkpoints.

``train(cfg, run_dir)`` does a whole run: prepare the data (tokenizer and id caches are
reused), build the model, resume if asked, train until a stop condition, then average /
pick the best checkpoint and evaluate it on the test splits. Under torchrun every rank runs
it; rank 0 alone validates, logs and writes files.

Exact resumption: a checkpoint holds everything a step depends on (weights, optimizer,
scheduler, sampler position inside the epoch, every RNG, counters), and nothing between
two steps draws from an RNG, so a resumed run replays the uninterrupted one bit for bit
on CPU.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import torch
from omegaconf import OmegaConf
from torch import nn

from rosettamt import config as C
from rosettamt.checkpoint import (AVERAGED, CHECKPOINT_DIR, LAST, checkpoint_dir, config_mismatch,
                                  find_best_checkpoint, load_checkpoint, load_model_state, save_checkpoint)
from rosettamt.data.batching import Batch, TokenBatchSampler, collate_rows, lengths
from rosettamt.data.tokenizer import Tokenizer
from rosettamt.errors import UserError
from rosettamt.model import Seq2SeqTransformer, count_parameters
from rosettamt.train import distributed as D
from rosettamt.train.average import average_checkpoints
from rosettamt.device import autocast, autocast_dtype, resolve_device, set_threads
from rosettamt.train.loss import label_smoothed_loss
from rosettamt.train.metrics import MetricsLog, plot_curves
from rosettamt.train.optim import build_optimizer, build_scheduler
from rosettamt.train.progress import Progress
from rosettamt.train.rng import get_rng_state, seed_everything, set_rng_state
from rosettamt.train.saver import CheckpointSaver
from rosettamt.train.validate import ValSet, build_valset, validate

log = logging.getLogger("rosettamt.train")

BatchHook = Callable[[int, Batch], None]
PLOT_EVERY_S = 120.0  # curves.png is redrawn at a validation at most this often, and at the end


@dataclass
class TrainResult:
    model: nn.Module  # the trained weights (plain module, not DDP / compiled)
    step: int
    epoch: int
    stop_reason: str
    best_checkpoint: Optional[Path] = None
    results: Dict[str, Any] = field(default_factory=dict)  # test split -> scores (rank 0)


class Trainer:
    """One training run; see :func:`train`."""

    def __init__(self, cfg: C.TrainConfig, run_dir: Path, on_batch: Optional[BatchHook] = None) -> None:
        self.cfg, self.tc = cfg, cfg.trainer
        self.on_batch = on_batch
        self.dist = D.from_env()
        self.device = resolve_device(self.tc.device, self.dist.local_rank)
        D.init(self.dist, self.device)
        self.run_dir = Path(D.broadcast_object(str(run_dir)))  # every rank uses rank 0's directory
        self.ckpt_dir = self.run_dir / CHECKPOINT_DIR
        self.threads = set_threads(self.tc.threads, self.dist.local_world_size) if self.device.type == "cpu" else 0
        self.val_decode = cfg.decode
        self.amp = autocast_dtype(self.tc.precision, self.device)
        self._check_options()
        seed_everything(cfg.seed)
        resume_path = self._resume_path()

        self.data = self._prepare_data()
        tok = self.data.tokenizer
        cfg.model.src_vocab_size, cfg.model.tgt_vocab_size = tok.src_vocab_size, tok.tgt_vocab_size
        cfg.model.joint_vocab = tok.joint
        self.model = Seq2SeqTransformer(cfg.model).to(self.device)
        if self.dist.enabled:  # same init everywhere (seeded), different dropout masks per rank
            torch.manual_seed(cfg.seed + self.dist.rank)
        self.optimizer = build_optimizer(self.model, cfg.optim, self.device)
        self.scheduler = build_scheduler(self.optimizer, cfg.optim, self.tc.max_steps)
        train_ids = self.data.ids[cfg.data.train_split]
        self.train_ids = train_ids
        src_lens, tgt_lens = lengths(train_ids)  # pieces; the sampler adds EOS/BOS
        self.sampler = TokenBatchSampler(src_lens, tgt_lens, self.tc.max_tokens, shuffle=True, seed=cfg.seed,
                                         rank=self.dist.rank, world_size=self.dist.world_size)
        self.step, self.epoch = 0, 0
        self.best_bleu: Optional[float] = None
        self.bad_validations = 0
        self.elapsed_before = 0.0  # training seconds of earlier sessions of this run
        self.last_val: Optional[Dict[str, float]] = None
        self.val_step = -1
        self.saved_step = -1
        self._sampler_resumed = False
        rng_state = self._resume(resume_path) if resume_path else None
        # fixed for the run; converted once (OmegaConf takes tens of ms per conversion)
        self.config_dict, self.model_config_dict = C.to_dict(cfg), C.to_dict(cfg.model)
        self._last_plot = 0.0

        self.valset: Optional[ValSet] = None
        self.saver: Optional[CheckpointSaver] = None
        self.metrics: Optional[MetricsLog] = None
        if self.dist.is_main:
            self._init_outputs()
        self.train_model: nn.Module = self.model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if self.tc.compile:
            self.train_model = torch.compile(self.train_model, dynamic=True)
        if rng_state is not None:  # last: nothing after this may draw random numbers before step 1
            set_rng_state(rng_state)

    # ---- setup -------------------------------------------------------------------------------

    def _check_options(self) -> None:
        tc, oc = self.tc, self.cfg.optim
        for name in ("max_tokens", "log_every"):
            if getattr(tc, name) <= 0:
                raise UserError(f"trainer.{name}={getattr(tc, name)} must be > 0")
        if oc.accum_steps < 1:
            raise UserError(f"optim.accum_steps={oc.accum_steps} must be >= 1")
        if not 0.0 <= oc.label_smoothing < 1.0:
            raise UserError(f"optim.label_smoothing={oc.label_smoothing} must be in [0, 1)")
        if tc.max_steps <= 0 and tc.max_epochs <= 0 and tc.max_time <= 0:
            raise UserError("no stop condition: set trainer.max_steps, trainer.max_epochs or trainer.max_time")

    def _resume_path(self) -> Optional[Path]:
        if self.tc.resume_from:
            path = Path(self.tc.resume_from)
            if path.is_dir():
                path = checkpoint_dir(path) / LAST
            if not path.is_file():
                raise UserError(f"trainer.resume_from={self.tc.resume_from}: no checkpoint at {path}")
            return path
        last = self.ckpt_dir / LAST
        if self.tc.resume:
            if not last.is_file():
                raise UserError(f"trainer.resume=true but {last} does not exist; point hydra.run.dir at the run "
                                "to continue (e.g. hydra.run.dir=outputs/myrun) or set trainer.resume_from=PATH")
            return last
        if last.is_file():
            raise UserError(f"{self.run_dir} already holds a training run ({last}); continue it with "
                            "trainer.resume=true or choose another hydra.run.dir")
        return None

    def _prepare_data(self) -> Any:
        """Rank 0 trains the tokenizer and writes the id caches; the other ranks then read them."""
        from rosettamt.data.pipeline import prepare_data

        data = None
        if self.dist.is_main:
            data = prepare_data(self.cfg.data, self.cfg.tokenizer, self.cfg.seed)
        D.barrier()
        if not self.dist.is_main:
            data = prepare_data(self.cfg.data, self.cfg.tokenizer, self.cfg.seed)
        for split in (self.cfg.data.train_split, self.cfg.data.val_split):
            if split not in data.ids or len(data.ids[split]) == 0:
                raise UserError(f"data split {split!r} is missing or empty (splits: {sorted(data.ids)}); "
                                f"see data.train_split / data.val_split")
        return data

    def _resume(self, path: Path) -> dict:
        """Restore everything but the RNGs (returned, set last); UserError if the checkpoint does not fit."""
        ckpt = load_checkpoint(path)
        missing = [k for k in ("optimizer", "scheduler", "sampler", "rng", "trainer") if k not in ckpt]
        if missing:
            raise UserError(f"cannot resume from {path}: it has no training state ({', '.join(missing)}); "
                            "it is an inference-only checkpoint")
        load_model_state(self.model, ckpt, path, expected_config=C.to_dict(self.cfg.model))
        if Tokenizer.from_state_dict(ckpt["tokenizer"]).content_hash != self.data.tokenizer.content_hash:
            raise UserError(f"cannot resume from {path}: its tokenizer differs from the one built for this "
                            "config (data or tokenizer settings changed)")
        now = C.to_dict(self.cfg)
        for group in ("data", "tokenizer", "optim"):
            diff = config_mismatch(now[group], ckpt.get("config", {}).get(group, now[group]))
            if diff:
                log.warning("resuming with a different %s config: %s", group, "; ".join(diff))
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        sampler_state = dict(ckpt["sampler"])
        saved_world = sampler_state.pop("world_size", 1)
        if saved_world != self.dist.world_size:  # keep the fraction of the epoch already seen
            log.warning("checkpoint was written by %d ranks, this run has %d: not an exact continuation",
                        saved_world, self.dist.world_size)
            sampler_state["position"] = sampler_state.get("position", 0) * saved_world // self.dist.world_size
        self.sampler.load_state_dict(sampler_state)
        self._sampler_resumed = True
        tstate = ckpt["trainer"]
        self.step, self.epoch = int(ckpt["step"]), int(ckpt["epoch"])
        self.best_bleu, self.bad_validations = tstate["best_bleu"], int(tstate["bad_validations"])
        self.elapsed_before, self.val_step = float(tstate["elapsed"]), int(tstate["val_step"])
        if path.resolve() == (self.ckpt_dir / LAST).resolve():
            self.saved_step = self.step  # this very state is last.pt already: the end need not write it again
        log.info("resumed from %s at step %d (epoch %d, batch %d of it)", path, self.step, self.epoch + 1,
                 sampler_state.get("position", 0))
        rngs = ckpt["rng"]
        return rngs[self.dist.rank] if self.dist.rank < len(rngs) else rngs[0]

    def _init_outputs(self) -> None:
        cfg = self.cfg
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.yaml").write_text(OmegaConf.to_yaml(C.to_dict(cfg)), encoding="utf-8")
        self.metrics = MetricsLog(self.run_dir)
        self.saver = CheckpointSaver(self.ckpt_dir, self.tc.keep_best, self.tc.average_last)
        if self.step > 0:
            self.metrics.truncate_after(self.step)
            self.saver.forget_after(self.step)
        val_split = cfg.data.val_split
        self.valset = build_valset(self.data.ids[val_split], self.data.corpus[val_split],
                                   self.tc.max_tokens, self.tc.val_max_sentences)
        tok = self.data.tokenizer
        log.info("run directory: %s", self.run_dir)
        log.info("device %s, %s, %d threads, world size %d", self.device,
                 "bf16 autocast" if self.amp else "fp32", self.threads, self.dist.world_size)
        log.info("model: %s parameters; vocab src %d / tgt %d (%s)", f"{count_parameters(self.model):,}",
                 tok.src_vocab_size, tok.tgt_vocab_size, "joint" if tok.joint else "separate")
        log.info("train: %d pairs, %d batches/epoch per rank (padding %.1f%%); val: %d pairs, BLEU on %d",
                 len(self.train_ids), len(self.sampler), 100 * self.sampler.padding_fraction,
                 len(self.data.ids[val_split]), len(self.valset.src_ids))

    # ---- the loop ----------------------------------------------------------------------------

    def batches(self) -> Iterator[Batch]:
        """Batches across epochs; ``self.epoch`` counts finished epochs; stops at trainer.max_epochs."""
        resumed = self._sampler_resumed
        while not (self.tc.max_epochs > 0 and self.epoch >= self.tc.max_epochs):
            if not resumed:
                self.sampler.set_epoch(self.epoch)
            resumed = False
            for rows in self.sampler:
                yield collate_rows(self.train_ids, rows)  # one Arrow read per batch
            self.epoch += 1

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self._t0

    def fit(self) -> TrainResult:
        tc = self.tc
        self._t0 = time.perf_counter()
        self.model.train()
        stream = self.batches()
        self._reset_window()
        progress = Progress(tc, self.step, enabled=self.dist.is_main)
        # A resumed run whose time is already spent stops before taking a step, like an uninterrupted one.
        stop = self._time_up() if tc.max_time > 0 else ""
        with progress:
            while not stop:
                if tc.max_steps > 0 and self.step >= tc.max_steps:
                    stop = "max_steps"
                    break
                micro = list(itertools.islice(stream, self.cfg.optim.accum_steps))
                if len(micro) < self.cfg.optim.accum_steps:  # trainer.max_epochs reached
                    stop = "max_epochs"
                    break
                self.train_step(micro)
                self.step += 1
                progress.update(self.step)
                boundary = self.step % tc.log_every == 0
                if boundary:
                    self._log_window(progress)
                paused = time.perf_counter()
                if tc.val_every > 0 and self.step % tc.val_every == 0:
                    stop = self._validate_and_save(periodic=tc.save_every > 0 and self.step % tc.save_every == 0)
                    boundary = True
                elif tc.save_every > 0 and self.step % tc.save_every == 0:
                    self._save(last=True, periodic=True)
                self._w_start += time.perf_counter() - paused  # tokens/s counts training time only
                if not stop and self.tc.max_time > 0 and (boundary or not self.dist.enabled):
                    stop = self._time_up()  # every step alone; at log/val steps with DDP (a collective)
            if self.step > self._w_step:  # the steps since the last log line
                self._log_window(progress)
        return self._finish(stop or "max_steps")

    def train_step(self, micro: List[Batch]) -> None:
        """One optimizer step over the micro-batches (gradient accumulation); public for scripts/bench_train.py."""
        n_tokens = sum(b.n_tgt_tokens for b in micro)
        scale: Any = 1.0 / max(n_tokens, 1)
        if self.dist.enabled:  # normalise by the target tokens of all ranks: every token weighs the same
            total = D.all_reduce_sum(torch.tensor(float(n_tokens), device=self.device))  # stays a tensor: no sync
            scale = self.dist.world_size / total  # DDP averages gradients over ranks
        smoothing, pad = self.cfg.optim.label_smoothing, self.cfg.model.pad_id
        for i, batch in enumerate(micro):
            if self.on_batch is not None:
                self.on_batch(self.step + 1, batch)
            b = batch.pin_memory().to(self.device, non_blocking=True) if self.device.type == "cuda" else batch
            rows = self.target_rows(batch)  # non-padding target positions: the only ones projected and scored
            target = b.tgt_out if rows is None else b.tgt_out.reshape(-1).index_select(0, rows)
            last = i == len(micro) - 1
            sync = self.train_model.no_sync() if self.dist.enabled and not last else contextlib.nullcontext()
            with sync:
                with autocast(self.device, self.amp):
                    logits = self.train_model(b.src, b.src_mask, b.tgt_in, rows)  # (K, V)
                loss, nll = label_smoothed_loss(logits, target, smoothing, pad)
                (loss * scale).backward()
            self._w_loss += loss.detach()
            self._w_nll += nll.detach()
            self._w_src += batch.n_src_tokens
        self._w_tgt += n_tokens
        if self.cfg.optim.clip_norm > 0:
            self._w_gnorm = nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.clip_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    def target_rows(self, batch: Batch) -> Optional[torch.Tensor]:
        """Flat indices of the batch's non-padding target positions, on the training device.

        Computed from the host copy so that CUDA never waits on a nonzero(). None would mean
        "project every position" (scripts/bench_train.py --all-positions measures what that costs).
        """
        rows = (batch.tgt_out.reshape(-1) != self.cfg.model.pad_id).nonzero().squeeze(1)
        return rows.to(self.device, non_blocking=True) if self.device.type == "cuda" else rows

    def _reset_window(self) -> None:
        """Running sums of one log interval; tensors so that no step waits for a .item()."""
        self._w_loss = torch.zeros((), dtype=torch.float64, device=self.device)
        self._w_nll = torch.zeros((), dtype=torch.float64, device=self.device)
        self._w_gnorm: Optional[torch.Tensor] = None
        self._w_src = self._w_tgt = 0
        self._w_start, self._w_step = time.perf_counter(), self.step

    def _log_window(self, progress: Progress) -> None:
        sums = torch.stack([self._w_loss, self._w_nll,
                            torch.tensor(float(self._w_tgt), dtype=torch.float64, device=self.device)])
        loss, nll, tokens = D.all_reduce_sum(sums).tolist()
        seconds = max(time.perf_counter() - self._w_start, 1e-9)
        tokens = max(tokens, 1.0)
        record = {
            "kind": "train", "step": self.step, "epoch": self.epoch + self._epoch_fraction(),
            "loss": loss / tokens, "nll": nll / tokens,
            "ppl": math.exp(min(nll / tokens, 50.0)),
            "lr": self.scheduler.get_last_lr()[0],
            "grad_norm": float(self._w_gnorm) if self._w_gnorm is not None else None,
            "tgt_tok_per_s": tokens / seconds,
            "src_tok_per_s": self._w_src * self.dist.world_size / seconds,
            "steps_per_s": (self.step - self._w_step) / seconds, "time": self.elapsed(),
        }
        if self.dist.is_main:
            self.metrics.write(record)
            progress.log(record, self._remaining(record["steps_per_s"]))
        self._reset_window()

    def _epoch_fraction(self) -> float:
        n = len(self.sampler)
        return min(1.0, self.sampler.state_dict().get("position", 0) / n) if n else 0.0

    def _remaining(self, steps_per_s: float) -> Optional[float]:
        """Seconds left until the first stop condition we can foresee (steps or time)."""
        left = []
        if self.tc.max_steps > 0 and steps_per_s > 0:
            left.append((self.tc.max_steps - self.step) / steps_per_s)
        if self.tc.max_time > 0:
            left.append(self.tc.max_time - self.elapsed())
        return max(0.0, min(left)) if left else None

    def _time_up(self) -> str:
        """Rank 0's clock decides for every rank, so all ranks stop after the same step."""
        up = self.elapsed() >= self.tc.max_time
        return "max_time" if D.broadcast_object(up) else ""

    # ---- validation and checkpoints ----------------------------------------------------------

    def _validate_and_save(self, periodic: bool, final: bool = False) -> str:
        """Validate (rank 0), track early stopping, save last/best; returns a stop reason or ''."""
        stop = ""
        bleu = None
        if self.dist.is_main:
            t = time.perf_counter()
            scores = validate(self.model, self.valset, self.data.tokenizer, self.val_decode, self.device,
                              self.amp, self.cfg.optim.label_smoothing, self.cfg.model.pad_id)
            bleu = scores["bleu"]
            improved = self.best_bleu is None or bleu > self.best_bleu
            if improved:
                self.best_bleu, self.bad_validations = bleu, 0
            else:
                self.bad_validations += 1
            if self.tc.patience > 0 and self.bad_validations >= self.tc.patience:
                stop = "early_stopping"
            self.last_val = scores
            record = {"kind": "val", "step": self.step, "epoch": self.epoch + self._epoch_fraction(),
                      **scores, "best_bleu": self.best_bleu, "val_seconds": time.perf_counter() - t,
                      "time": self.elapsed()}
            self.metrics.write(record)
            log.info("validation step %d: loss %.3f | ppl %.2f | BLEU %.2f | chrF %.2f | best %.2f%s "
                     "(%d sentences, %.1fs)", self.step, scores["loss"], scores["ppl"], bleu, scores["chrf"],
                     self.best_bleu, "" if improved else f" | no gain x{self.bad_validations}",
                     scores["sentences"], record["val_seconds"])
            if time.perf_counter() - self._last_plot > PLOT_EVERY_S:  # matplotlib is slow: not too often
                plot_curves(self.metrics.path, self.run_dir / "curves.png")
                self._last_plot = time.perf_counter()
        self.val_step = self.step
        stop = D.broadcast_object(stop)
        last = final or (self.tc.save_every > 0 and self.step % self.tc.save_every == 0)
        self._save(last=last, periodic=periodic, bleu=bleu)
        return stop

    def _state(self) -> Dict[str, Any]:
        """The checkpoint of this moment (collective: gathers every rank's RNG state)."""
        rngs = D.gather_objects(get_rng_state())
        return {
            "model": self.model.state_dict(),
            "model_config": self.model_config_dict,
            "config": self.config_dict,
            "tokenizer": self.data.tokenizer.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "val_bleu": self.last_val["bleu"] if self.last_val and self.val_step == self.step else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "sampler": {**self.sampler.state_dict(), "world_size": self.dist.world_size},
            "rng": rngs,
            "trainer": {"best_bleu": self.best_bleu, "bad_validations": self.bad_validations,
                        "elapsed": self.elapsed(), "val_step": self.val_step},
        }

    def _save(self, last: bool, periodic: bool, bleu: Optional[float] = None) -> None:
        best = bleu is not None and self.dist.is_main and self.saver.is_best(bleu)
        if not D.broadcast_object(last or periodic or best):  # only rank 0 knows what is best
            return
        state = self._state()
        if last:
            self.saved_step = self.step
        if self.dist.is_main:
            written = self.saver.save(state, self.step, last=last, bleu=bleu, periodic=periodic)
            if written:
                log.info("saved %s", ", ".join(p.name for p in written))
        D.barrier()

    # ---- the end -----------------------------------------------------------------------------

    def _finish(self, stop: str) -> TrainResult:
        log.info("stopping at step %d (epoch %.2f): %s", self.step, self.epoch + self._epoch_fraction(), stop)
        if self.step > 0 and self.val_step != self.step and self.tc.val_every > 0:
            self._validate_and_save(periodic=True, final=True)
        elif self.step > 0 and self.saved_step != self.step:
            self._save(last=True, periodic=True)
        result = TrainResult(model=self.model, step=self.step, epoch=self.epoch, stop_reason=stop)
        if self.dist.is_main:
            if self.tc.average_last > 0:
                self._average()
            if self.metrics is not None:
                plot_curves(self.metrics.path, self.run_dir / "curves.png")
                self.metrics.close()
            if (self.ckpt_dir / LAST).is_file():
                result.best_checkpoint = find_best_checkpoint(self.run_dir)
                log.info("best checkpoint: %s", result.best_checkpoint)
            if self.tc.evaluate_at_end and result.best_checkpoint is not None and self.cfg.data.test_splits:
                from rosettamt.train.report import evaluate_test_splits

                result.results = evaluate_test_splits(result.best_checkpoint, self.cfg, self.run_dir,
                                                      self.device)
        D.barrier()
        return result

    def _average(self) -> None:
        paths = self.saver.periodic_paths()[-self.tc.average_last:]
        if len(paths) < 2:
            log.warning("trainer.average_last=%d: only %d checkpoint(s) kept; nothing to average",
                        self.tc.average_last, len(paths))
            return
        avg = average_checkpoints(paths)
        model = Seq2SeqTransformer(self.cfg.model).to(self.device)
        model.load_state_dict(avg["model"])
        scores = validate(model, self.valset, self.data.tokenizer, self.val_decode, self.device, self.amp,
                          self.cfg.optim.label_smoothing, self.cfg.model.pad_id)
        avg["val_bleu"] = scores["bleu"]
        save_checkpoint(avg, self.ckpt_dir / AVERAGED)
        self.saver.set_averaged(AVERAGED, self.step, scores["bleu"], avg["averaged_from"])
        self.metrics.write({"kind": "averaged", "step": self.step, **scores, "time": self.elapsed(),
                            "sources": avg["averaged_from"]})
        log.info("averaged %d checkpoints (%s): val BLEU %.2f (best single %.2f)", len(paths),
                 ", ".join(avg["averaged_from"]), scores["bleu"], self.best_bleu or 0.0)


def _log_to_file(run_dir: Path, is_main: bool) -> Optional[logging.Handler]:
    """Make sure train.log receives our records (Hydra already does so for the CLI)."""
    logger = logging.getLogger("rosettamt")
    if not is_main:
        logger.setLevel(logging.WARNING)
        return None
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    target = (run_dir / "train.log").resolve()
    for lg in (logger, logging.getLogger()):
        for h in lg.handlers:
            if isinstance(h, logging.FileHandler) and Path(h.baseFilename).resolve() == target:
                return None
    run_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(target, encoding="utf-8")
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    logger.addHandler(handler)
    return handler


def train(cfg: C.TrainConfig, run_dir: Path, on_batch: Optional[BatchHook] = None) -> TrainResult:
    """Train, checkpoint and evaluate one run in ``run_dir`` (every rank calls this under torchrun).

    ``on_batch(step, batch)`` is called with each micro-batch before it is used (tests, probes).
    """
    run_dir = Path(run_dir)
    info = D.from_env()
    handler = _log_to_file(run_dir, info.is_main)
    try:
        trainer = Trainer(cfg, run_dir, on_batch)
        return trainer.fit()
    finally:
        if handler is not None:
            logging.getLogger("rosettamt").removeHandler(handler)
            handler.close()
        D.shutdown()
