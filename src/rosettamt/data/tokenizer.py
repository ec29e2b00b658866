"""SentencePiece tokenizer: trained once on the train split, cached by content hash.

INTERFACE (owned by the data work; other modules rely on exactly this):

Special ids are fixed for every tokenizer rosettamt trains:
    PAD_ID = 0, UNK_ID = 1, BOS_ID = 2, EOS_ID = 3

class Tokenizer:
    joint: bool                      # one shared model for both sides
    src_vocab_size: int
    tgt_vocab_size: int
    content_hash: str                # hash of the model bytes (stored in checkpoints)
    def encode_src(self, texts: list[str]) -> list[list[int]]   # pieces only, no bos/eos
    def encode_tgt(self, texts: list[str]) -> list[list[int]]   # pieces only, no bos/eos
    def decode_tgt(self, ids: list[int]) -> str                 # detokenized; stops at EOS, drops PAD/BOS
    def src_pieces(self, text: str) -> list[str]                # subword strings, for attention plots
    def tgt_pieces(self, ids: list[int]) -> list[str]
    def state_dict(self) -> dict     # plain data: {"joint": bool, "src_model": bytes, "tgt_model": bytes|None, ...}
    @classmethod
    def from_state_dict(cls, state: dict) -> "Tokenizer"

def train_or_load(train_split: datasets.Dataset, cfg: TokenizerConfig, data_cfg: DataConfig,
                  cache_dir: Path) -> tuple[Tokenizer, bool]   # (tokenizer, cache_hit)
"""

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
