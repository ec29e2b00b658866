"""decode.precision=int8: the linear layers quantized, translations through every path still whole
and close to fp32, and a one-line refusal off the CPU."""

from __future__ import annotations

import pytest
import torch

from rosettamt.config import DecodeConfig
from rosettamt.errors import UserError
from helpers.toy_checkpoint import read_lines


def test_int8_quantizes_every_linear_layer_and_keeps_the_rest_float(ckpt):
    from torch.ao.nn.quantized.dynamic import Linear as QLinear

    from rosettamt.checkpoint import load_for_inference

    model, _, _ = load_for_inference(ckpt, "cpu", "int8")
    assert not any(type(m) is torch.nn.Linear for m in model.modules())
    cfg = model.cfg
    per_attention = 4  # in_proj, out_proj, q_proj, kv_proj
    expected = (cfg.encoder_layers + 2 * cfg.decoder_layers) * per_attention + 2 * (
        cfg.encoder_layers + cfg.decoder_layers) + 1  # + FFN pairs + the output projection
    assert sum(isinstance(m, QLinear) for m in model.modules()) == expected
    assert model.tgt_embed.weight.dtype == torch.float32  # embeddings stay float


def test_int8_translates_like_fp32_through_evaluate(ckpt, toy_files, tmp_path):
    """Same number of lines, valid pieces, BLEU close to fp32, its own file names."""
    from rosettamt.evaluate import evaluate

    src_file, ref_file = toy_files["test"]
    results = {}
    for precision in ("fp32", "int8"):
        (results[precision],) = evaluate(ckpt, src_file=src_file, ref_file=ref_file,
                                         decode=DecodeConfig(strategy="beam", beam_size=4, precision=precision),
                                         output_dir=tmp_path, device="cpu", progress=False)
    fp32, int8 = results["fp32"], results["int8"]
    assert int8.hyp_file.endswith(".beam4-int8.hyp.tgt") and fp32.hyp_file.endswith(".beam4.hyp.tgt")
    hyps, refs = read_lines(int8.hyp_file), read_lines(ref_file)
    assert len(hyps) == len(refs) and all(h.strip() for h in hyps)
    same = sum(a == b for a, b in zip(read_lines(fp32.hyp_file), hyps))
    assert same >= 70, f"only {same}/{len(hyps)} int8 translations equal the fp32 ones"
    assert int8.bleu == pytest.approx(fp32.bleu, abs=3.0)


def test_int8_through_the_translator_gives_valid_pieces(ckpt):
    from rosettamt.data.tokenizer import BOS_ID, PAD_ID
    from rosettamt.translate import Translator

    lines = ["a b c", "d e", "x"]
    fp32 = Translator.from_checkpoint(ckpt, device="cpu")
    int8 = Translator.from_checkpoint(ckpt, device="cpu", decode=DecodeConfig(strategy="beam", beam_size=3,
                                                                              precision="int8"))
    out = int8.translate(lines)
    assert len(out) == len(lines) and all(isinstance(t, str) for t in out)
    src_ids = int8.tokenizer.encode_src(lines)
    from rosettamt.search import translate_ids

    hyps = translate_ids(int8.model, src_ids, DecodeConfig(strategy="beam", beam_size=3), "cpu")
    V = fp32.model.cfg.tgt_vocab_size
    assert all(0 <= t < V and t not in (PAD_ID, BOS_ID) for h in hyps for t in h[0].tokens)


def test_int8_is_refused_off_the_cpu_in_one_line(ckpt):
    from rosettamt.checkpoint import load_for_inference
    from rosettamt.model.int8 import quantize_int8

    model, _, _ = load_for_inference(ckpt, "cpu", "fp32")
    with pytest.raises(UserError, match="int8 runs on the CPU only") as err:
        quantize_int8(model, torch.device("cuda"))
    assert "\n" not in str(err.value)
