"""Token ids cached on disk; length-bucketed token batches; collate -> Batch.

Sequences: source = pieces + [EOS]; tgt_in = [BOS] + pieces; tgt_out = pieces + [EOS].

Ids are computed once per (tokenizer, split text) with ``datasets.map`` and
stored as Arrow files under ``{cache_dir}/ids/<hash>/``. Training batches hold
as many sentences of similar length as fit in ``max_tokens`` *including
padding*, so a GPU sees a steady amount of work and little of it is padding.
The order of an epoch depends only on (seed, epoch), which makes it
reproducible, resumable mid-epoch and identical on every data-parallel rank
before each rank takes its own share.
"""

from __future__ import annotations

import glob
import hashlib
import logging
from dataclasses import dataclass, replace
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np
from datasets import Dataset, DatasetDict, Features, List, Value

from rosettamt.config import DataConfig
from rosettamt.data.corpus_cache import damaged_cache
from rosettamt.data.corpus import content_hash
from rosettamt.data.packing import longest_first, pack_by_tokens
from rosettamt.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizer
from rosettamt.errors import UserError

if TYPE_CHECKING:  # torch is imported where tensors are made: rosettamt-prepare never needs it
    import torch

log = logging.getLogger(__name__)

FORMAT = "rosettamt-ids-1"
ID_FEATURES = Features({"src_ids": List(Value("int32")), "tgt_ids": List(Value("int32"))})


@dataclass
class Batch:
    """One padded batch; ``indices`` maps each row back to its example in the split."""

    src: torch.Tensor  # (B, S) long, PAD_ID-padded
    src_mask: torch.Tensor  # (B, S) bool, True at real tokens
    tgt_in: torch.Tensor  # (B, T) long: BOS + pieces
    tgt_out: torch.Tensor  # (B, T) long: pieces + EOS, PAD_ID where padded (ignored by the loss)
    indices: torch.Tensor  # (B,) long
    n_src_tokens: int
    n_tgt_tokens: int

    def to(self, device: Any, non_blocking: bool = False) -> "Batch":
        return replace(self, **{k: getattr(self, k).to(device, non_blocking=non_blocking) for k in _TENSORS})

    def pin_memory(self) -> "Batch":
        """Page-locked copies, so that ``to(cuda, non_blocking=True)`` overlaps with compute."""
        return replace(self, **{k: getattr(self, k).pin_memory() for k in _TENSORS})


_TENSORS = ("src", "src_mask", "tgt_in", "tgt_out", "indices")


# ---------------------------------------------------------------------------- ids on disk


def encode_splits(corpus: DatasetDict, tok: Tokenizer, cfg: DataConfig, cache_dir: Path,
                  src_prefix: Sequence[int] = (), label: str = "") -> DatasetDict:
    """Every split as ``{src_ids, tgt_ids}`` (no BOS/EOS), cached; over-long train pairs dropped.

    ``src_prefix`` (a multilingual direction's target-tag id) starts every source; ``label``
    (the direction, e.g. ``en-de``) goes into the cache file names. The length filter counts
    the sentence's own pieces, not the prefix.
    """
    key = hashlib.sha256(f"{FORMAT}:{tok.content_hash}".encode()).hexdigest()[:32]
    root = Path(cache_dir) / "ids" / key  # one directory per tokenizer, one file per split text
    root.mkdir(parents=True, exist_ok=True)
    prefix = [int(i) for i in src_prefix]
    out = {}
    for split, ds in corpus.items():
        is_train = split == cfg.train_split
        max_len = cfg.max_len if is_train else None
        name = f"{split}.{content_hash(ds)[:16]}" + (f".max{max_len}" if is_train else "")
        if label or prefix:
            name += f".{label}.p" + "-".join(map(str, prefix))

        def encode(batch: dict[str, list[str]], max_len: int | None = max_len) -> dict[str, list]:
            src, tgt = tok.encode_src(batch["src"]), tok.encode_tgt(batch["tgt"])
            if max_len is not None:  # a batched map may return fewer rows: the length filter
                keep = [i for i, (s, t) in enumerate(zip(src, tgt)) if max(len(s), len(t)) <= max_len]
                src, tgt = [src[i] for i in keep], [tgt[i] for i in keep]
            if prefix:
                src = [prefix + s for s in src]
            return {"src_ids": src, "tgt_ids": tgt}

        cache_file = root / f"{name}.arrow"
        settings = dict(batched=True, batch_size=1000, remove_columns=ds.column_names, features=ID_FEATURES,
                        cache_file_name=str(cache_file), desc=f"encoding {split}",
                        new_fingerprint=hashlib.sha256(f"{key}-{name}".encode()).hexdigest()[:32],
                        num_proc=cfg.num_proc if cfg.num_proc > 1 else None)
        # with num_proc > 1 the cache is one file per process: NAME_0000i_of_0000n.arrow
        cached = cache_file.is_file() or any(root.glob(f"{glob.escape(name)}_*_of_*.arrow"))
        try:
            ids = ds.map(encode, load_from_cache_file=True, **settings)
        except Exception as err:  # a damaged cache file (the map itself did not run): encode again
            shards = sorted(root.glob(f"{glob.escape(name)}_*_of_*.arrow"))
            if not cached:  # nothing was cached before: the encoding itself failed; the shards other
                for shard in shards:  # workers finished are this run's own, and the next run starts clean
                    shard.unlink(missing_ok=True)
                raise
            shown = cache_file if cache_file.is_file() else root / f"{name}_*_of_{max(cfg.num_proc, 1):05d}.arrow"
            damaged_cache(shown, err, cache_file, *shards)  # which shard failed is not known: all go
            ids = ds.map(encode, load_from_cache_file=False, **settings)
        if is_train:
            dropped = len(ds) - len(ids)
            log.info("%s%s: filtered %d pairs longer than data.max_len=%d tokens", split,
                     f" {label}" if label else "", dropped, cfg.max_len)
            if len(ids) == 0:
                raise UserError(f"every {split} pair is longer than data.max_len={cfg.max_len} tokens; "
                                "raise data.max_len")
        out[split] = ids
    return DatasetDict(out)


