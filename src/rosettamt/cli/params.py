"""rosettamt-params: parameter counts of the model presets in configs/model/.

    rosettamt-params                          # every preset, vocabulary from the tokenizer config
    rosettamt-params model=small vocab=16000  # one preset (``+vocab=`` works too)
    rosettamt-params model=base tokenizer=separate model.tie_output=false

Arguments are Hydra overrides of the training config (configs/train.yaml), so any model or
tokenizer option can be changed; the vocabulary size and jointness come from the tokenizer
config, as in training. Models are built on the meta device: no memory, no time.
"""

from __future__ import annotations

import sys
from typing import List, Optional, Tuple

import torch

from rosettamt.config import ModelConfig, TrainConfig, check_train, register_schemas, to_object
from rosettamt.errors import UserError
from rosettamt.paths import config_dir

USAGE = "usage: rosettamt-params [model=NAME] [vocab=N] [other Hydra overrides of configs/train.yaml]"


def presets() -> List[str]:
    """Names of the model presets (configs/model/*.yaml)."""
    return sorted(p.stem for p in (config_dir() / "model").glob("*.yaml"))


def compose_model(overrides: List[str], vocab: Optional[int] = None) -> Tuple[str, ModelConfig]:
    """(preset name, the model config training would build for these overrides, vocabulary
    sizes filled in); every option checked as training checks it."""
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    register_schemas()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            composed = compose(config_name="train", overrides=overrides, return_hydra_config=True)
        name = str(composed.hydra.runtime.choices.get("model"))
        with open_dict(composed):
            del composed["hydra"]
        cfg: TrainConfig = to_object(composed)
    except Exception as err:  # Hydra/OmegaConf errors: an unknown preset, key or bad value
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"bad override in {' '.join(overrides)}: {first}") from None
    check_train(cfg)  # dropout, max_positions, ...: what rosettamt-train would refuse
    model = cfg.model
    size = vocab if vocab is not None else cfg.tokenizer.vocab_size
    model.src_vocab_size = model.tgt_vocab_size = size
    model.joint_vocab = cfg.tokenizer.joint
    return name, model


def count(cfg: ModelConfig) -> int:
    """Parameters of the model built from cfg (on the meta device, so nothing is allocated)."""
    from rosettamt.model import Seq2SeqTransformer, count_parameters

    try:
        with torch.device("meta"):
            return count_parameters(Seq2SeqTransformer(cfg))
    except (RuntimeError, ValueError, OverflowError) as err:  # sizes torch cannot even describe
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise UserError(f"model d_model={cfg.d_model} d_ff={cfg.d_ff} vocab={cfg.tgt_vocab_size}: "
                        f"cannot be built ({first})") from None


def _parse(argv: List[str]) -> tuple[List[str], Optional[int]]:
    """Split argv into Hydra overrides and the ``vocab=N`` shorthand."""
    overrides, vocab = [], None
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep:
            raise UserError(f"argument {arg!r} is not key=value ({USAGE})")
        if key.lstrip("+") == "vocab":
            if not value.isdigit() or int(value) <= 0:
                raise UserError(f"vocab={value!r}: expected a positive integer")
            vocab = int(value)
        else:
            overrides.append(arg)
    return overrides, vocab


def run(argv: List[str]) -> None:
    overrides, vocab = _parse(argv)
    keys = [o.split("=", 1)[0].lstrip("+") for o in overrides]
    chosen = [o.split("=", 1)[1] for o, k in zip(overrides, keys) if k == "model"]
    rest = [o for o, k in zip(overrides, keys) if k != "model"]
    # model=NAME (one row each), else a recipe's own model (experiment=), else every preset
    names = chosen or ([None] if "experiment" in keys else presets())
    rows = []
    for preset in names:
        name, cfg = compose_model(rest if preset is None else [*rest, f"model={preset}"], vocab)
        layers = f"{cfg.encoder_layers}+{cfg.decoder_layers}"
        rows.append(
            f"{name:<16}{cfg.d_model:>8}{layers:>8}{cfg.n_heads:>7}{cfg.d_ff:>7}"
            f"{cfg.tgt_vocab_size:>8}{count(cfg):>14,}"
        )
    print(f"{'model':<16}{'d_model':>8}{'layers':>8}{'heads':>7}{'d_ff':>7}{'vocab':>8}{'params':>14}")
    print("\n".join(rows))


def main(argv: Optional[List[str]] = None) -> None:
    """Console script entry point; a bad argument prints one line and exits with status 2."""
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__.strip())
        return
    try:
        run(argv)
    except UserError as err:
        print(f"rosettamt: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
