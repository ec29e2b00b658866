"""Typed configuration: one dataclass per Hydra config group.

The YAML files under ``configs/`` only set values; the schema (which keys exist
and their types) lives here and is registered with Hydra's ConfigStore, so a
misspelt key or a wrong type is rejected by Hydra when the config is composed.
Entry points call :func:`to_object` once; everything below them takes these
dataclasses, never a DictConfig.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Optional

from omegaconf import DictConfig, OmegaConf

from rosettamt.errors import UserError


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


@dataclass
class DataConfig:
    """Where the parallel text comes from (``source`` picks the loader)."""

    source: Source = Source.multi30k
    src_lang: str = "en"
    tgt_lang: str = "de"
    # multi30k: directory holding {split}.{lang}.gz (or plain); downloaded into when empty
    dir: str = "data/multi30k"
    download: bool = True
    url: str = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw"
    # hub: a hub dataset name, or a local directory written by Dataset(Dict).save_to_disk
    hub_name: Optional[str] = None
    hub_config: Optional[str] = None
    hub_revision: Optional[str] = None
    # our split name -> the dataset's split name (e.g. val: validation)
    hub_splits: Dict[str, str] = field(default_factory=dict)
    # two plain columns instead of the usual `translation: {src: .., tgt: ..}` record
    src_column: Optional[str] = None
    tgt_column: Optional[str] = None
    # files: split -> [src_file, tgt_file] or [two_column_tsv]
    files: Dict[str, List[str]] = field(default_factory=dict)
    # multilingual (one model, many directions; see rosettamt/langs.py): every ordered pair among
    # data.langs, or the directions in data.pairs (src-tgt); both unset = bilingual src_lang -> tgt_lang.
    # src_lang/tgt_lang: the default direction (the first direction when they do not name one).
    langs: Optional[List[str]] = None
    pairs: Optional[List[str]] = None
    # files: direction -> split -> [src_file, tgt_file] or [tsv] (like data.files, one per direction);
    # data.files itself may instead hold {src}/{tgt} in its paths (train.{src}) for every direction
    pair_files: Dict[str, Dict[str, List[str]]] = field(default_factory=dict)
    # how often each direction's train pairs are drawn per epoch (multilingual only)
    sampling: Sampling = Sampling.temperature
    sampling_temperature: float = 5.0
    # which splits play which role
    train_split: str = "train"
    val_split: str = "val"
    test_splits: List[str] = field(default_factory=lambda: ["test_2016_flickr", "test_2017_flickr"])
    # train pairs longer than this many subword tokens (either side) are dropped
    max_len: int = 128
    cache_dir: str = "data/cache"
    num_proc: int = 1


@dataclass
class TokenizerConfig:
    type: SpmType = SpmType.bpe
    vocab_size: int = 8000
    joint: bool = True  # one shared vocabulary for both languages
    character_coverage: float = 1.0
    input_sentence_size: int = 1_000_000  # sentences sampled for training (0 = all)
    seed: int = 1


# Positions a model may have: the position table (and a learned one's weights) is built whole,
# so a claim of 10**12 positions must fail as an option, not as an allocation of terabytes.
MAX_POSITIONS = 1 << 20


@dataclass
class ModelConfig:
    d_model: int = 256
    encoder_layers: int = 3
    decoder_layers: int = 3
    n_heads: int = 4
    d_k: Optional[int] = None  # query/key size per head; None = d_model // n_heads
    d_v: Optional[int] = None  # value size per head; None = d_k
    d_ff: int = 1024
    dropout: float = 0.1
    attn_dropout: float = 0.0
    act_dropout: float = 0.0
    activation: Activation = Activation.relu
    norm: Norm = Norm.pre
    positions: Positions = Positions.sinusoidal
    max_positions: int = 1024  # at most MAX_POSITIONS
    scale_embedding: bool = True
    tie_output: bool = True  # target embedding == output projection
    tie_all: bool = True  # also share the source embedding when the vocabulary is joint
    # filled in from the tokenizer by the trainer; stored with the checkpoint
    src_vocab_size: int = 0
    tgt_vocab_size: int = 0
    joint_vocab: bool = False
    pad_id: int = 0


@dataclass
class OptimConfig:
    name: OptimName = OptimName.adamw
    lr: float = 1e-3  # peak learning rate, reached at the end of warmup
    betas: List[float] = field(default_factory=lambda: [0.9, 0.98])
    eps: float = 1e-9
    weight_decay: float = 0.0
    schedule: Schedule = Schedule.inverse_sqrt
    warmup_steps: int = 4000
    min_lr: float = 0.0  # floor for cosine
    clip_norm: float = 1.0  # 0 = no clipping
    accum_steps: int = 1
    label_smoothing: float = 0.1
    fused: Optional[bool] = None  # None = fused kernels where available


@dataclass
class TrainerConfig:
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: Precision = Precision.auto  # auto: bf16 on CUDA, fp32 on CPU
    # with bf16: the forward on a bf16 copy of the weights (activations stay bf16; the fp32 weights
    # are the optimizer's master copy) instead of autocast; None = auto: on for the CPU (train/fast.py)
    bf16_weights: Optional[bool] = None
    compile: bool = False
    threads: int = 0  # CPU intra-op threads; 0 = one per physical core
    # CPU + glibc: keep freed memory in the process instead of unmapping big blocks (logits and
    # their gradients) and page-faulting them back in at every step; see rosettamt/device.py
    keep_freed_memory: bool = True
    max_tokens: int = 4096  # tokens per batch (source or target, padding counted)
    max_steps: int = 100_000
    max_epochs: int = 0  # 0 = no limit
    max_time: float = 0.0  # wall-clock seconds; 0 = no limit
    log_every: int = 100
    val_every: int = 1000
    save_every: int = 1000
    val_max_sentences: int = 0  # 0 = whole val split for BLEU; else a fixed subset
    keep_best: int = 3
    patience: int = 0  # validations without BLEU improvement before stopping; 0 = off
    average_last: int = 0  # average the last N checkpoints at the end; 0 = off
    average_best: int = 0  # average the best k checkpoints by val BLEU at the end (k <= keep_best); 0 = off
    # the rule that picks the run's model among best single / average_last / average_best (Select)
    select: Select = Select.val_bleu
    # R-Drop: 2 dropout passes per batch + alpha * symmetric KL between them (train/objective.py); 0 = off
    rdrop_alpha: float = 0.0
    resume: bool = False
    resume_from: Optional[str] = None
    evaluate_at_end: bool = True
    progress: Progress = Progress.auto  # auto: a bar on a terminal, log lines otherwise


@dataclass
class DecodeConfig:
    strategy: Strategy = Strategy.greedy
    beam_size: int = 1
    length_penalty: float = 1.0  # GNMT alpha
    length_norm: LengthNorm = LengthNorm.gnmt
    max_len_a: float = 1.5  # max output length = a * src_len + b
    max_len_b: int = 10
    min_len: int = 1
    nbest: int = 1
    max_tokens: int = 8192  # source tokens per decoding batch
    use_cache: bool = True
    # weights and activations while decoding: fp32, bf16 (GPUs and CPUs with bf16 matmul units,
    # e.g. AVX512-BF16/AMX), auto = bf16 on CUDA, fp32 on CPU, or int8 (CPU only: the encoder's and
    # decoder's linear layers and the output projection in int8). Applied when a checkpoint is loaded.
    precision: DecodePrecision = DecodePrecision.fp32
    # CPU + glibc: keep freed memory in the process (as trainer.keep_freed_memory): the K/V cache
    # grows and is reordered at every step, and unmapped blocks would page-fault back in each time
    keep_freed_memory: bool = True


@dataclass
class CT2Config:
    """CTranslate2's own settings for backend=ctranslate2."""

    compute_type: str = "default"  # default (as exported), auto, float32, int8, int8_float32, int16, bfloat16, ...
    threads: int = 0  # intra-op threads; 0 = CTranslate2's default


