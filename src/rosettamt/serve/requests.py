"""What a request may ask, checked before anything is queued: every refusal is an ApiError with
the HTTP status and the one-line message the caller reads as ``{"error": "..."}``.

Plain functions on plain values (no HTTP framework, no torch), shared by the LibreTranslate API
and rosettamt's /v1 API: the text items (``q``), the size limits, the API key, the language
pair, LibreTranslate's ``alternatives`` and ``format``. An item of several lines is translated
line by line (as rosettamt-translate does with a file) and its lines joined again.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Sequence, Tuple

from rosettamt.errors import UserError
from rosettamt.langs import pick_direction
from rosettamt.translate.nbest import Candidate

Direction = Tuple[str, str]


def shown(value: Any, limit: int = 60) -> str:
    """A caller's value as an error message echoes it: one printable line (escaped), at most ``limit`` characters."""
    text = value if isinstance(value, str) else repr(value)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    return text if len(text) <= limit else text[:limit] + "..."


class ApiError(Exception):
    """A refused request: ``status`` is the HTTP status, the message goes to the caller as is."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def check_items(q: Any) -> Tuple[List[str], bool]:
    """``q`` as a list of strings and whether it came as a list (then the answer is a list too)."""
    if q is None or (isinstance(q, str) and not q.strip()):
        raise ApiError(400, "Invalid request: missing q parameter")
    if isinstance(q, str):
        return [q], False
    if isinstance(q, list):
        if not q:
            raise ApiError(400, "Invalid request: q is an empty list")
        bad = next((i for i, item in enumerate(q) if not isinstance(item, str)), None)
        if bad is not None:
            raise ApiError(400, f"Invalid request: q[{bad}] is {type(q[bad]).__name__}, not a string")
        return list(q), True
    raise ApiError(400, f"Invalid request: q must be a string or a list of strings, not {type(q).__name__}")


def split_lines(items: Sequence[str]) -> Tuple[List[str], List[Tuple[int, int]]]:
    """Each item's lines, all in one list, and for each item the [start, stop) of its lines."""
    lines: List[str] = []
    spans: List[Tuple[int, int]] = []
    for item in items:
        start = len(lines)
        lines.extend(item.split("\n"))
        spans.append((start, len(lines)))
    return lines, spans


def join_lines(per_line: Sequence[Sequence[Candidate]]) -> List[Candidate]:
    """One item's n-best list from its lines' lists: candidate i joins each line's i-th (its last
    where a line has fewer) with newlines; the score is the mean over its non-empty lines."""
    if len(per_line) == 1:
        return list(per_line[0])
    out = []
    for i in range(max(len(c) for c in per_line)):
        picks = [c[min(i, len(c) - 1)] for c in per_line]
        scored = [p.score for p in picks if p.text]
        out.append(Candidate("\n".join(p.text for p in picks), sum(scored) / len(scored) if scored else 0.0))
    return out


def check_size(items: Sequence[str], n_lines: int, max_chars: int, max_sentences: int) -> None:
    """413 past the configured characters or lines of one request."""
    chars = sum(len(item) for item in items)
    if chars > max_chars:
        raise ApiError(413, f"Invalid request: {chars} characters exceed the limit of {max_chars} (serve.max_chars)")
    if n_lines > max_sentences:
        raise ApiError(413, f"Invalid request: {n_lines} lines exceed the limit of {max_sentences} "
                            "(serve.max_sentences)")


def check_key(given: Any, keys: Sequence[str]) -> None:
    """403 unless ``given`` is one of ``keys`` (when any are configured); compared in constant time."""
    if not keys:
        return
    if not isinstance(given, str) or not given:
        raise ApiError(403, "Invalid API key: this server needs api_key")
    given_bytes = given.encode("utf-8", "surrogatepass")  # a lone surrogate is a wrong key, not a crash
    if not any(hmac.compare_digest(given_bytes, key.encode("utf-8", "surrogatepass")) for key in keys):
        raise ApiError(403, "Invalid API key")


