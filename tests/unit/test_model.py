"""Seq2SeqTransformer: presets and parameter counts, masking, causality, tying, gradient paths."""

from __future__ import annotations

import dataclasses
import functools
import math
import subprocess
import sys

import pytest
import torch
from hydra import compose, initialize_config_dir

from rosettamt.cli import params as params_cli
from rosettamt.config import ModelConfig, TrainConfig, register_schemas, to_object
from rosettamt.errors import UserError
from rosettamt.model import Seq2SeqTransformer, count_parameters, expected_parameters, sinusoidal_table
from rosettamt.paths import config_dir

V = 40
PRESETS = sorted(p.stem for p in (config_dir() / "model").glob("*.yaml"))


@functools.lru_cache(maxsize=None)
def _composed(name: str) -> ModelConfig:
    register_schemas()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg: TrainConfig = to_object(compose(config_name="train", overrides=[f"model={name}"]))
    return cfg.model


def preset(name: str, **overrides) -> ModelConfig:
    """The model config of configs/model/<name>.yaml as training composes it, with overrides."""
    return dataclasses.replace(_composed(name), **overrides)


def make_model(**overrides) -> Seq2SeqTransformer:
    torch.manual_seed(0)
    cfg = ModelConfig(d_model=32, encoder_layers=2, decoder_layers=2, n_heads=4, d_ff=64, dropout=0.0,
                      src_vocab_size=V, tgt_vocab_size=V, joint_vocab=True, max_positions=64)
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return Seq2SeqTransformer(cfg).eval()


def ragged_batch(lengths, S=None, seed=1):
    g = torch.Generator().manual_seed(seed)
    S = S or max(lengths)
    mask = torch.arange(S)[None, :] < torch.tensor(lengths)[:, None]  # (B, S)
    src = torch.randint(4, V, (len(lengths), S), generator=g).masked_fill(~mask, 0)
    return src, mask


VARIANTS = [
    {},
    {"tie_all": False},
    {"tie_output": False},
    {"joint_vocab": False, "src_vocab_size": 3000},
    {"positions": "learned", "norm": "post"},
    {"d_k": 24, "d_v": 40, "activation": "gelu"},
]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: ",".join(v) or "default")
@pytest.mark.parametrize("name", PRESETS)
def test_parameter_count_matches_hand_formula(name, variant):
    cfg = preset(name, **{"src_vocab_size": 2000, "tgt_vocab_size": 2000, "joint_vocab": True, **variant})
    with torch.device("meta"):
        model = Seq2SeqTransformer(cfg)
    assert count_parameters(model) == expected_parameters(cfg)


def test_presets_have_the_documented_sizes():
    sizes = {n: preset(n) for n in PRESETS}
    assert {"tiny", "small", "multi30k_tiny", "base"} <= set(sizes)
    s, m, b = sizes["small"], sizes["multi30k_tiny"], sizes["base"]
    assert (s.d_model, s.encoder_layers, s.decoder_layers, s.n_heads, s.d_ff) == (256, 3, 3, 4, 1024)
    assert (m.d_model, m.encoder_layers, m.n_heads, m.d_ff, m.dropout) == (128, 4, 4, 256, 0.3)
    assert (b.d_model, b.encoder_layers, b.n_heads, b.d_ff) == (512, 6, 8, 2048)
    # the base model with the paper's shared 37k vocabulary has about 63M parameters (paper: 65M)
    base = preset("base", src_vocab_size=37000, tgt_vocab_size=37000, joint_vocab=True)
    assert 60e6 < expected_parameters(base) < 66e6


def test_tiny_preset_builds_and_runs():
    model = Seq2SeqTransformer(preset("tiny", src_vocab_size=V, tgt_vocab_size=V))
    src, mask = ragged_batch([4, 2])
    assert model(src, mask, torch.randint(4, V, (2, 3))).shape == (2, 3, V)


def test_params_command_prints_every_preset(capsys):
    params_cli.main(["vocab=2000"])
    out = capsys.readouterr().out
    for name in PRESETS:
        line = next(l for l in out.splitlines() if l.split()[0] == name)
        cfg = preset(name, src_vocab_size=2000, tgt_vocab_size=2000, joint_vocab=True)
        assert line.split()[-1] == f"{expected_parameters(cfg):,}"