@dataclass
class MetricConfig:
    paper_protocol: bool = False  # also report lowercased, Moses-tokenized BLEU (needs sacremoses)


@dataclass
class PrepareConfig:
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    seed: int = 1


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    metric: MetricConfig = field(default_factory=MetricConfig)
    experiment_name: str = "default"
    seed: int = 1


@dataclass
class EvaluateConfig:
    checkpoint: Optional[str] = None
    run_dir: Optional[str] = None
    split: List[str] = field(default_factory=lambda: ["test_2016_flickr"])
    src_file: Optional[str] = None
    ref_file: Optional[str] = None
    output_dir: Optional[str] = None  # default: next to the checkpoint
    device: str = "auto"
    data: Optional[DataConfig] = None  # default: the data config stored in the checkpoint
    data_dir: Optional[str] = None  # replaces data.dir of the stored config (corpus moved since training)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    metric: MetricConfig = field(default_factory=MetricConfig)
    backend: Backend = Backend.rosettamt
    model_dir: Optional[str] = None  # backend=ctranslate2: the export folder (instead of checkpoint=/run_dir=)
    ct2: CT2Config = field(default_factory=CT2Config)
    # a multilingual checkpoint: the direction to score (rosettamt.langs.pick_direction); neither
    # given = every direction it knows (for split=), its default direction (for src_file=/ref_file=)
    src_lang: Optional[str] = None
    tgt_lang: Optional[str] = None


