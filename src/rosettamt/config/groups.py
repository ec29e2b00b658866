"""The schema of each config group the training side composes (data, tokenizer, model, optim,
trainer, decode, metric) and of rosettamt-prepare / rosettamt-train: dataclasses whose fields are
the options, their types and defaults (the YAML files under ``configs/`` only set values)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from rosettamt.config.choices import (Activation, DecodePrecision, LengthNorm, Norm, OptimName, Positions,
                                      Precision, Progress, Sampling, Schedule, Select, Source, SpmType,
                                      Strategy)


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
