"""The encoder-decoder Transformer.

INTERFACE (owned by the model work; search/, train/ and translate.py rely on exactly this):

class Seq2SeqTransformer(nn.Module):
    def __init__(self, cfg: ModelConfig)             # cfg.src_vocab_size / tgt_vocab_size / joint_vocab / pad_id filled in
    cfg: ModelConfig
    def encode(self, src: LongTensor (B,S), src_mask: BoolTensor (B,S) True=real) -> memory (B,S,D)
    def decode(self, tgt: LongTensor (N,T), memory: (B,S,D), src_mask: (B,S),
               cache: DecoderCache | None = None, need_weights: bool = False)
        -> logits (N,T,V)                            # need_weights=False
        -> (logits, cross_attn: list[(N,H,T,S)] one per decoder layer)   # need_weights=True
        Without a cache N == B and tgt is the whole prefix (causal mask inside).
        With a cache, tgt holds only the NEW positions (usually T=1); positions continue from
        cache.length; N == B * cache.beam_size (rows sentence-major: row = b * k + j).
    def forward(self, src, src_mask, tgt_in) -> logits (B,T,V)   # = decode(tgt_in, encode(src, src_mask), src_mask)
    def new_cache(self, memory: (B,S,D), src_mask: (B,S), beam_size: int = 1) -> DecoderCache
        # projects every decoder layer's cross-attention K/V from memory ONCE, shaped per sentence
        # (B,H,S,d_k) / (B,H,S,d_v): beams of a sentence share them (no copy per beam).

DecoderCache (model/cache.py, a dataclass: plain tensors, no behaviour hidden in the model)
    beam_size: int
    length: int                                      # target positions already decoded
    layers: list[LayerCache]                         # self_k, self_v: (B*k, H, t, d) grow by one per step
                                                     # cross_k, cross_v: (B, H, S, d) fixed
    src_mask: (B, S)
    def reorder(self, rows: LongTensor (B*k,)) -> None
        # beam search: row i of the new self-attention cache = row rows[i] of the old one.
        # rows must stay within their sentence (rows[b*k + j] // k == b). Cross K/V untouched.
    def select_sentences(self, keep: LongTensor (B',)) -> None
        # drop finished sentences: keep these sentence indices (cross K/V, src_mask, and their k beam rows)

Helpers: count_parameters(model) -> int; expected_parameters(cfg) -> int (by hand from the config).
"""