@dataclass
class TranslateConfig:
    checkpoint: Optional[str] = None
    run_dir: Optional[str] = None
    input: Optional[str] = None
    output: Optional[str] = None
    nbest: int = 1
    show_attention: bool = False
    attention_layer: int = -1  # decoder layer whose cross-attention is shown
    attention_head: Optional[int] = None  # None = mean over heads
    attention_grid: bool = False  # one panel per head
    # a multilingual model's direction: the language to translate into (and, where the model needs it
    # to choose, from); unset = the model's default direction. A bilingual model takes only its own pair.
    tgt_lang: Optional[str] = None
    src_lang: Optional[str] = None
    device: str = "auto"
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    backend: Backend = Backend.rosettamt
    model_dir: Optional[str] = None  # backend=ctranslate2: the export folder (instead of checkpoint=/run_dir=)
    ct2: CT2Config = field(default_factory=CT2Config)


@dataclass
class AverageConfig:
    """rosettamt-average: the mean of several checkpoints' weights (one of last / best / inputs)."""

    run_dir: Optional[str] = None
    last: int = 0  # the last N periodic checkpoints of run_dir (trainer.average_last keeps them)
    best: int = 0  # or the best N by validation BLEU
    inputs: List[str] = field(default_factory=list)  # or these checkpoint files
    output: Optional[str] = None  # default: <run_dir>/checkpoints/averaged-{last,best}N.pt


@dataclass
class ExportConfig:
    """rosettamt-export: a checkpoint in another engine's format (export/)."""

    checkpoint: Optional[str] = None
    run_dir: Optional[str] = None
    format: ExportFormat = ExportFormat.ctranslate2
    output: Optional[str] = None  # the folder to create (format=argos: it holds translate-<src>_<tgt>.argosmodel)
    overwrite: bool = False
    quantization: str = "float32"  # CTranslate2 weights (ctranslate2, argos): float32, int8, int8_float32, int16, ...
    # format=argos of a multilingual model: the one direction (src-tgt, like en-fr) the package translates
    direction: Optional[str] = None
    # the search a plain generate() call runs (format=hf), as rosettamt-translate's decode options
    decode: DecodeConfig = field(default_factory=DecodeConfig)


