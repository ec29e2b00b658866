"""bf16 training on weight copies (trainer.bf16_weights, train/fast.py): gradients reach the fp32 master
weights, the model is left as it was, the trainer learns with the switch on and off, fp32 is untouched."""

from __future__ import annotations

import pytest
import torch

from rosettamt.config import ModelConfig
from rosettamt.model import Seq2SeqTransformer
from rosettamt.train.fast import BF16Weights, precision_label, use_bf16_weights
from rosettamt.train.loop import Trainer

CPU, CUDA = torch.device("cpu"), torch.device("cuda")



def _model(seed: int = 0) -> Seq2SeqTransformer:
    torch.manual_seed(seed)
    cfg = ModelConfig(d_model=32, encoder_layers=2, decoder_layers=2, n_heads=4, d_ff=64, dropout=0.0,
                      src_vocab_size=60, tgt_vocab_size=60, joint_vocab=True)
    return Seq2SeqTransformer(cfg)


def _batch():
    g = torch.Generator().manual_seed(1)
    src, tgt = torch.randint(4, 60, (5, 7), generator=g), torch.randint(4, 60, (5, 6), generator=g)
    mask = torch.ones(5, 7, dtype=torch.bool)
    mask[0, -2:] = False
    return src, mask, tgt


def test_the_switch_resolves_per_device_and_precision():
    bf16 = torch.bfloat16
    assert use_bf16_weights(None, bf16, CPU, distributed=False)  # auto: on for the CPU
    assert not use_bf16_weights(None, bf16, CUDA, distributed=False)  # auto: autocast on CUDA
    assert use_bf16_weights(True, bf16, CUDA, distributed=False)
    assert not use_bf16_weights(False, bf16, CPU, distributed=False)  # the switch off: autocast
    assert not use_bf16_weights(True, None, CPU, distributed=False)  # fp32: nothing to do
    assert not use_bf16_weights(True, bf16, CPU, distributed=True)  # DDP: autocast
    assert not use_bf16_weights(True, bf16, CPU, distributed=False, compile=True)


def test_gradients_reach_the_fp32_weights_and_the_model_is_restored():
    model, reference = _model(), _model()
    params = dict(model.named_parameters())
    wrapped = BF16Weights(model)
    logits = wrapped(*_batch())
    assert logits.dtype == torch.bfloat16
    logits.float().square().mean().backward()
    reference(*_batch()).square().mean().backward()
    # the same Parameter objects, still fp32 leaves, still tied; fp32 gradients close to the fp32 model's
    assert dict(model.named_parameters()) == params and model.output.weight is model.tgt_embed.weight
    assert model.pos_table.dtype == torch.float32
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        assert p.is_leaf and p.dtype == torch.float32 and p.grad.dtype == torch.float32, name
        cos = torch.nn.functional.cosine_similarity(p.grad.flatten(), q.grad.flatten(), dim=0)
        assert cos > 0.98, (name, cos)


def test_the_model_is_restored_when_the_forward_fails():
    model = _model()
    params = dict(model.named_parameters())
    src, mask, tgt = _batch()
    with pytest.raises(Exception):
        BF16Weights(model)(src, mask[:, :3], tgt)  # a mask of the wrong length
    assert dict(model.named_parameters()) == params
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.parametrize("weights", [True, False])
def test_bf16_training_learns_with_the_switch_on_and_off(make_cfg, tmp_path, weights, caplog):
    cfg = make_cfg("trainer.precision=bf16", f"trainer.bf16_weights={str(weights).lower()}", "optim.lr=0.003")
    with caplog.at_level("INFO", logger="rosettamt.train"):
        trainer = Trainer(cfg, tmp_path / "run")
    # the start-up line names the path the step really takes
    assert f"device cpu, bf16 {'weight copies' if weights else 'autocast'}, " in caplog.text
    assert isinstance(trainer.train_model, BF16Weights) == weights
    assert trainer.train_amp == (None if weights else torch.bfloat16)  # autocast only without the copies
    assert trainer.amp == torch.bfloat16  # validation still decodes under autocast
    stream = trainer.batches()
    losses = []
    for _ in range(40):
        trainer.meter.reset()
        trainer.train_step([next(stream)])
        losses.append(trainer.meter.summary()["loss"])
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.5  # it learns
    assert all(p.dtype == torch.float32 and p.grad is None for p in trainer.model.parameters())  # fp32 masters
    assert all(state["exp_avg"].dtype == torch.float32 for state in trainer.optimizer.state.values())


def test_fp32_trains_the_model_itself(make_cfg, tmp_path):
    trainer = Trainer(make_cfg("trainer.precision=fp32", "trainer.bf16_weights=true"), tmp_path / "run")
    assert trainer.train_model is trainer.model and trainer.train_amp is None
    assert precision_label(trainer.amp, trainer.train_amp) == "fp32"


def test_compiled_model_is_one_graph_for_every_batch_shape_and_matches_eager():
    """trainer.compile: source length == target length in the first batch must not become a guard
    (dynamo's duck sizing recompiled when a later batch broke it). A counting backend (no Inductor:
    the recompilation is decided before code generation) keeps this fast."""
    from torch._dynamo.testing import CompileCounter

    from rosettamt.train.fast import compiled

    torch._dynamo.reset()
    model, counter = _model(), CompileCounter()
    fast = compiled(model, CPU, backend=counter)
    g = torch.Generator().manual_seed(2)
    for B, S, T in [(4, 6, 6), (3, 5, 8), (6, 9, 4), (2, 7, 7)]:
        src, tgt = torch.randint(4, 60, (B, S), generator=g), torch.randint(4, 60, (B, T), generator=g)
        mask = torch.ones(B, S, dtype=torch.bool)
        mask[0, -1] = False
        rows = torch.arange(B * T - 1)  # every position but the last
        torch.testing.assert_close(fast(src, mask, tgt, rows), model(src, mask, tgt, rows))
    assert counter.frame_count == 1  # one compiled graph served every shape