def test_params_command_one_preset_from_another_directory(tmp_path):
    res = subprocess.run([sys.executable, "-m", "rosettamt.cli.params", "model=small", "+vocab=8000"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    rows = res.stdout.splitlines()[1:]
    assert len(rows) == 1 and rows[0].split()[0] == "small"
    cfg = preset("small", src_vocab_size=8000, tgt_vocab_size=8000, joint_vocab=True)
    assert rows[0].split()[-1] == f"{expected_parameters(cfg):,}"


def test_params_command_shows_the_model_a_recipe_picks(capsys):
    params_cli.main(["experiment=multi30k_en_de"])
    rows = capsys.readouterr().out.splitlines()[1:]
    assert len(rows) == 1 and rows[0].split()[0] == "multi30k_tiny"
    cfg = preset("multi30k_tiny", src_vocab_size=8000, tgt_vocab_size=8000, joint_vocab=True)
    assert rows[0].split()[-1] == f"{expected_parameters(cfg):,}"
    params_cli.main(["model=tiny", "model=base"])  # one row per model= named
    assert [r.split()[0] for r in capsys.readouterr().out.splitlines()[1:]] == ["tiny", "base"]


@pytest.mark.parametrize("argv,needle", [(["model=nope"], "model/nope"), (["vocab=x"], "vocab"), (["oops"], "oops"),
                                         (["model=tiny", "model.dropout=5"], "model.dropout=5.0"),
                                         (["model=tiny", "model.d_model=1000000000"], "cannot be built")])
def test_params_command_bad_argument_is_one_line(argv, needle, capsys):
    with pytest.raises(SystemExit) as exc:
        params_cli.main(argv)
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and "\n" not in err and err.startswith("rosettamt: error:") and needle in err


def test_weight_tying():
    m = make_model()
    assert m.src_embed.weight is m.tgt_embed.weight is m.output.weight
    assert count_parameters(m) < count_parameters(make_model(tie_all=False))
    m = make_model(joint_vocab=False)
    assert m.tgt_embed.weight is m.output.weight and m.src_embed.weight is not m.tgt_embed.weight
    m = make_model(tie_output=False)
    assert m.output.weight is not m.tgt_embed.weight


@pytest.mark.parametrize("bad,needle", [
    ({"src_vocab_size": 50}, "tie_all"),
    ({"src_vocab_size": 0}, "src_vocab_size"),
    ({"n_heads": 5}, "n_heads"),
    ({"pad_id": V}, "pad_id"),
])
def test_bad_config_is_a_user_error(bad, needle):
    with pytest.raises(UserError, match=needle):
        make_model(**bad)


def test_initialisation():
    m = make_model(tie_all=False, tie_output=False, d_model=64)
    for emb in (m.src_embed, m.tgt_embed):
        assert torch.all(emb.weight[0] == 0)
        assert abs(emb.weight[1:].std().item() - 64**-0.5) < 0.02
    attn = m.encoder[0].self_attn
    bound = math.sqrt(6 / (64 + 64))  # xavier per projection
    assert attn.in_proj.weight.abs().max() <= bound and attn.in_proj.weight.abs().max() > 0.9 * bound
    assert torch.all(attn.in_proj.bias == 0)


def test_sinusoidal_positions():
    table = sinusoidal_table(50, 16)
    pos = torch.arange(50.0)
    torch.testing.assert_close(table[:, 0], torch.sin(pos))
    torch.testing.assert_close(table[:, 1], torch.cos(pos))
    torch.testing.assert_close(table[:, 6], torch.sin(pos / 10000 ** (6 / 16)))
    assert sinusoidal_table(7, 5).shape == (7, 5)


def test_embedding_is_scaled_and_positions_extend_past_the_table():
    m = make_model(max_positions=8)
    tgt = torch.randint(4, V, (1, 12))
    x = m._embed(tgt, m.tgt_embed, None, 0)
    expected = m.tgt_embed(tgt) * math.sqrt(32) + sinusoidal_table(12, 32)
    torch.testing.assert_close(x, expected)
    with pytest.raises(UserError, match="max_positions"):
        make_model(max_positions=8, positions="learned")._embed(tgt, m.tgt_embed, m.tgt_embed, 0)


@pytest.mark.parametrize("overrides", [{}, {"norm": "post", "positions": "learned"}])
def test_padding_invariance(overrides):
    """Other pad ids or more padding in the source change nothing at real positions."""
    m = make_model(**overrides)
    src, mask = ragged_batch([6, 3, 4])
    tgt = torch.randint(4, V, (3, 5))
    with torch.no_grad():
        memory = m.encode(src, mask)
        logits = m(src, mask, tgt)
        garbage = src.masked_scatter(~mask, torch.randint(4, V, (int((~mask).sum()),)))
        longer, longer_mask = torch.cat([garbage, torch.randint(4, V, (3, 5))], 1), torch.cat(
            [mask, torch.zeros(3, 5, dtype=torch.bool)], 1)
        for other_src, other_mask in ((garbage, mask), (longer, longer_mask)):
            other_memory = m.encode(other_src, other_mask)
            torch.testing.assert_close(other_memory[:, :6][mask], memory[mask], atol=1e-5, rtol=0)
            torch.testing.assert_close(m(other_src, other_mask, tgt), logits, atol=1e-5, rtol=0)
    # and the source does matter where it is real
    changed = src.clone()
    changed[1, 0] = (src[1, 0] + 1 - 4) % (V - 4) + 4
    assert not torch.allclose(m(changed, mask, tgt)[1], logits[1], atol=1e-4)


def test_projecting_selected_rows_equals_the_full_projection_and_its_gradients():
    """forward(..., rows) (what training uses to skip padding) == those rows of the full logits, gradients too."""
    from rosettamt.train.loss import label_smoothed_loss

    m = make_model(tie_all=False).train()  # untied output: its own weight gradient is compared too
    src, mask = ragged_batch([6, 3, 4])
    tgt_in, tgt_out = torch.randint(4, V, (3, 5)), torch.randint(4, V, (3, 5))
    tgt_out[1, 2:] = 0  # padding
    tgt_out[2, 4:] = 0
    rows = (tgt_out.reshape(-1) != 0).nonzero().squeeze(1)
    full = m(src, mask, tgt_in)  # (B, T, V)
    loss_full, _ = label_smoothed_loss(full, tgt_out, 0.1)
    grads_full = torch.autograd.grad(loss_full, list(m.parameters()))
    picked = m(src, mask, tgt_in, rows)  # (K, V)
    assert picked.shape == (len(rows), V) and len(rows) == int((tgt_out != 0).sum())
    torch.testing.assert_close(picked, full.reshape(-1, V)[rows], atol=1e-6, rtol=0)
    loss_rows, _ = label_smoothed_loss(picked, tgt_out.reshape(-1)[rows], 0.1)
    torch.testing.assert_close(loss_rows, loss_full)
    for g_rows, g_full in zip(torch.autograd.grad(loss_rows, list(m.parameters())), grads_full):
        torch.testing.assert_close(g_rows, g_full, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("overrides", [{}, {"norm": "post", "positions": "learned"}])
def test_causality(overrides):
    m = make_model(**overrides)
    src, mask = ragged_batch([5, 4])
    tgt = torch.randint(4, V, (2, 7))
    with torch.no_grad():
        logits = m(src, mask, tgt)
        for t in range(7):
            other = tgt.clone()
            other[:, t] = (tgt[:, t] + 1 - 4) % (V - 4) + 4
            new = m(src, mask, other)
            torch.testing.assert_close(new[:, :t], logits[:, :t], atol=1e-5, rtol=0)
            assert not torch.allclose(new[:, t:], logits[:, t:], atol=1e-4)


def test_decode_with_weights():
    m = make_model()
    src, mask = ragged_batch([5, 2])
    tgt = torch.randint(4, V, (2, 4))
    memory = m.encode(src, mask)
    logits, weights = m.decode(tgt, memory, mask, need_weights=True)
    torch.testing.assert_close(logits, m.decode(tgt, memory, mask).logits, atol=1e-5, rtol=0)
    assert m.decode(tgt, memory, mask).cross_attention is None  # only when asked for
    assert len(weights) == 2 and all(w.shape == (2, 4, 4, 5) for w in weights)
    for w in weights:
        torch.testing.assert_close(w.sum(-1), torch.ones(2, 4, 4))
        assert torch.all(w[1, :, :, 2:] == 0.0)


def test_encoder_gets_gradient_only_through_cross_attention():
    m = make_model(tie_all=False).train()
    src, mask = ragged_batch([5, 3])
    tgt = torch.randint(4, V, (2, 4))

    def encoder_grads():
        m.zero_grad(set_to_none=True)
        m(src, mask, tgt).square().mean().backward()
        params = list(m.src_embed.parameters()) + list(m.encoder.parameters()) + list(m.encoder_norm.parameters())
        return [p.grad for p in params]

    assert all(g is not None and g.abs().sum() > 0 for g in encoder_grads())
    with torch.no_grad():
        for layer in m.decoder:
            layer.cross_attn.out_proj.weight.zero_()
    grads = encoder_grads()
    assert all(g is None or torch.all(g == 0) for g in grads)
    assert m.decoder[0].self_attn.in_proj.weight.grad.abs().sum() > 0  # the decoder still learns


def test_post_norm_normalises_each_sublayer_output_and_pre_norm_does_not():
    x = torch.randn(2, 5, 32) * 3 + 1
    mask = torch.ones(2, 1, 1, 5, dtype=torch.bool)
    post = make_model(norm="post").encoder[0](x, mask)
    torch.testing.assert_close(post.mean(-1), torch.zeros(2, 5), atol=1e-5, rtol=0)
    torch.testing.assert_close(post.std(-1, unbiased=False), torch.ones(2, 5), atol=1e-3, rtol=0)
    pre = make_model(norm="pre").encoder[0](x, mask)
    assert pre.std(-1).mean() > 2  # residual stream keeps its scale
    assert isinstance(make_model(norm="post").encoder_norm, torch.nn.Identity)


def test_dropout_is_active_in_training_only():
    m = make_model(dropout=0.3, act_dropout=0.2, attn_dropout=0.1)
    src, mask = ragged_batch([5, 3])
    tgt = torch.randint(4, V, (2, 4))
    torch.testing.assert_close(m(src, mask, tgt), m(src, mask, tgt))
    m.train()
    assert not torch.allclose(m(src, mask, tgt), m(src, mask, tgt))