@dataclass
class ServeConfig:
    """rosettamt-serve's server (serve.*): where it listens, who may call it, how much one request
    may ask, how requests are batched for the model and which search settings callers may choose."""

    host: str = "127.0.0.1"  # 0.0.0.0 listens on every interface: only behind a firewall or proxy
    port: int = 5000  # 0 = any free port (the log line says which)
    api_keys: List[str] = field(default_factory=list)  # when set, every request needs one of them
    cors_origins: List[str] = field(default_factory=list)  # web pages elsewhere that may call the API ("*" = any)
    max_chars: int = 5000  # characters of q in one request (413 past it)
    max_sentences: int = 100  # lines of q in one request (413 past it)
    max_batch_tokens: int = 2048  # source pieces decoded together in one search batch
    # how long a batch waits for more requests once it has one; 0 = none: what queued while the
    # previous batch ran is taken at once (on 2 CPU cores 5 ms gave no larger batches under load)
    max_wait_ms: float = 0.0
    queue_size: int = 1000  # lines waiting for the model; more is 429
    request_timeout: float = 60.0  # seconds a request may wait for its translation (then 503)
    max_beam_size: int = 8  # beam sizes a caller may ask for: 1..max_beam_size
    max_nbest: int = 5  # n-best lists (alternatives + 1) up to this long
    min_length_penalty: float = 0.0  # length_penalty a caller may ask for, within [min, max]
    max_length_penalty: float = 2.0
    threads: int = 0  # CPU threads for the model; 0 = one per physical core (or OMP_NUM_THREADS)
    access_log: bool = False  # one log line per request


@dataclass
class ServeAppConfig:
    """rosettamt-serve: one model (checkpoint= or run_dir=) behind the HTTP API and the page."""

    checkpoint: Optional[str] = None
    run_dir: Optional[str] = None
    device: str = "auto"
    decode: DecodeConfig = field(default_factory=DecodeConfig)  # the default search of every request
    serve: ServeConfig = field(default_factory=ServeConfig)
    backend: Backend = Backend.rosettamt  # ctranslate2: an export (model_dir=), no attention to show
    model_dir: Optional[str] = None  # backend=ctranslate2: the export folder (instead of checkpoint=/run_dir=)
    ct2: CT2Config = field(default_factory=CT2Config)


SCHEMAS: Dict[str, type] = {
    "prepare_schema": PrepareConfig,
    "train_schema": TrainConfig,
    "evaluate_schema": EvaluateConfig,
    "translate_schema": TranslateConfig,
    "average_schema": AverageConfig,
    "serve_schema": ServeAppConfig,
    "export_schema": ExportConfig,
}


# ---------------------------------------------------------------------------- decode options


# A beam (or n-best list) wider than this is an allocation of gigabytes per step, not a search.
MAX_BEAM = 1000


def check_decode(cfg: DecodeConfig, prefix: str = "decode.") -> None:
    """Reject settings no search can run with, naming the option (they come from the command line)."""
    for name, value, low in (("beam_size", cfg.beam_size, 1), ("nbest", cfg.nbest, 1),
                             ("max_tokens", cfg.max_tokens, 1), ("min_len", cfg.min_len, 0),
                             ("max_len_a", cfg.max_len_a, 0), ("max_len_b", cfg.max_len_b, 0)):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise UserError(f"{prefix}{name}={value!r}: expected a number")
        if not _finite(value) or value < low:
            raise UserError(f"{prefix}{name}={value} must be a finite number >= {low}")
        if name in ("beam_size", "nbest") and value > MAX_BEAM:
            raise UserError(f"{prefix}{name}={value} must be at most {MAX_BEAM}")
    if not isinstance(cfg.length_penalty, (int, float)) or not math.isfinite(cfg.length_penalty):
        raise UserError(f"{prefix}length_penalty={cfg.length_penalty!r} must be a finite number")


