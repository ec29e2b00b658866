"""Which of a model's languages a text is in, for /detect and ``source=auto``.

Each language the model was trained on gets a profile built from its side of the training
corpus: the log-probabilities of its most frequent character 1- to 3-grams (lowercased, runs of
whitespace as one space, a space at each end, so word starts and ends count), and one shared
log-probability for every n-gram the profile does not keep. A text's score in a language is the
sum over its n-grams, divided by 3 because each character sits in three of them; the scores,
normalised (softmax), are the confidences. Only the model's own languages are told apart: a
bilingual en-de model says whether a text reads more like English or like German.

The profile is plain data (language -> n-gram -> float), stored in checkpoints under ``langid``
and in exports as ``langid.json``. It comes from someone's file, so :meth:`LangId.from_state`
checks every field before anything uses it. Building one reads at most MAX_LINES sentences per
language, evenly spaced, so a big corpus costs the same second or two as Multi30k. A profile
that fails a check is a warning: the model then translates without detecting.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from itertools import islice
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from rosettamt.errors import UserError

FORMAT = "rosettamt-langid-1"
FILE_NAME = "langid.json"  # in an export folder
ORDERS = (1, 2, 3)
KEEP = 4000  # n-grams kept per language
MAX_LINES = 20_000  # sentences read per language to build its profile
MAX_CHARS = 2_000  # characters of a text looked at when detecting
MAX_LANGS, MAX_GRAMS = 256, 5 * KEEP  # what a stored profile may hold
MIN_LOG_PROB = -1e4  # stored log-probabilities lie in [MIN_LOG_PROB, 0]: scores stay finite


def ngrams(text: str) -> List[str]:
    """The character 1- to 3-grams of ``text`` (lowercased, whitespace runs as one space)."""
    padded = " " + " ".join(text[:MAX_CHARS].lower().split()) + " "
    return [padded[i:i + n] for n in ORDERS for i in range(len(padded) - n + 1) if not padded[i:i + n].isspace()]


class LangId:
    """Per-language n-gram log-probabilities; :meth:`detect` ranks the languages for a text."""

    def __init__(self, profiles: Dict[str, Dict[str, float]], unseen: Dict[str, float]) -> None:
        self.profiles, self.unseen = profiles, unseen

    @property
    def languages(self) -> List[str]:
        return list(self.profiles)

    @classmethod
    def build(cls, texts: Mapping[str, Iterable[str]]) -> "LangId":
        """A profile per language from its sentences (at most MAX_LINES of them are read)."""
        profiles, unseen = {}, {}
        for lang, lines in texts.items():
            # one string of all the lines, each normalised as ngrams() does; zip counts in C
            joined = " " + " ".join(" ".join(line.lower().split()) for line in islice(lines, MAX_LINES)) + " "
            counts: Counter = Counter()
            for n in ORDERS:
                for chars, count in Counter(zip(*(joined[k:] for k in range(n)))).items():
                    gram = "".join(chars)
                    if not gram.isspace():
                        counts[gram] += count
            total = sum(counts.values()) + 1
            kept = counts.most_common(KEEP)
            rest = total - sum(c for _, c in kept)  # the +1 keeps it above zero
            profiles[lang] = {g: round(math.log(c / total), 4) for g, c in kept}
            unseen[lang] = round(math.log(rest / total / (len(counts) - len(kept) + 1)), 4)
        return cls(profiles, unseen)

    def detect(self, text: str, among: Optional[Sequence[str]] = None) -> List[Tuple[str, float]]:
        """(language, confidence in percent) for ``among`` (default: every profiled language), best first."""
        langs = [lang for lang in (among if among is not None else self.profiles) if lang in self.profiles]
        grams = Counter(ngrams(text))
        scores = [sum(count * self.profiles[lang].get(g, self.unseen[lang]) for g, count in grams.items())
                  / len(ORDERS) for lang in langs]
        top = max(scores, default=0.0)
        weights = [math.exp(s - top) for s in scores]
        total = sum(weights)
        ranked = sorted(zip(langs, (100.0 * w / total for w in weights)), key=lambda lc: -lc[1])
        return [(lang, round(conf, 1)) for lang, conf in ranked]

    def only(self, langs: Sequence[str]) -> Optional["LangId"]:
        """These languages' profiles (the model's own), or None unless every one of them has one."""
        if not set(langs) <= set(self.profiles):
            return None
        return LangId({lang: self.profiles[lang] for lang in langs}, {lang: self.unseen[lang] for lang in langs})

    def state_dict(self) -> Dict[str, Any]:
        return {"format": FORMAT, "languages": {lang: {"unseen": self.unseen[lang], "ngrams": dict(grams)}
                                                for lang, grams in self.profiles.items()}}

    @classmethod
    def from_state(cls, state: Any, where: str) -> "LangId":
        """A stored profile, every field checked; a UserError naming ``where`` and the field otherwise."""
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            found = state.get("format") if isinstance(state, dict) else type(state).__name__
            raise UserError(f"{where}: langid is not a {FORMAT} profile (format {str(found)[:40]!r})")
        langs = state.get("languages")
        if not isinstance(langs, dict) or not 0 < len(langs) <= MAX_LANGS:
            raise UserError(f"{where}: langid.languages is not a mapping of 1 to {MAX_LANGS} languages")
        profiles, unseen = {}, {}
        for lang, entry in langs.items():
            if not (isinstance(lang, str) and lang.isprintable() and 0 < len(lang) <= 32):
                raise UserError(f"{where}: langid has a language code that is not a short printable string")
            grams = entry.get("ngrams") if isinstance(entry, dict) else None
            floor = entry.get("unseen") if isinstance(entry, dict) else None
            if not _log_prob(floor) or not isinstance(grams, dict) or len(grams) > MAX_GRAMS:
                raise UserError(f"{where}: langid.languages.{lang} needs ngrams (at most {MAX_GRAMS}) and unseen "
                                f"(a log-probability in [{MIN_LOG_PROB:g}, 0])")
            bad = next((g for g, v in grams.items()
                        if not (isinstance(g, str) and 0 < len(g) <= max(ORDERS) and _log_prob(v))), None)
            if bad is not None:
                raise UserError(f"{where}: langid.languages.{lang}.ngrams has a bad entry {str(bad)[:20]!r}")
            profiles[lang] = {g: float(v) for g, v in grams.items()}
            unseen[lang] = float(floor)
        return cls(profiles, unseen)


def _log_prob(value: Any) -> bool:
    """A number in [MIN_LOG_PROB, 0] (compared exactly: a huge int or NaN is simply out of range)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and MIN_LOG_PROB <= value <= 0


