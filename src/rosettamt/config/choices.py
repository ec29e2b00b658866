"""The fixed-value options of the config schemas (``model.norm=pre``, ``decode.strategy=beam``...):
string enums that Hydra checks when the config is composed."""

from __future__ import annotations

from enum import Enum


class Choice(str, Enum):
    """A string option with a fixed set of values; Hydra rejects anything else.

    Members compare equal to their string value (``Norm.pre == "pre"``).
    """

    def __str__(self) -> str:
        return str(self.value)


class Source(Choice):
    multi30k = "multi30k"
    hub = "hub"
    files = "files"


class SpmType(Choice):
    bpe = "bpe"
    unigram = "unigram"


class Activation(Choice):
    relu = "relu"
    gelu = "gelu"


class Norm(Choice):
    pre = "pre"
    post = "post"


class Positions(Choice):
    sinusoidal = "sinusoidal"
    learned = "learned"


class OptimName(Choice):
    adam = "adam"
    adamw = "adamw"


class Schedule(Choice):
    inverse_sqrt = "inverse_sqrt"
    cosine = "cosine"
    constant = "constant"


class Precision(Choice):
    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"


class DecodePrecision(Choice):
    """decode.precision: Precision's values, plus int8 (decoding only, on the CPU)."""

    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"
    int8 = "int8"  # the linear layers with int8 weights, dynamically quantised activations (model/int8.py)


class Progress(Choice):
    auto = "auto"
    bar = "bar"
    log = "log"


class Select(Choice):
    """trainer.select: which end-of-run candidate is the run's model (train/select.py)."""

    val_bleu = "val_bleu"  # the highest validation BLEU among the candidates; ties go to the simplest
    best = "best"  # always the best single checkpoint by validation BLEU
    average_last = "average_last"  # always the average of the last trainer.average_last checkpoints
    average_best = "average_best"  # always the average of the best trainer.average_best checkpoints


class Strategy(Choice):
    greedy = "greedy"
    beam = "beam"


class LengthNorm(Choice):
    gnmt = "gnmt"
    average = "average"
    none = "none"


class Backend(Choice):
    rosettamt = "rosettamt"  # the checkpoint, searched by rosettamt.search
    ctranslate2 = "ctranslate2"  # an export of rosettamt-export format=ctranslate2 (model_dir=DIR)


class Sampling(Choice):
    temperature = "temperature"  # p(direction) proportional to n^(1/T): T=1 as the data is, larger T flatter
    uniform = "uniform"  # every direction equally often


class ExportFormat(Choice):
    ctranslate2 = "ctranslate2"
    hf = "hf"
    argos = "argos"


MULTI30K_LANGS = ("en", "de", "fr", "cs")
MULTI30K_SPLITS = ("train", "val", "test_2016_flickr", "test_2017_flickr")