def _finite(value: Any) -> bool:
    """A Python int is always finite (math.isfinite overflows on one past float's range)."""
    return isinstance(value, int) or math.isfinite(value)


def _check_ranges(prefix: str, obj: Any, rules: Dict[str, tuple]) -> None:
    """rules: field -> (low, high, low_inclusive, high_inclusive); None = unbounded. Non-finite fails."""
    for name, (low, high, low_in, high_in) in rules.items():
        value = getattr(obj, name)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and _finite(value)
        ok = ok and (low is None or value > low or (low_in and value == low))
        ok = ok and (high is None or value < high or (high_in and value == high))
        if not ok:
            lo = "" if low is None else ("[" if low_in else "(") + f"{low}"
            hi = "" if high is None else f"{high}" + ("]" if high_in else ")")
            where = f"in {lo}, {hi}" if low is not None and high is not None else (
                f">{'=' if low_in else ''} {low}" if low is not None else f"<{'=' if high_in else ''} {high}")
            raise UserError(f"{prefix}{name}={value} must be {where}")


def check_selection(tc: TrainerConfig) -> None:
    """trainer.average_best / trainer.select: the averages asked for can be made, a fixed pick is computed."""
    if tc.average_best < 0 or tc.average_best == 1 or tc.average_best > max(tc.keep_best, 0):
        raise UserError(f"trainer.average_best={tc.average_best} must be 0 (off) or 2..trainer.keep_best "
                        f"(={tc.keep_best}): only the best keep_best checkpoints are kept")
    if tc.select in (Select.average_last, Select.average_best) and getattr(tc, tc.select.value) < 2:
        raise UserError(f"trainer.select={tc.select.value} needs trainer.{tc.select.value} >= 2 "
                        f"(it is {getattr(tc, tc.select.value)})")


def check_train(cfg: "TrainConfig") -> None:
    """Every number of a training config in its range, before any data is prepared or step taken
    (decode.* too: the run ends by decoding the test splits with them)."""
    _check_ranges("optim.", cfg.optim, {
        "lr": (0.0, None, True, False), "eps": (0.0, None, False, False),
        "weight_decay": (0.0, None, True, False), "min_lr": (0.0, None, True, False),
        "clip_norm": (0.0, None, True, False), "accum_steps": (1, None, True, False),
        "label_smoothing": (0.0, 1.0, True, False), "warmup_steps": (0, None, True, False)})
    if len(cfg.optim.betas) != 2 or not all(isinstance(b, (int, float)) and 0.0 <= b < 1.0 for b in cfg.optim.betas):
        raise UserError(f"optim.betas={list(cfg.optim.betas)} must be two numbers in [0, 1)")
    _check_ranges("model.", cfg.model, {name: (0.0, 1.0, True, False)
                                        for name in ("dropout", "attn_dropout", "act_dropout")})
    _check_ranges("model.", cfg.model, {"max_positions": (1, MAX_POSITIONS, True, True)})
    # counters where 0 (or less) means "off" keep that meaning; these have no "off"
    _check_ranges("trainer.", cfg.trainer, {"max_tokens": (1, None, True, False), "log_every": (1, None, True, False),
                                            "rdrop_alpha": (0.0, None, True, False),
                                            "max_time": (0.0, None, True, False)})  # 0 = no time limit
    _check_ranges("", cfg, {"seed": (0, MAX_RUN_SEED, True, True)})
    check_tokenizer(cfg.tokenizer)
    check_selection(cfg.trainer)
    if cfg.trainer.max_steps <= 0 and cfg.trainer.max_epochs <= 0 and cfg.trainer.max_time <= 0:
        raise UserError("no stop condition: set trainer.max_steps, trainer.max_epochs or trainer.max_time")
    check_decode(cfg.decode)
    check_directions(cfg.data, cfg.tokenizer)
    from rosettamt.checkpoint.names import check_data_names

    check_data_names(cfg.data)  # what the checkpoints' users will refuse, refused now