def lengths(ids: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(src_lens, tgt_lens) in pieces, read from the Arrow list offsets without decoding the ids."""
    import pyarrow.compute as pc

    table = ids.with_format("arrow")[:]  # zero-copy slice of the memory-mapped table
    src = pc.list_value_length(table.column("src_ids")).to_numpy()
    tgt = (pc.list_value_length(table.column("tgt_ids")).to_numpy() if "tgt_ids" in table.column_names
           else np.zeros_like(src))
    return src.astype(np.int64), tgt.astype(np.int64)


# ---------------------------------------------------------------------------- batching


def padding_fraction(batches: Sequence[Sequence[int]], src_lens: np.ndarray, tgt_lens: np.ndarray) -> float:
    """Share of padding in the padded src and tgt tensors of these batches (lengths incl. EOS/BOS)."""
    real = padded = 0
    for b in batches:
        s, t = src_lens[np.asarray(b)], tgt_lens[np.asarray(b)]
        real += int(s.sum() + t.sum())
        padded += len(b) * int(s.max() + t.max())
    return 1.0 - real / padded if padded else 0.0


class TokenBatchSampler:
    """Yields lists of row indices: length-bucketed batches of at most ``max_tokens`` (padding counted).

    A batch costs ``B * max(src_len + 1, tgt_len + 1)`` tokens (EOS on the source, BOS/EOS on the
    target); an example longer than ``max_tokens`` on its own forms a batch by itself. Each epoch
    shuffles the examples within equal lengths and the order of the batches from ``(seed, epoch)``.

    With ``world_size > 1`` every rank builds the same batches and takes every ``world_size``-th
    one, so the ranks' batches are disjoint and equal in number: the batch count is first made a
    multiple of ``world_size`` by splitting the largest batches in two (``drop_uneven=True`` drops
    the surplus batches instead).

    Resuming: ``state_dict()`` is ``{"epoch", "position"}`` where position counts the batches this
    rank has yielded in that epoch; after ``load_state_dict`` iteration yields exactly the rest.
    ``set_epoch(e)`` starts epoch ``e`` from its beginning unless ``e`` is already the current epoch
    (so calling it with the resumed epoch keeps the position). Finishing an epoch moves on to the next.
    """

    def __init__(self, src_lens: Sequence[int], tgt_lens: Sequence[int], max_tokens: int,
                 shuffle: bool = True, seed: int = 1, rank: int = 0, world_size: int = 1,
                 drop_uneven: bool = False, groups: Any = None) -> None:
        self.src_lens = np.asarray(src_lens, dtype=np.int64) + 1  # + EOS
        self.tgt_lens = np.asarray(tgt_lens, dtype=np.int64) + 1  # + BOS (tgt_in) / EOS (tgt_out)
        if self.src_lens.shape != self.tgt_lens.shape:
            raise ValueError(f"{len(self.src_lens)} source lengths but {len(self.tgt_lens)} target lengths")
        if max_tokens <= 0:
            raise UserError(f"max_tokens must be positive, got {max_tokens}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        self.max_tokens, self.shuffle, self.seed = max_tokens, shuffle, seed
        self.rank, self.world_size, self.drop_uneven = rank, world_size, drop_uneven
        self.epoch, self.position = 0, 0
        self._cached: tuple[int, list[np.ndarray]] | None = None
        # multilingual: data.multilingual.DirectionGroups; each epoch packs the examples its
        # epoch_pool(seed, epoch) draws (balanced across directions) instead of every example once
        self.groups = groups

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """All ranks' batches of an epoch, in order (rank r takes items r, r + W, ...)."""
        if self._cached is not None and self._cached[0] == epoch:
            return self._cached[1]
        cost = np.maximum(self.src_lens, self.tgt_lens)
        rng = np.random.default_rng([self.seed, epoch])
        if self.groups is None:
            order = rng.permutation(len(cost)) if self.shuffle else np.arange(len(cost))
        else:
            pool = self.groups.epoch_pool(self.seed, epoch)
            order = rng.permutation(pool) if self.shuffle else pool
        order = order[np.argsort(cost[order], kind="stable")]  # buckets of equal cost, shuffled inside
        batches = pack_by_tokens(order, cost, self.max_tokens)
        if self.world_size > 1 and not self.drop_uneven:
            batches = _split_to_multiple(batches, self.world_size)
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        if self.world_size > 1 and self.drop_uneven:
            batches = batches[: len(batches) - len(batches) % self.world_size]
        self._cached = (epoch, batches)
        return batches

    def _rank_batches(self) -> list[np.ndarray]:
        return self.epoch_batches(self.epoch)[self.rank :: self.world_size]

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch, self.position = epoch, 0

    def __iter__(self) -> Iterator[list[int]]:
        epoch, batches = self.epoch, self._rank_batches()
        while self.epoch == epoch and self.position < len(batches):
            self.position += 1  # counted before yielding: a state saved after this batch skips it
            yield batches[self.position - 1].tolist()
        if self.epoch == epoch:
            self.epoch, self.position = epoch + 1, 0

    def __len__(self) -> int:
        return len(self._rank_batches())

    @property
    def padding_fraction(self) -> float:
        """Padding share of this epoch's batches (all ranks): what bucketing saves over random batches."""
        return padding_fraction(self.epoch_batches(self.epoch), self.src_lens, self.tgt_lens)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])


