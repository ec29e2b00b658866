"""decode.precision=int8: the model's linear layers with int8 weights, for decoding on the CPU.

PyTorch's dynamic quantization (torch.ao.quantization.quantize_dynamic, fbgemm/oneDNN int8
GEMMs): each nn.Linear's weight is stored as int8 with one scale per output row (per-channel),
and each call quantizes its input on the fly, multiplies in int8 with int32 accumulation and
returns float32. Embeddings, layer norms, attention itself (softmax(QK^T)V) and the search stay
in float32. Covered: the encoder's and decoder's attention projections and feed-forward layers,
and the output projection (which reads the largest weight of a small model each step).

Cross-attention projects queries and keys/values with slices of one fused weight (attention.py);
a quantized layer has no weight to slice, so each MultiHeadAttention first gets q_proj / kv_proj,
plain linears holding those slices, which are quantized with the rest. Inference only: the
quantized model cannot be trained or exported.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from rosettamt.errors import UserError
from rosettamt.model.attention import MultiHeadAttention


def quantize_int8(model: nn.Module, device: torch.device) -> nn.Module:
    """The float32 model (eval mode, on the CPU) with its linear layers in int8, in place."""
    if device.type != "cpu":
        raise UserError(f"decode.precision=int8 runs on the CPU only (device={device}); "
                        "use device=cpu, or decode.precision=bf16 on a GPU")
    engines = torch.backends.quantized.supported_engines
    if not any(e in engines for e in ("x86", "fbgemm", "onednn")):
        raise UserError(f"decode.precision=int8: this PyTorch has no int8 CPU engine ({', '.join(engines)})")
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    for module in model.modules():
        if isinstance(module, MultiHeadAttention):
            _split_projections(module)
    with warnings.catch_warnings():  # PyTorch marks torch.ao quantization as moving to torchao
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        quantize_dynamic(model, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
    model.int8 = True  # decode_tag and the benchmark read it
    return model


def _split_projections(attn: MultiHeadAttention) -> None:
    """attn.q_proj / attn.kv_proj: the query rows and the key|value rows of the fused in_proj."""
    hk = attn.n_heads * attn.d_k
    weight, bias = attn.in_proj.weight.detach(), attn.in_proj.bias.detach()
    attn.q_proj = _linear(weight[:hk], bias[:hk])
    attn.kv_proj = _linear(weight[hk:], bias[hk:])


def _linear(weight: torch.Tensor, bias: torch.Tensor) -> nn.Linear:
    out_features, in_features = weight.shape
    lin = nn.Linear(in_features, out_features)
    with torch.no_grad():
        lin.weight.copy_(weight)
        lin.bias.copy_(bias)
    return lin.eval()