def check_tokenizer(tok: TokenizerConfig) -> None:
    """The SentencePiece settings in range before any data work (its own messages name no option)."""
    _check_ranges("tokenizer.", tok, {"vocab_size": (1, None, True, False),
                                      "character_coverage": (0.0, 1.0, False, True),
                                      "input_sentence_size": (0, None, True, False),
                                      "seed": (0, MAX_SEED, True, True)})


MAX_SEED = 2**32 - 1  # tokenizer.seed: SentencePiece's seed is a 32-bit number
MAX_RUN_SEED = 2**63 - 1  # seed: torch.manual_seed takes 64 bits, and the ranks' seed + rank must fit


def check_directions(data: DataConfig, tokenizer: Optional[TokenizerConfig] = None) -> Any:
    """The directions of a multilingual data config (data.langs / data.pairs), checked; None if bilingual.

    A multilingual config needs one joint tokenizer and a positive sampling temperature. Its
    default direction is data.src_lang -> data.tgt_lang when that is one of its directions, else
    the first direction (``data`` is updated, so the stored config names it).
    """
    from rosettamt import langs as L

    dirs = L.directions(data.langs, data.pairs)
    if dirs is None:
        if data.pair_files:
            raise UserError("data.pair_files is for multilingual runs: set data.langs or data.pairs too")
        return None
    _check_ranges("data.", data, {"sampling_temperature": (0.0, None, False, False)})
    if tokenizer is not None and not tokenizer.joint:
        raise UserError("a multilingual run (data.langs / data.pairs) needs one joint tokenizer: "
                        "tokenizer.joint=true")
    if (data.src_lang, data.tgt_lang) not in dirs:
        data.src_lang, data.tgt_lang = dirs[0]
    names = {L.pair_name(d) for d in dirs}
    unknown = sorted(set(data.pair_files) - names)
    if unknown:
        raise UserError(f"data.pair_files has direction(s) {', '.join(unknown)} that are not trained "
                        f"(directions: {', '.join(sorted(names))})")
    return dirs


MAX_WAIT_MS = 60000  # serve.max_wait_ms: a batch waits at most a minute for company
MAX_REQUEST_TIMEOUT = 3600  # serve.request_timeout: an hour (also what a stop waits for requests in flight)


def check_serve(cfg: "ServeAppConfig") -> None:
    """rosettamt-serve's options in their ranges before the model loads (errors name the option)."""
    s = cfg.serve
    _check_ranges("serve.", s, {
        "port": (0, 65535, True, True), "max_chars": (1, None, True, False),
        "max_sentences": (1, None, True, False), "max_batch_tokens": (1, None, True, False),
        "max_wait_ms": (0, MAX_WAIT_MS, True, True), "queue_size": (1, None, True, False),
        "request_timeout": (0, MAX_REQUEST_TIMEOUT, False, True), "max_beam_size": (1, MAX_BEAM, True, True),
        "max_nbest": (1, MAX_BEAM, True, True), "min_length_penalty": (None, s.max_length_penalty, False, True),
        "max_length_penalty": (s.min_length_penalty, None, True, False), "threads": (0, None, True, False)})
    if s.queue_size < s.max_sentences:
        raise UserError(f"serve.queue_size={s.queue_size} must hold one full request "
                        f"(serve.max_sentences={s.max_sentences})")
    if any(not isinstance(k, str) or not k for k in s.api_keys):
        raise UserError("serve.api_keys: every key must be a non-empty string")
    check_decode(cfg.decode)
    default = resolve_decode(cfg.decode)
    if default.beam_size > s.max_beam_size or default.nbest > s.max_nbest:
        raise UserError(f"decode: a beam of {default.beam_size} with nbest={default.nbest} is outside "
                        f"serve.max_beam_size={s.max_beam_size} / serve.max_nbest={s.max_nbest}")
    if not s.min_length_penalty <= default.length_penalty <= s.max_length_penalty:
        raise UserError(f"decode.length_penalty={default.length_penalty} is outside [serve.min_length_penalty, "
                        f"serve.max_length_penalty] = [{s.min_length_penalty}, {s.max_length_penalty}]")


