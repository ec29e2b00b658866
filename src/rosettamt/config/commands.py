"""The schemas of the inference commands (rosettamt-evaluate, -translate, -average, -export,
-serve) and :data:`SCHEMAS`, the name each top-level schema is registered under for the YAML files."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from rosettamt.config.choices import Backend, ExportFormat
from rosettamt.config.groups import (CT2Config, DataConfig, DecodeConfig, MetricConfig, PrepareConfig,
                                     TrainConfig)


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
