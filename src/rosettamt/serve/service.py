"""The server's state between HTTP and the model: loading / ready / stopping / failed, the
search settings a request may choose (within serve.*), and one awaitable ``translate`` that
queues a request's lines on the batcher and waits, at most serve.request_timeout, for them.

The routes (app.py) parse and answer; the batcher (batcher.py) schedules; the Translator
(model.py) translates. This is what they share, so it is the object the app is made from.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from rosettamt.config import DecodeConfig, ServeConfig, resolve_decode
from rosettamt.errors import UserError
from rosettamt.serve.batcher import Batcher, Closed, QueueFull, Settings
from rosettamt.serve.model import ModelInfo, ServedModel
from rosettamt.serve.requests import ApiError, check_size, join_lines, optional_float, split_lines, whole_number

log = logging.getLogger("rosettamt.serve")


class Service:
    """One model behind one batcher; ``load`` runs in the batcher's worker thread."""

    def __init__(self, load: Callable[[], ServedModel], serve: ServeConfig, decode: DecodeConfig) -> None:
        self.cfg = serve
        self.decode = resolve_decode(decode)
        self.batcher = Batcher(load, serve.max_batch_tokens, serve.max_wait_ms / 1000.0, serve.queue_size)
        self.stopping = False

    # ------------------------------------------------------------------ state

    def start(self) -> None:
        self.batcher.start()

    @property
    def model(self) -> Optional[ServedModel]:
        return self.batcher.model  # type: ignore[return-value]

    @property
    def status(self) -> str:
        if self.batcher.load_error is not None:
            return "failed"
        if self.stopping:
            return "stopping"
        return "ok" if self.model is not None else "loading"

    def info(self) -> ModelInfo:
        """The loaded model, or 503 while there is none to answer with."""
        status = self.status
        if status == "loading":
            raise ApiError(503, "the model is loading; try again in a moment")
        if status == "stopping":
            raise ApiError(503, "the server is shutting down")
        if status == "failed":
            raise ApiError(503, f"the model failed to load: {self.batcher.load_error}")
        return self.model.info  # type: ignore[union-attr]

    def stop(self, timeout: Optional[float] = None) -> bool:
        """New requests get 503; queued ones are still answered before the worker ends."""
        self.stopping = True
        return self.batcher.close(timeout)

    def health(self) -> Dict[str, Any]:
        model = self.model
        return {"status": self.status, "model": model.info.as_dict() if model else None,
                "defaults": {"beam_size": self.decode.beam_size, "nbest": 1,
                             "length_penalty": self.decode.length_penalty},
                "limits": self.limits(), "batching": self.batcher.stats()}

    def limits(self) -> Dict[str, Any]:
        c = self.cfg
        return {"max_chars": c.max_chars, "max_sentences": c.max_sentences, "max_beam_size": c.max_beam_size,
                "max_nbest": c.max_nbest, "length_penalty": [c.min_length_penalty, c.max_length_penalty],
                "max_batch_tokens": c.max_batch_tokens, "max_wait_ms": c.max_wait_ms,
                "queue_size": c.queue_size, "request_timeout": c.request_timeout, "api_key": bool(c.api_keys)}

    # ------------------------------------------------------------------ languages

    def detect(self, text: str) -> List[Dict[str, Any]]:
        """/detect: the model's languages ranked for ``text`` by its stored profiles (rosettamt.langid);
        a model without them (saved before checkpoints stored them) answers its source language."""
        info = self.info()
        langid = self.model.langid  # type: ignore[union-attr]
        if langid is None:
            return [{"confidence": 100.0, "language": info.source}]
        return [{"confidence": conf, "language": lang} for lang, conf in langid.detect(text)]

    def detect_sources(self, items: Sequence[str], direction: Tuple[str, str]) -> List[Dict[str, Any]]:
        """source=auto: per item, the likeliest of the languages the model translates into the
        target, with its confidence among all the model's languages (so a text in the target
        language, or in none of them, shows as a low confidence); without profiles, the
        direction's source at 100 (assumed, as a bilingual server always did). Called before
        translating: once the server is stopping, info() would refuse a request already in flight."""
        info = self.info()
        langid = self.model.langid  # type: ignore[union-attr]
        sources = [s for s, t in (info.directions or ((info.source, info.target),)) if t == direction[1]]
        if langid is None:
            return [{"confidence": 100.0, "language": direction[0]} for _ in items]
        out = []
        for item in items:
            ranking = langid.detect(item)
            lang, conf = next(((lang, conf) for lang, conf in ranking if lang in sources), (direction[0], 100.0))
            out.append({"confidence": conf, "language": lang})
        return out

    # ------------------------------------------------------------------ requests

    def settings(self, beam_size: Any = None, nbest: Any = 1, length_penalty: Optional[float] = None,
                 attention: bool = False, direction: Optional[Tuple[str, str]] = None) -> Settings:
        """A request's search settings within serve.*'s bounds (400 outside), normalised as
        rosettamt-translate's are (n-best widens the beam to n); ``direction`` (checked by
        requests.pick_pair) is kept only for a multilingual model, so a bilingual one batches as before."""
        c = self.cfg
        nbest = whole_number("nbest", nbest, 1, c.max_nbest, 1)
        beam = whole_number("beam_size", beam_size, 1, c.max_beam_size, self.decode.beam_size)
        penalty = optional_float("length_penalty", length_penalty, c.min_length_penalty, c.max_length_penalty,
                                 self.decode.length_penalty)
        info = self.info()
        if attention and not info.attention:
            raise ApiError(400, f"Invalid request: attention needs backend=rosettamt (this server runs {info.backend})")
        if info.backend == "ctranslate2" and length_penalty is not None and penalty != self.decode.length_penalty:
            raise ApiError(400, "Invalid request: length_penalty: backend=ctranslate2 normalises by "
                                f"decode.length_norm={self.decode.length_norm} only")
        try:
            cfg = resolve_decode(self.decode, beam, nbest, length_penalty=penalty)
        except UserError as err:
            raise ApiError(400, f"Invalid request: {err}") from None
        src, tgt = direction if direction is not None and info.directions else (None, None)
        return Settings(cfg.beam_size, cfg.nbest, cfg.length_penalty, attention, src, tgt)

    async def translate(self, items: Sequence[str], settings: Settings) -> List[Any]:
        """Each item's n-best list (or, with attention, each item's attended candidates), in order."""
        self.info()
        lines, spans = split_lines(items)
        check_size(items, len(lines), self.cfg.max_chars, self.cfg.max_sentences)
        if settings.attention and len(lines) != len(items):
            raise ApiError(400, "Invalid request: attention takes one line per item (no newlines in q)")
        try:
            future = self.batcher.submit(lines, settings)
        except QueueFull as err:
            raise ApiError(429, f"Too many requests: {err}") from None
        except Closed as err:
            raise ApiError(503, str(err)) from None
        try:
            results = await asyncio.wait_for(asyncio.wrap_future(future), self.cfg.request_timeout)
        except asyncio.TimeoutError:
            raise ApiError(503, f"timed out after {self.cfg.request_timeout:g} s waiting for the model "
                                "(serve.request_timeout); the server is busy") from None
        except Closed as err:
            raise ApiError(503, str(err)) from None
        except UserError as err:  # settings this model cannot run (e.g. GNMT on CTranslate2)
            raise ApiError(400, f"Invalid request: {err}") from None
        if settings.attention:
            return [results[start] for start, _ in spans]
        return [join_lines(results[start:stop]) for start, stop in spans]
