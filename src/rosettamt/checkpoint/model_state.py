"""From a checkpoint's stored fields to a model: check them, then load the weights."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, Union

from rosettamt.checkpoint.files import TRAINING_KEYS, load_checkpoint
from rosettamt.checkpoint.names import check_stored_names
from rosettamt.errors import UserError

if TYPE_CHECKING:
    import torch


def config_mismatch(expected: Dict[str, Any], found: Dict[str, Any]) -> List[str]:
    """``key=found (checkpoint) != expected (config)`` for every differing key."""
    keys = sorted(set(expected) | set(found))
    return [f"{k}={found.get(k, '<absent>')!r} (checkpoint) != {expected.get(k, '<absent>')!r} (config)"
            for k in keys if expected.get(k) != found.get(k)]


def stored_model_config(ckpt: Dict[str, Any], path: Union[Path, str]) -> Any:
    """The checkpoint's ModelConfig, checked field by field: a mapping, known keys, right types,
    values the model accepts. A checkpoint is someone else's file: any fault is a UserError."""
    import dataclasses

    from omegaconf.errors import OmegaConfBaseException

    from rosettamt.config import ModelConfig, from_dict
    from rosettamt.model import check_config

    raw = ckpt["model_config"]
    if not isinstance(raw, dict):
        raise UserError(f"checkpoint {path}: model_config is a {type(raw).__name__}, not a mapping")
    unknown = sorted(str(k) for k in set(raw) - {f.name for f in dataclasses.fields(ModelConfig)})
    if unknown:
        raise UserError(f"checkpoint {path}: model_config has unknown key(s) {', '.join(unknown)}")
    try:
        cfg = from_dict(ModelConfig, raw)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "?"
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"checkpoint {path}: model_config.{key} is invalid ({first})") from None
    try:
        check_config(cfg)
    except UserError as err:
        raise UserError(f"checkpoint {path}: stored {err}") from None
    return cfg


def check_weights(ckpt: Dict[str, Any], cfg: Any, path: Union[Path, str]) -> None:
    """Every stored tensor has the name, shape and kind the stored config implies, before any
    memory is spent on the model: a config claiming huge sizes fails here, not in an allocation."""
    import torch

    from rosettamt.model import Seq2SeqTransformer

    state = ckpt["model"]
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise UserError(f"checkpoint {path}: model is not a mapping of parameter names to tensors")
    for stack, claimed in (("encoder", cfg.encoder_layers), ("decoder", cfg.decoder_layers)):
        found = {k.split(".")[1] for k in state if k.startswith(f"{stack}.")}
        if len(found) != claimed:  # counted before building: a claim of a million layers stops here
            raise UserError(f"checkpoint {path}: model_config.{stack}_layers={claimed} but the weights "
                            f"hold {len(found)} {stack} layers")
    with torch.device("meta"):  # shapes only: nothing is allocated
        expected = Seq2SeqTransformer(cfg).state_dict()
    _check_state(state, expected, path)
    bad = [k for k, v in state.items() if not v.is_floating_point()]
    if bad:
        raise UserError(f"checkpoint {path}: weight {bad[0]} is {state[bad[0]].dtype}, not floating point")


def _check_state(state: Dict[str, Any], own: Dict[str, Any], path: Union[Path, str]) -> None:
    """UserError naming missing, unexpected and mis-shaped weights (up to five of each)."""
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} (checkpoint) != {tuple(v.shape)} (model)"
              for k, v in own.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:5])}" + (" ..." if len(unexpected) > 5 else ""))
        if shapes:
            parts.append(f"shape {'; '.join(shapes[:5])}" + (" ..." if len(shapes) > 5 else ""))
        raise UserError(f"checkpoint {path} does not fit this model: {' | '.join(parts)}")