def _split_to_multiple(batches: list[np.ndarray], k: int) -> list[np.ndarray]:
    """Split the largest batches in two until the count is a multiple of k (no example lost or repeated)."""
    batches = list(batches)
    while len(batches) % k:
        i = max(range(len(batches)), key=lambda j: len(batches[j]))
        if len(batches[i]) < 2:  # fewer examples than ranks: repeat batches so no rank waits forever
            batches += batches[: k - len(batches) % k]
            break
        half = len(batches[i]) // 2
        batches[i : i + 1] = [batches[i][:half], batches[i][half:]]
    return batches


def make_batches(ids: Dataset, max_tokens: int, src_only: bool = False) -> list[list[int]]:
    """Deterministic batches for decoding val/test: longest first, no shuffle, nothing dropped.

    ``src_only`` bounds only the source side (decoding never sees the reference).
    """
    src, tgt = lengths(ids)
    return longest_first(src + 1 if src_only else np.maximum(src, tgt) + 1, max_tokens)


# ---------------------------------------------------------------------------- collate


def collate(src_ids: list[list[int]], tgt_ids: list[list[int]], indices: list[int]) -> Batch:
    """Pad a batch: src = x + EOS, tgt_in = BOS + y, tgt_out = y + EOS; PAD_ID elsewhere."""
    import torch

    n = len(src_ids)
    s_len = np.fromiter(map(len, src_ids), dtype=np.int64, count=n)
    t_len = np.fromiter(map(len, tgt_ids), dtype=np.int64, count=n)
    S, T = int(s_len.max(initial=0)) + 1, int(t_len.max(initial=0)) + 1
    s_flat = np.fromiter(chain.from_iterable(src_ids), dtype=np.int64, count=int(s_len.sum()))
    t_flat = np.fromiter(chain.from_iterable(tgt_ids), dtype=np.int64, count=int(t_len.sum()))
    rows = np.arange(n)

    src = np.full((n, S), PAD_ID, dtype=np.int64)  # (B, S)
    src[np.arange(S) < s_len[:, None]] = s_flat  # row-major fill == sentence order
    src[rows, s_len] = EOS_ID
    tgt_in = np.full((n, T), PAD_ID, dtype=np.int64)  # (B, T)
    tgt_in[:, 0] = BOS_ID
    tgt_in[(np.arange(T) >= 1) & (np.arange(T) <= t_len[:, None])] = t_flat
    tgt_out = np.full((n, T), PAD_ID, dtype=np.int64)  # (B, T)
    tgt_out[np.arange(T) < t_len[:, None]] = t_flat
    tgt_out[rows, t_len] = EOS_ID

    return Batch(src=torch.from_numpy(src), src_mask=torch.from_numpy(np.arange(S) <= s_len[:, None]),
                 tgt_in=torch.from_numpy(tgt_in), tgt_out=torch.from_numpy(tgt_out),
                 indices=torch.as_tensor(indices, dtype=torch.long),
                 n_src_tokens=int(s_len.sum()) + n, n_tgt_tokens=int(t_len.sum()) + n)


def collate_rows(ids: Dataset, rows: list[int]) -> Batch:
    """The Batch of these rows of an ids split (a ``tgt_ids``-less split gets empty targets)."""
    data = ids[list(rows)]
    return collate(data["src_ids"], data.get("tgt_ids") or [[] for _ in rows], list(rows))