def stored_langid(state: Any, where: str, log: Any) -> Optional[LangId]:
    """The profile a checkpoint or export carries; None (detection off, with a warning) when it
    has none or a damaged one: translating does not need it."""
    if state is None:
        return None
    try:
        return LangId.from_state(state, where)
    except UserError as err:
        log.warning("%s; languages will not be detected", err)
        return None


def read_langid(folder: Path, log: Any) -> Optional[LangId]:
    """The profile an export folder carries as FILE_NAME (None, with a warning, if damaged)."""
    path = Path(folder) / FILE_NAME
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as err:  # ValueError: bad UTF-8, JSON, a 5,000-digit number
        log.warning("%s is unreadable (%s); languages will not be detected", path, err)
        return None
    return stored_langid(state, str(path), log)


def write_langid(folder: Path, state: Any, where: str, log: Any) -> bool:
    """Write a checkpoint's profile (checked first) into an export folder; False when it has none
    or a damaged one (warned about: the export translates without it)."""
    profile = stored_langid(state, where, log)
    if profile is None:
        return False
    (Path(folder) / FILE_NAME).write_text(json.dumps(profile.state_dict(), ensure_ascii=False), encoding="utf-8")
    return True


def corpus_texts(data: Any) -> Dict[str, List[str]]:
    """Language -> training sentences (MAX_LINES, evenly spaced) of a PreparedData, both sides of
    every direction of a multilingual one."""
    tok = data.tokenizer
    parts = ([(d, data.dir_corpus.get(f"{d[0]}-{d[1]}", {})) for d in data.directions] if data.directions
             else [((tok.src_lang, tok.tgt_lang), data.corpus)])
    return direction_texts(parts, data.train_split)


def direction_texts(parts: Iterable[Tuple[Tuple[str, str], Any]], split: str) -> Dict[str, List[str]]:
    """Language -> sentences (MAX_LINES, evenly spaced) of ``split`` of each (direction, splits with
    src/tgt columns); a language on several directions' sides gets all of them, thinned evenly."""
    texts: Dict[str, List[str]] = {}
    for (src, tgt), splits in parts:
        if split not in splits:
            continue
        rows = splits[split]
        rows = rows.select(spread(len(rows))) if len(rows) > MAX_LINES else rows
        for lang, column in ((src, "src"), (tgt, "tgt")):
            texts.setdefault(lang, []).extend(rows[column])
    return {lang: [lines[i] for i in spread(len(lines))] for lang, lines in texts.items() if lang}


def spread(n: int) -> List[int]:
    """At most MAX_LINES indices of range(n), evenly spaced."""
    return list(range(n)) if n <= MAX_LINES else [i * n // MAX_LINES for i in range(MAX_LINES)]
