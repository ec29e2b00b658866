"""The training loop: token batches -> label-smoothed loss -> AdamW step, with validation and checkpoints.

``train(cfg, run_dir)`` does a whole run: set up (``setup``, ``resume``), train until a stop
condition, then finish (``report``). Under torchrun every rank runs it; rank 0 alone
validates, logs and writes files (``outputs``).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import torch
from torch import nn

from rosettamt import config as C
from rosettamt.checkpoint import CHECKPOINT_DIR, LAST
from rosettamt.data.batching import Batch, collate_rows
from rosettamt.device import autocast_dtype, resolve_device, set_threads
from rosettamt.model import count_parameters
from rosettamt.train import distributed as D
from rosettamt.train.fast import precision_label, training_model
from rosettamt.train.interrupt import STOP_REASONS, StopSignals, interrupted, reason
from rosettamt.train.logfile import train_log
from rosettamt.train.loss import LossFn, label_smoothed_loss
from rosettamt.train.meter import ThroughputMeter
from rosettamt.train.objective import micro_batch_loss
from rosettamt.train.optim import build_optimizer, build_scheduler
from rosettamt.train.outputs import RunOutputs
from rosettamt.train.progress import Progress
from rosettamt.train.report import finish_run
from rosettamt.train.resume import restore, resume_path, snapshot
from rosettamt.train.rng import seed_everything, set_rng_state
from rosettamt.train.setup import build_model, build_sampler, check_options, prepare_run_data
from rosettamt.train.state import TrainResult, TrainState
from rosettamt.train.validate import validate, validate_directions

log = logging.getLogger("rosettamt.train")

BatchHook = Callable[[int, Batch], None]


class Trainer:
    """One training run: built from the config, then :meth:`fit`; see :func:`train`.

    ``loss_fn`` and ``project_all_positions`` (score padding positions too) exist for the
    ablations of scripts/bench_train.py; training uses the defaults.
    """

    def __init__(self, cfg: C.TrainConfig, run_dir: Path, on_batch: Optional[BatchHook] = None,
                 loss_fn: Optional[LossFn] = None, project_all_positions: bool = False) -> None:
        self.cfg, self.tc = cfg, cfg.trainer
        self.on_batch = on_batch
        self.loss_fn: LossFn = loss_fn or label_smoothed_loss
        self.project_all_positions = project_all_positions
        self.dist = D.from_env()
        self.device = resolve_device(self.tc.device, self.dist.local_rank)
        D.init(self.dist, self.device)
        self.run_dir = Path(D.broadcast_object(str(run_dir)))  # every rank uses rank 0's directory
        self.ckpt_dir = self.run_dir / CHECKPOINT_DIR
        self.threads = set_threads(self.tc.threads, self.dist.local_world_size) if self.device.type == "cpu" else 0
        self.amp = autocast_dtype(self.tc.precision, self.device)
        check_options(cfg)
        # Everything below runs in the same order for a fresh and a resumed run: exact resumption.
        seed_everything(cfg.seed)
        resume_from = resume_path(self.tc, self.run_dir, self.ckpt_dir)
        self.data = prepare_run_data(cfg, self.dist)
        self.model = build_model(cfg, self.data.tokenizer, self.device)
        if self.dist.enabled:  # same init everywhere (seeded), different dropout masks per rank
            torch.manual_seed(cfg.seed + self.dist.rank)
        self.optimizer = build_optimizer(self.model, cfg.optim, self.device)
        self.scheduler = build_scheduler(self.optimizer, cfg.optim, self.tc.max_steps)
        self.train_ids = self.data.ids[cfg.data.train_split]
        self.sampler = build_sampler(cfg, self.train_ids, self.dist, self.data.groups)
        self.state = TrainState()
        rng_state = None
        if resume_from is not None:
            rng_state = restore(resume_from, cfg, self.data.tokenizer, self.model, self.optimizer, self.scheduler,
                                self.sampler, self.state, self.dist.rank, self.dist.world_size,
                                last_path=self.ckpt_dir / LAST)
        self._sampler_resumed = resume_from is not None  # the first epoch goes on where it stopped
        # fixed for the run; converted once (OmegaConf takes tens of ms per conversion)
        self.config_dict, self.model_config_dict = C.to_dict(cfg), C.to_dict(cfg.model)
        self.meter = ThroughputMeter(self.device, self.dist.world_size)
        ids = [self.device.index] if self.device.type == "cuda" else None
        ddp = (lambda m: nn.parallel.DistributedDataParallel(m, device_ids=ids)) if self.dist.enabled else None
        # DDP, bf16 weight copies (then no autocast: train_amp None), torch.compile
        self.train_model, self.train_amp = training_model(self.model, self.tc, self.amp, self.device, ddp)
        self.outputs: Optional[RunOutputs] = None  # rank 0 only
        if self.dist.is_main:
            self.outputs = RunOutputs(cfg, self.run_dir, self.ckpt_dir, self.data, self.state.step)
            self._describe()
        self.signals = StopSignals(self.dist.enabled)  # SIGINT / SIGTERM: stop after the step, save last.pt
        if rng_state is not None:  # last: nothing after this may draw random numbers before step 1
            set_rng_state(rng_state)

    def _describe(self) -> None:
        tok, val_split = self.data.tokenizer, self.cfg.data.val_split
        log.info("run directory: %s", self.run_dir)
        log.info("device %s, %s, %d threads, world size %d", self.device,
                 precision_label(self.amp, self.train_amp), self.threads, self.dist.world_size)
        log.info("model: %s parameters; vocab src %d / tgt %d (%s)", f"{count_parameters(self.model):,}",
                 tok.src_vocab_size, tok.tgt_vocab_size, "joint" if tok.joint else "separate")
        log.info("train: %d pairs, %d batches/epoch per rank (padding %.1f%%); val: %d pairs, BLEU on %d",
                 len(self.train_ids), len(self.sampler), 100 * self.sampler.padding_fraction,
                 len(self.data.ids[val_split]), self.outputs.val_sentences())

    # ---- the loop ----------------------------------------------------------------------------

    def batches(self) -> Iterator[Batch]:
        """Batches across epochs; ``state.epoch`` counts finished epochs; stops at trainer.max_epochs."""
        resumed = self._sampler_resumed
        while not (self.tc.max_epochs > 0 and self.state.epoch >= self.tc.max_epochs):
            if not resumed:
                self.sampler.set_epoch(self.state.epoch)
            resumed = False
            for rows in self.sampler:
                yield collate_rows(self.train_ids, rows)  # one Arrow read per batch
            self.state.epoch += 1

    def fit(self) -> TrainResult:
        """Train until the first stop condition, then finish the run (see :meth:`_finish`)."""
        tc, state = self.tc, self.state
        state.start_clock()
        self.model.train()
        stream = self.batches()
        self.meter.reset()
        progress = Progress(tc, state.step, enabled=self.dist.is_main)
        # A resumed run whose time is already spent stops before taking a step, like an uninterrupted one.
        stop = self._time_up() if tc.max_time > 0 else ""
        with self.signals:  # from here SIGINT / SIGTERM only ask to stop after the step
            with progress:
                while not stop:
                    if tc.max_steps > 0 and state.step >= tc.max_steps:
                        stop = "max_steps"
                        break
                    micro = list(itertools.islice(stream, self.cfg.optim.accum_steps))
                    if len(micro) < self.cfg.optim.accum_steps:  # trainer.max_epochs reached
                        stop = "max_epochs"
                        break
                    self.train_step(micro)
                    progress.update(state.step)
                    boundary = state.step % tc.log_every == 0
                    if boundary:
                        self._log_window(progress)
                    with self.meter.paused():  # tokens/s counts training time only
                        if tc.val_every > 0 and state.step % tc.val_every == 0:
                            stop = self._validate_and_save(periodic=self._save_step())
                            boundary = True
                        elif self._save_step():
                            self._save(last=True, periodic=True)
                    if not stop and tc.max_time > 0 and (boundary or not self.dist.enabled):
                        stop = self._time_up()  # every step alone; at log/val steps with DDP (a collective)
                    stop = reason(self.signals.poll()) or stop  # every step on every rank (collective)
                if self.meter.steps > 0:  # the steps since the last log line
                    self._log_window(progress)
            return self._finish(stop or "max_steps")

    def train_step(self, micro: List[Batch]) -> None:
        """One optimizer step over the micro-batches (gradient accumulation); advances ``state.step``."""
        n_tokens = sum(b.n_tgt_tokens for b in micro)
        scale: Any = 1.0 / max(n_tokens, 1)
        if self.dist.enabled:  # normalise by the target tokens of all ranks: every token weighs the same
            total = D.all_reduce_sum(torch.tensor(float(n_tokens), device=self.device))  # stays a tensor: no sync
            scale = self.dist.world_size / total  # DDP averages gradients over ranks
        smoothing, pad = self.cfg.optim.label_smoothing, self.cfg.model.pad_id
        for i, batch in enumerate(micro):
            if self.on_batch is not None:
                self.on_batch(self.state.step + 1, batch)
            b = batch.pin_memory().to(self.device, non_blocking=True) if self.device.type == "cuda" else batch
            rows = self.target_rows(batch)  # non-padding target positions: the only ones projected and scored
            target = b.tgt_out if rows is None else b.tgt_out.reshape(-1).index_select(0, rows)  # (K,)
            last = i == len(micro) - 1
            sync = self.train_model.no_sync() if self.dist.enabled and not last else contextlib.nullcontext()
            with sync:
                out = micro_batch_loss(self.train_model, b, rows, target, smoothing, pad, self.device, self.train_amp,
                                       self.loss_fn, self.tc.rdrop_alpha)
                (out.loss * scale).backward()
            self.meter.add(out.ce, out.nll, batch.n_src_tokens, batch.n_tgt_tokens, out.kl)
        grad_norm = None
        if self.cfg.optim.clip_norm > 0:
            grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.clip_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.meter.end_step(grad_norm)
        self.state.step += 1

    def target_rows(self, batch: Batch) -> Optional[torch.Tensor]:
        """Flat indices of the batch's non-padding target positions, on the training device.

        Computed from the host copy so that CUDA never waits on a nonzero(). None (with
        ``project_all_positions``) means "project every position", padding included.
        """
        if self.project_all_positions:
            return None
        rows = (batch.tgt_out.reshape(-1) != self.cfg.model.pad_id).nonzero().squeeze(1)  # (K,)
        return rows.to(self.device, non_blocking=True) if self.device.type == "cuda" else rows

    def _log_window(self, progress: Progress) -> None:
        """One ``kind: train`` record for the steps since the last (a collective under DDP)."""
        s = self.meter.summary()
        record = {"kind": "train", "step": self.state.step, "epoch": self.state.epoch + self._epoch_fraction(),
                  "loss": s["loss"], "nll": s["nll"], "ppl": s["ppl"], "lr": self.scheduler.get_last_lr()[0],
                  **s, "time": self.state.elapsed()}  # the keys in the order metrics.jsonl always had
        if self.dist.is_main:
            self.outputs.write(record)
            progress.log(record)
        self.meter.reset()

    def _save_step(self) -> bool:
        return self.tc.save_every > 0 and self.state.step % self.tc.save_every == 0

    def _epoch_fraction(self) -> float:
        n = len(self.sampler)
        return min(1.0, self.sampler.state_dict().get("position", 0) / n) if n else 0.0

    def _time_up(self) -> str:
        """Rank 0's clock decides for every rank, so all ranks stop after the same step."""
        up = self.state.elapsed() >= self.tc.max_time
        return "max_time" if D.broadcast_object(up) else ""

    # ---- validation and checkpoints ----------------------------------------------------------

    def _validate(self, model: nn.Module) -> Dict[str, float]:
        run = validate if self.outputs.valsets is None else validate_directions  # multilingual: per direction
        return run(model, self.outputs.valsets or self.outputs.valset, self.data.tokenizer, self.cfg.decode,
                   self.device, self.amp, self.cfg.optim.label_smoothing, self.cfg.model.pad_id)

    def _validate_and_save(self, periodic: bool, final: bool = False) -> str:
        """Validate (rank 0), track early stopping, save last/best; returns a stop reason or ''."""
        stop, bleu, state = "", None, self.state
        if self.dist.is_main:
            t = time.perf_counter()
            scores = self._validate(self.model)
            bleu = scores["bleu"]
            improved = state.record_validation(scores)
            if self.tc.patience > 0 and state.bad_validations >= self.tc.patience:
                stop = "early_stopping"
            self.outputs.validation(scores, state, state.epoch + self._epoch_fraction(), time.perf_counter() - t,
                                    improved)
        state.val_step = state.step
        stop = D.broadcast_object(stop)
        self._save(last=final or self._save_step(), periodic=periodic, bleu=bleu)
        return stop

    def _save(self, last: bool, periodic: bool, bleu: Optional[float] = None) -> None:
        best = bleu is not None and self.dist.is_main and self.outputs.saver.is_best(bleu)
        if not D.broadcast_object(last or periodic or best):  # only rank 0 knows what is best
            return
        ckpt = snapshot(self.model, self.optimizer, self.scheduler, self.sampler, self.state, self.data,
                        self.config_dict, self.model_config_dict, self.dist.world_size)  # a collective
        if last:
            self.state.saved_step = self.state.step
        if self.dist.is_main:
            written = self.outputs.saver.save(ckpt, self.state.step, last=last, bleu=bleu, periodic=periodic)
            if written:
                log.info("saved %s", ", ".join(p.name for p in written))
        D.barrier()

    # ---- the end -----------------------------------------------------------------------------

    def _finish(self, stop: str) -> TrainResult:
        """Validate and save the last step, average, pick the best checkpoint, score the test splits.
        After a signal: save last.pt as it is (no validation), say how to resume, raise Interrupted."""
        state, tc, by_signal = self.state, self.tc, stop in STOP_REASONS
        log.info("stopping at step %d (epoch %.2f): %s", state.step, state.epoch + self._epoch_fraction(), stop)
        if state.step > 0 and state.val_step != state.step and tc.val_every > 0 and not by_signal:
            self._validate_and_save(periodic=True, final=True)
        elif state.step > 0 and state.saved_step != state.step:
            self._save(last=True, periodic=not by_signal)  # no step*.pt that an uninterrupted run lacks
        signum = self.signals.poll()  # a signal during the final validation stops here too
        if signum:
            raise interrupted(signum, state, state.epoch + self._epoch_fraction(), self.run_dir, self.outputs,
                              self.dist.world_size)
        self.signals.release()  # the last step is saved: a signal during the test evaluation stops at once
        result = TrainResult(model=self.model, step=state.step, epoch=state.epoch, stop_reason=stop)
        if self.dist.is_main:
            result.best_checkpoint, result.results = finish_run(self.cfg, self.outputs, state, self._validate,
                                                                self.device)
        D.barrier()
        return result


def train(cfg: C.TrainConfig, run_dir: Path, on_batch: Optional[BatchHook] = None) -> TrainResult:
    """Train, checkpoint and evaluate one run in ``run_dir`` (every rank calls this under torchrun).

    ``on_batch(step, batch)`` is called with each micro-batch before it is used (tests, probes).
    """
    run_dir = Path(run_dir)
    try:
        with train_log(run_dir, D.from_env().is_main):
            return Trainer(cfg, run_dir, on_batch).fit()
    finally:
        D.shutdown()
