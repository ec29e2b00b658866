"""Token ids cached on disk; length-bucketed token batches; collate -> Batch.

INTERFACE (owned by the data work; other modules rely on exactly this):

Sequences: source = pieces + [EOS]; tgt_in = [BOS] + pieces; tgt_out = pieces + [EOS].

@dataclass
class Batch:
    src: torch.LongTensor        # (B, S) padded with PAD_ID
    src_mask: torch.BoolTensor   # (B, S) True at real tokens, False at padding
    tgt_in: torch.LongTensor     # (B, T)
    tgt_out: torch.LongTensor    # (B, T) PAD_ID where padded (the loss ignores it)
    indices: torch.LongTensor    # (B,) row of each example in its split
    n_src_tokens: int            # non-padding source tokens
    n_tgt_tokens: int            # non-padding target tokens (= labels)
    def to(self, device, non_blocking=False) -> "Batch"
    def pin_memory(self) -> "Batch"

def encode_splits(corpus: DatasetDict, tok: Tokenizer, cfg: DataConfig, cache_dir: Path) -> DatasetDict
    # columns src_ids, tgt_ids (list[int], no bos/eos); cached with datasets.map keyed like the tokenizer;
    # train pairs longer than cfg.max_len dropped (count logged), other splits never dropped

class TokenBatchSampler:       # yields lists of row indices
    def __init__(self, src_lens, tgt_lens, max_tokens, shuffle=True, seed=1, rank=0, world_size=1,
                 drop_uneven=...)
    def set_epoch(self, epoch: int) -> None
    def __iter__(self) -> Iterator[list[int]]      # resumes from the position in state_dict
    def __len__(self) -> int                       # batches this rank yields per epoch
    def state_dict(self) -> dict                   # {"epoch": int, "position": int} (plain data)
    def load_state_dict(self, state: dict) -> None
    padding_fraction: float

def collate(src_ids: list[list[int]], tgt_ids: list[list[int]], indices: list[int]) -> Batch
def make_batches(ids: Dataset, max_tokens: int, ...) -> list[list[int]]  # for val/test decoding, no shuffle
"""
