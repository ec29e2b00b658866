"""Dynamic batching: requests that arrive together are decoded together, by one worker thread.

The event loop never touches the model. A request handler submits its lines with their search
settings and awaits a future; the worker takes the oldest waiting job, adds every other
waiting job with the same settings (up to ``max_batch_tokens`` source pieces, waiting at most
``max_wait_s`` for more to arrive), runs one search over all their lines and hands each job
its own results, in order. Jobs with other settings wait, in arrival order, for the next
batch; attention requests run alone (each needs its own teacher-forced pass). The worker
also loads the model, so the server can answer "loading" while it does.

The queue is bounded by lines (``QueueFull`` -> 429); a job whose caller gave up (timeout) is
skipped. Nothing here knows about HTTP, torch or the Translator: the worker calls a
:class:`Model` (serve/model.py wraps the Translator), so the scheduling is tested with a fake one.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, List, Optional, Protocol, Sequence

from rosettamt.errors import UserError

log = logging.getLogger("rosettamt.serve")


@dataclass(frozen=True)
class Settings:
    """The search settings of one request; only jobs with equal settings share a batch."""

    beam_size: int
    nbest: int
    length_penalty: float
    attention: bool = False
    src_lang: Optional[str] = None  # a multilingual model's direction (None: a bilingual model's one pair)
    tgt_lang: Optional[str] = None


class Model(Protocol):
    """What the worker runs: the Translator behind a narrow interface (serve/model.py)."""

    def count_tokens(self, lines: Sequence[str]) -> int: ...

    def translate(self, lines: Sequence[str], settings: Settings) -> List[Any]: ...

    def attend(self, lines: Sequence[str], settings: Settings) -> List[Any]: ...


class QueueFull(Exception):
    """More lines are waiting than the queue holds (HTTP 429)."""


class Closed(Exception):
    """The batcher no longer takes work: shutting down, or the model failed to load (HTTP 503)."""


@dataclass
class Job:
    lines: List[str]
    settings: Settings
    future: Future = field(default_factory=Future)
    tokens: Optional[int] = None  # source pieces, counted by the worker when it first looks


_STOP = object()  # queued by close(): everything before it is still answered


class Batcher:
    """One worker thread, a bounded queue of jobs and the counters /health shows."""

    def __init__(self, load: Callable[[], Model], max_batch_tokens: int, max_wait_s: float,
                 queue_size: int) -> None:
        self._load = load
        self.max_batch_tokens = max_batch_tokens
        self.max_wait_s = max_wait_s
        self.queue_size = queue_size
        self._queue: "queue.Queue[Any]" = queue.Queue()
        self._held: Deque[Any] = collections.deque()  # taken from the queue, left for a later batch
        self._lock = threading.Lock()
        self._waiting = 0  # lines submitted and not yet answered or skipped
        self._closed = False
        self.loaded = threading.Event()  # set once loading ended, well or not
        self.model: Optional[Model] = None
        self.load_error: Optional[BaseException] = None
        self.counters: Dict[str, float] = {"requests": 0, "sentences": 0, "batches": 0, "max_batch_sentences": 0,
                                           "max_batch_tokens": 0, "skipped_requests": 0, "failed_batches": 0,
                                           "busy_seconds": 0.0}
        self._thread = threading.Thread(target=self._run, name="rosettamt-serve-worker", daemon=True)

    # ------------------------------------------------------------------ the event loop's side

    def start(self) -> None:
        self._thread.start()

    def submit(self, lines: List[str], settings: Settings) -> Future:
        """Queue one request's lines; the future's result is one result per line, in order."""
        job = Job(list(lines), settings)
        with self._lock:
            if self._closed:
                raise Closed("the server is shutting down")
            if self._waiting + len(lines) > self.queue_size:
                raise QueueFull(f"the queue is full ({self._waiting} lines waiting, at most {self.queue_size})")
            self._waiting += len(lines)
            self._queue.put(job)
        return job.future

    def close(self, timeout: Optional[float] = None) -> bool:
        """Take no new work, answer what is queued, stop the worker; False if it is still busy after timeout."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put(_STOP)
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def stats(self) -> Dict[str, float]:
        with self._lock:
            out = dict(self.counters, queued_sentences=self._waiting)
        out["mean_batch_sentences"] = out["sentences"] / out["batches"] if out["batches"] else 0.0
        return out

    # ------------------------------------------------------------------ the worker's side

    def _run(self) -> None:
        try:
            self.model = self._load()
        except BaseException as err:  # noqa: BLE001 - reported by the server, which then stops
            self.load_error = err
            with self._lock:
                self._closed = True
            self.loaded.set()
            while not self._queue.empty():  # nothing should be queued while loading; answer it if it is
                job = self._queue.get_nowait()
                if job is not _STOP:
                    self._finish([job], error=Closed("the model failed to load"))
            return
        self.loaded.set()
        while True:
            first = self._held.popleft() if self._held else self._queue.get()
            if first is _STOP:
                return
            self._execute(self._collect(first))

    def _tokens(self, job: Job) -> int:
        if job.tokens is None:
            job.tokens = self.model.count_tokens(job.lines) if self.model else 0
        return job.tokens

    def _collect(self, first: Job) -> List[Job]:
        """``first`` and the waiting jobs with its settings that fit the batch; the others are held."""
        batch, tokens = [first], self._tokens(first)
        if first.settings.attention:
            return batch
        kept: Deque[Any] = collections.deque()
        while self._held:  # jobs left over from earlier batches go first, in order
            job = self._held.popleft()
            if job is not _STOP and job.settings == first.settings and tokens + self._tokens(job) <= self.max_batch_tokens:
                batch.append(job)
                tokens += self._tokens(job)
            else:
                kept.append(job)
        self._held = kept
        deadline = time.monotonic() + self.max_wait_s
        while tokens < self.max_batch_tokens:
            remaining = deadline - time.monotonic()
            try:
                job = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is _STOP or job.settings != first.settings:
                self._held.append(job)
                if job is _STOP:
                    break
            elif tokens + self._tokens(job) > self.max_batch_tokens:
                self._held.append(job)
                break
            else:
                batch.append(job)
                tokens += self._tokens(job)
        return batch

    def _execute(self, batch: List[Job]) -> None:
        live = [job for job in batch if job.future.set_running_or_notify_cancel()]
        if len(live) < len(batch):
            self._finish([job for job in batch if job not in live])
        if not live:
            return
        settings = live[0].settings
        lines = [line for job in live for line in job.lines]
        started = time.perf_counter()
        try:
            run = self.model.attend if settings.attention else self.model.translate  # type: ignore[union-attr]
            results = run(lines, settings)
        except Exception as err:  # noqa: BLE001 - its callers get the error, the server goes on
            if isinstance(err, UserError):  # settings the model refuses: the callers' 400
                log.info("a batch of %d lines was refused: %s", len(lines), err)
            else:  # a bug: the callers' 500
                log.exception("a batch of %d lines failed", len(lines))
            with self._lock:
                self.counters["failed_batches"] += 1
            self._finish(live, error=err)
            return
        with self._lock:
            c = self.counters
            c["batches"] += 1
            c["requests"] += len(live)
            c["sentences"] += len(lines)
            c["max_batch_sentences"] = max(c["max_batch_sentences"], len(lines))
            c["max_batch_tokens"] = max(c["max_batch_tokens"], sum(job.tokens or 0 for job in live))
            c["busy_seconds"] += time.perf_counter() - started
        start = 0
        for job in live:
            job.future.set_result(results[start:start + len(job.lines)])
            start += len(job.lines)
        self._finish(live, answered=True)

    def _finish(self, jobs: List[Job], error: Optional[BaseException] = None, answered: bool = False) -> None:
        """The jobs leave the queue: count them out, fail them with ``error`` if given."""
        with self._lock:
            self._waiting -= sum(len(job.lines) for job in jobs)
            if not answered and error is None:
                self.counters["skipped_requests"] += len(jobs)
        if error is not None:
            for job in jobs:
                if job.future.running() or job.future.set_running_or_notify_cancel():
                    job.future.set_exception(error)