def check_pair(source: Any, target: Any, model_source: str, model_target: str) -> bool:
    """400 unless the pair is the model's (missing = the model's; source ``auto`` = its one source
    language, no detection). Returns whether the caller asked for ``auto``."""
    for name, value, served in (("source", source, model_source), ("target", target, model_target)):
        if value is None or value == served or (name == "source" and value == "auto"):
            continue
        raise ApiError(400, f"Invalid request: {name}={shown(value)} is not served: this model translates "
                            f"{model_source} to {model_target}")
    return source == "auto"


def pick_pair(source: Any, target: Any, model_source: str, model_target: str,
              directions: Sequence[Direction] = ()) -> Tuple[Direction, bool]:
    """The direction a request asks for and whether it said source=auto. A bilingual model
    (no ``directions``) takes only its own pair (:func:`check_pair`); a multilingual one any
    direction it knows, ``target`` alone picking the tag (source ``auto`` or missing: the model's
    default source for that target; both missing: its default direction). 400 otherwise."""
    if not directions:
        return (model_source, model_target), check_pair(source, target, model_source, model_target)
    for name, value in (("source", source), ("target", target)):
        if value is not None and not isinstance(value, str):
            raise ApiError(400, f"Invalid request: {name} must be a string")
    auto = source == "auto"
    try:
        pair = pick_direction(list(directions), None if auto or source == "" else source, target or None,
                              (model_source, model_target))
    except UserError as err:
        raise ApiError(400, f"Invalid request: {err}") from None
    return pair, auto


def whole_number(name: str, value: Any, low: int, high: int, default: int) -> int:
    """An int field (a form sends it as digits) within [low, high]; 400 otherwise."""
    if value is None or value == "":
        return default
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,18}", value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"Invalid request: {name} must be a whole number, not {shown(repr(value))}")
    if not low <= value <= high:
        raise ApiError(400, f"Invalid request: {name}={shown(value)} is outside [{low}, {high}]")
    return value


@dataclass
class LibreRequest:
    """A checked POST /translate (LibreTranslate's fields)."""

    items: List[str]
    as_list: bool
    alternatives: int
    auto_source: bool
    direction: Optional[Direction] = None  # (source, target) translated in


def parse_libre(fields: Mapping[str, Any], model_source: str, model_target: str, max_alternatives: int,
                keys: Sequence[str], directions: Sequence[Direction] = ()) -> LibreRequest:
    """LibreTranslate's /translate fields -> LibreRequest, or the ApiError a LibreTranslate client expects."""
    check_key(fields.get("api_key"), keys)
    items, as_list = check_items(fields.get("q"))
    for name in ("source", "target", "format"):
        if fields.get(name) is not None and not isinstance(fields.get(name), str):
            raise ApiError(400, f"Invalid request: {name} must be a string")
    fmt = fields.get("format") or "text"
    if fmt != "text":
        raise ApiError(400, f"Invalid request: format={shown(fmt)} is not supported (only text)")
    pair, auto = pick_pair(fields.get("source"), fields.get("target"), model_source, model_target, directions)
    alternatives = whole_number("alternatives", fields.get("alternatives"), 0, max_alternatives, 0)
    return LibreRequest(items, as_list, alternatives, auto, pair)


def libre_response(request: LibreRequest, results: Sequence[Sequence[Candidate]],
                   detected: Sequence[dict] = ()) -> dict:
    """{"translatedText": ...} (+ "alternatives", + "detectedLanguage", each item's, for source=auto),
    a list for a list."""
    texts = [cands[0].text for cands in results]
    alts = [[c.text for c in cands[1:request.alternatives + 1]] for cands in results]
    out: dict = {"translatedText": texts if request.as_list else texts[0]}
    if request.alternatives:
        out["alternatives"] = alts if request.as_list else alts[0]
    if request.auto_source:
        out["detectedLanguage"] = list(detected) if request.as_list else detected[0]
    return out


def optional_float(name: str, value: Optional[float], low: float, high: float, default: float) -> float:
    if value is None:
        return default
    if not low <= value <= high:
        raise ApiError(400, f"Invalid request: {name}={value} is outside [{low}, {high}]")
    return float(value)
