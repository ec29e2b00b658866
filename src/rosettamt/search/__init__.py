"""Greedy and beam search over Seq2SeqTransformer.encode() once + decode(..., cache) per step.

INTERFACE (owned by the decoding work; train/, evaluate.py and translate.py rely on exactly this):

@dataclass
class Hypothesis:
    tokens: list[int]            # generated target ids, without BOS/EOS
    score: float                 # the score beam search ranked by (length-normalised log-prob)
    log_prob: float              # sum of token log-probs (incl. EOS)

def greedy_search(model, src, src_mask, max_len_a, max_len_b, min_len=1, use_cache=True)
    -> list[list[Hypothesis]]    # one list (length 1) per sentence, batch order
def beam_search(model, src, src_mask, beam_size, length_penalty, length_norm, max_len_a, max_len_b,
                min_len=1, nbest=1, use_cache=True) -> list[list[Hypothesis]]
def translate_ids(model, src_ids: list[list[int]], cfg: DecodeConfig, device, progress: bool = False)
    -> list[list[Hypothesis]]    # sorts by length into batches of cfg.max_tokens, returns in INPUT order;
                                 # an empty source ([]) gives [Hypothesis([], ...)]
"""
