"""Before the first step: reject bad options, prepare the data on every rank, build the model and sampler."""

from __future__ import annotations

import logging
from typing import Any

import torch

from rosettamt import config as C
from rosettamt.data.batching import TokenBatchSampler, lengths
from rosettamt.errors import UserError
from rosettamt.model import Seq2SeqTransformer
from rosettamt.search.translate_ids import check_lengths
from rosettamt.train import distributed as D


def check_options(cfg: C.TrainConfig) -> None:
    """UserError for settings that cannot train, before any data is prepared.

    The decode options are checked too: the final test evaluation uses them, and a bad one
    should fail now, not after hours of training.
    """
    C.check_train(cfg)  # ranges of every number (optim, dropouts, batch size, stop condition, decode.*)
    check_lengths(cfg.decode, cfg.model.max_positions)  # a decode.min_len the model cannot generate
    from rosettamt.train.report import metric_for_tests  # the end's test scoring: say now what it will lack

    note = metric_for_tests(cfg)[1]
    if note:
        logging.getLogger("rosettamt.train").warning("%s; install it before the run ends", note)


def prepare_run_data(cfg: C.TrainConfig, dist: D.DistInfo) -> Any:
    """Rank 0 trains the tokenizer and writes the id caches; the other ranks then read them."""
    from rosettamt.data.pipeline import prepare_data

    data = None
    if dist.is_main:
        data = prepare_data(cfg.data, cfg.tokenizer, cfg.seed)
    D.barrier()
    if not dist.is_main:
        data = prepare_data(cfg.data, cfg.tokenizer, cfg.seed)
    for split in (cfg.data.train_split, cfg.data.val_split):
        if split not in data.ids or len(data.ids[split]) == 0:
            raise UserError(f"data split {split!r} is missing or empty (splits: {sorted(data.ids)}); "
                            f"see data.train_split / data.val_split")
    if dist.is_main:  # only rank 0 writes checkpoints: the profiles /detect and source=auto use
        from rosettamt.langid import LangId, corpus_texts

        data.langid = LangId.build(corpus_texts(data)).state_dict()
    return data


def build_model(cfg: C.TrainConfig, tokenizer: Any, device: torch.device) -> Seq2SeqTransformer:
    """A freshly initialised model for this tokenizer (its vocabulary goes into cfg.model, thus into checkpoints)."""
    cfg.model.src_vocab_size, cfg.model.tgt_vocab_size = tokenizer.src_vocab_size, tokenizer.tgt_vocab_size
    cfg.model.joint_vocab = tokenizer.joint
    return Seq2SeqTransformer(cfg.model).to(device)


def build_sampler(cfg: C.TrainConfig, train_ids: Any, dist: D.DistInfo, groups: Any = None) -> TokenBatchSampler:
    """Length-bucketed token batches of the train split, this rank's share of each epoch.

    ``groups`` (multilingual): the directions' parts of the train split; each epoch then draws
    from them by data.sampling, and a batch mixes directions of similar lengths."""
    src_lens, tgt_lens = lengths(train_ids)  # pieces; the sampler adds EOS/BOS
    return TokenBatchSampler(src_lens, tgt_lens, cfg.trainer.max_tokens, shuffle=True, seed=cfg.seed,
                             rank=dist.rank, world_size=dist.world_size, groups=groups)