def load_model_state(model: "torch.nn.Module", ckpt: Dict[str, Any], path: Union[Path, str],
                     expected_config: Optional[Dict[str, Any]] = None) -> None:
    """Load the weights into ``model``; a different model config or state is a UserError naming the keys."""
    if expected_config is not None:
        diff = config_mismatch(expected_config, ckpt["model_config"])
        if diff:
            raise UserError(f"checkpoint {path} was built with a different model config: {'; '.join(diff)}")
    _check_state(ckpt["model"], model.state_dict(), path)
    model.load_state_dict(ckpt["model"])


def stored_tokenizer(ckpt: Dict[str, Any], path: Union[Path, str]) -> Any:
    """The checkpoint's Tokenizer; a stored state that is not a readable tokenizer is a UserError."""
    from rosettamt.data.tokenizer import Tokenizer

    state = ckpt["tokenizer"]
    if not isinstance(state, dict):
        raise UserError(f"checkpoint {path}: tokenizer is a {type(state).__name__}, not a mapping")
    try:
        return Tokenizer.from_state_dict(state)
    except UserError as err:
        raise UserError(f"checkpoint {path}: {err}") from None


def stored_info(ckpt: Dict[str, Any]) -> Dict[str, Any]:
    """What a checkpoint says about itself for banners and the server (src_lang, tgt_lang, step,
    val_bleu), each None unless it has a sane type: it may be someone else's file, and a language
    code with terminal escapes or a step that is a list must not reach a screen or an API."""
    config = ckpt.get("config")
    data = config.get("data") if isinstance(config, dict) else None
    data = data if isinstance(data, dict) else {}

    def code(value: Any) -> Optional[str]:
        return value if isinstance(value, str) and value.isprintable() and 0 < len(value) <= 32 else None

    step, bleu = ckpt.get("step"), ckpt.get("val_bleu")
    return {"src_lang": code(data.get("src_lang")), "tgt_lang": code(data.get("tgt_lang")),
            "step": step if isinstance(step, int) and not isinstance(step, bool) else None,
            "val_bleu": float(bleu) if isinstance(bleu, (int, float)) and not isinstance(bleu, bool) else None}


def load_for_inference(path: Path, device: Any, precision: str = "fp32") -> Tuple[Any, Any, Dict[str, Any]]:
    """(model in eval mode on ``device``, tokenizer, checkpoint dict) from one checkpoint file;
    precision (decode.precision: fp32, bf16 or auto) is the dtype the weights are cast to;
    int8 quantizes the linear layers (CPU only, model/int8.py).

    The stored config, weights and tokenizer are all checked before the model is built.
    """
    from rosettamt.config import Precision
    from rosettamt.device import inference_dtype, resolve_device
    from rosettamt.model import Seq2SeqTransformer

    dev = resolve_device(device)
    int8 = str(precision) == "int8"
    if int8 and dev.type != "cpu":
        raise UserError(f"decode.precision=int8 runs on the CPU only (device={dev}); use device=cpu, "
                        "or decode.precision=bf16 on a GPU")
    dtype = inference_dtype(Precision("fp32" if int8 else str(precision)), dev)
    ckpt = load_checkpoint(path, map_location="cpu")
    check_stored_names(ckpt, path)  # languages and splits become parts of output file names
    for key in TRAINING_KEYS:  # free optimizer state etc. early: inference never needs it
        ckpt.pop(key, None)
    cfg = stored_model_config(ckpt, path)
    check_weights(ckpt, cfg, path)
    tokenizer = stored_tokenizer(ckpt, path)
    if (tokenizer.src_vocab_size, tokenizer.tgt_vocab_size) != (cfg.src_vocab_size, cfg.tgt_vocab_size):
        raise UserError(f"checkpoint {path}: the stored tokenizer has vocabularies of {tokenizer.src_vocab_size} / "
                        f"{tokenizer.tgt_vocab_size} pieces, the model {cfg.src_vocab_size} / {cfg.tgt_vocab_size}")
    model = Seq2SeqTransformer(cfg)
    model.load_state_dict(ckpt["model"])
    model.to(device=dev, dtype=dtype).eval()
    if int8:
        from rosettamt.model.int8 import quantize_int8

        quantize_int8(model, dev)
    return model, tokenizer, ckpt