def resolve_decode(cfg: DecodeConfig, beam_size: Optional[int] = None, nbest: Optional[int] = None,
                   strategy: Any = None, **overrides: Any) -> DecodeConfig:
    """``cfg`` with per-call changes, normalised and checked: the one place decode options meet.

    A beam_size > 1 means beam search, and n-best needs a beam at least n wide, so ``nbest=3``
    alone widens a greedy or narrower search to a beam of 3. Only an explicit
    ``strategy="greedy"`` pins the beam to 1 (and then refuses nbest > 1). The result has
    ``strategy == beam`` exactly when ``beam_size > 1``.
    """
    if strategy is not None:
        try:
            strategy = Strategy(str(strategy))
        except ValueError:
            raise UserError(f"strategy={strategy}: use greedy or beam") from None
    nbest = cfg.nbest if nbest is None else nbest
    if isinstance(nbest, bool) or not isinstance(nbest, int) or not 1 <= nbest <= MAX_BEAM:
        raise UserError(f"nbest={nbest!r}: must be a whole number in [1, {MAX_BEAM}]")
    if strategy == Strategy.greedy:
        if nbest > 1:
            raise UserError(f"nbest={nbest} needs beam search, not greedy")
        beam = 1
    elif beam_size is not None:
        beam = beam_size
    elif strategy is None and cfg.strategy == Strategy.greedy:
        beam = 1
    else:
        beam = cfg.beam_size
    if isinstance(beam, bool) or not isinstance(beam, int) or beam < 1:
        raise UserError(f"beam_size={beam!r}: must be a whole number >= 1")
    beam = max(beam, nbest)
    strategy = Strategy.beam if beam > 1 else Strategy.greedy
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(DecodeConfig)})
    if unknown:
        raise UserError(f"unknown decoding option(s): {', '.join(unknown)}")
    out = dataclasses.replace(cfg, strategy=strategy, beam_size=beam, nbest=nbest, **overrides)
    check_decode(out, prefix="")
    return out


def register_schemas() -> None:
    """Register every top-level schema so that the YAML files can extend them."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    for name, schema in SCHEMAS.items():
        cs.store(name=name, node=schema)


def to_object(cfg: Any) -> Any:
    """DictConfig -> the schema dataclass instance (checked again by OmegaConf). A key that a
    ``+key=value`` override added to a schema node (not to a dict option such as
    ``data.pair_files``) is a UserError: OmegaConf would carry it along and nothing would read it."""
    _check_no_extra_keys(cfg, "")
    return OmegaConf.to_object(cfg)


def _check_no_extra_keys(node: Any, prefix: str) -> None:
    if not isinstance(node, DictConfig):
        return
    schema = OmegaConf.get_type(node)
    known = {f.name for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else None
    for key in node.keys():
        name = f"{prefix}{key}"
        if known is not None and key not in known:
            raise UserError(f"{name}: no such option in {schema.__name__} (a +key=value override adds keys "
                            "only to mapping options such as data.pair_files)")
        if OmegaConf.is_missing(node, str(key)) or OmegaConf.is_interpolation(node, str(key)):
            continue
        _check_no_extra_keys(node[key], f"{name}.")


def to_dict(obj: Any) -> Dict[str, Any]:
    """Dataclass config -> plain dict (for checkpoints and JSON)."""
    return OmegaConf.to_container(  # type: ignore[return-value]
        OmegaConf.structured(obj), resolve=True, enum_to_str=True
    )


def from_dict(schema: type, d: Dict[str, Any]) -> Any:
    """Plain dict (from a checkpoint) -> dataclass, with the schema's type checks."""
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), d))
