"""rosettamt.langid: language profiles built from a corpus tell its languages apart (real Multi30k
text in four languages, and the toy pair), survive the round trip through a checkpoint's plain
data and an export's JSON, and a damaged stored profile is refused field by field."""

from __future__ import annotations

import gzip
import json
import logging
import math
import random

import pytest

from helpers.toy import toy_pair
from rosettamt.errors import UserError
from rosettamt.langid import FORMAT, LangId, ngrams, read_langid, stored_langid, write_langid

LANGS = ("en", "de", "fr", "cs")


def lines(root, name, n):
    with gzip.open(root / name, "rt", encoding="utf-8") as f:
        return [next(f).strip() for _ in range(n)]


@pytest.fixture(scope="module")
def multi30k_profiles(multi30k_dir):
    return LangId.build({lang: lines(multi30k_dir, f"train.{lang}.gz", 3000) for lang in LANGS})


@pytest.fixture(scope="module")
def toy_profiles():
    pairs = [toy_pair(random.Random(i)) for i in range(500)]
    return LangId.build({"src": [s for s, _ in pairs], "tgt": [t for _, t in pairs]})


def test_ngrams_are_lowercased_padded_and_skip_whitespace():
    assert ngrams("Ab  c") == ["a", "b", "c", " a", "ab", "b ", " c", "c ", " ab", "ab ", "b c", " c "]
    assert ngrams(" \t ") == []


def test_multi30k_test_sentences_are_told_apart(multi30k_dir, multi30k_profiles):
    """Profiles from 3,000 training lines per language classify the first 300 test_2016 lines of each
    (text the profiles never saw) at least 99% right."""
    for lang in LANGS:
        test = lines(multi30k_dir, f"test_2016_flickr.{lang}.gz", 300)
        right = sum(multi30k_profiles.detect(s)[0][0] == lang for s in test)
        assert right >= 297, (lang, right)
    ranking = multi30k_profiles.detect("Ein Mann fährt Fahrrad auf der Straße.")
    assert ranking[0][0] == "de" and ranking[0][1] > 99
    assert sorted(lang for lang, _ in ranking) == sorted(LANGS)
    assert math.isclose(sum(conf for _, conf in ranking), 100.0, abs_tol=0.3)
    assert [c for _, c in ranking] == sorted((c for _, c in ranking), reverse=True)


def test_among_restricts_the_ranking(multi30k_profiles):
    german = "Zwei Hunde spielen im Schnee."
    ranking = multi30k_profiles.detect(german, among=["en", "fr", "xx"])  # an unknown code is ignored
    assert [lang for lang, _ in ranking] in (["en", "fr"], ["fr", "en"])
    assert math.isclose(sum(c for _, c in ranking), 100.0, abs_tol=0.2)


def test_nothing_to_go_on_is_uniform(toy_profiles):
    for text in ("", "   "):
        assert toy_profiles.detect(text) == [("src", 50.0), ("tgt", 50.0)]


def test_toy_languages(toy_profiles):
    rng = random.Random(12345)
    for _ in range(50):
        src, tgt = toy_pair(rng)
        assert toy_profiles.detect(src)[0][0] == "src" and toy_profiles.detect(tgt)[0][0] == "tgt", (src, tgt)


def test_state_round_trip_checkpoint_data_and_export_json(tmp_path, toy_profiles):
    import torch

    torch.save({"langid": toy_profiles.state_dict()}, tmp_path / "c.pt")
    stored = torch.load(tmp_path / "c.pt", weights_only=True)["langid"]  # plain data: loads without code
    again = LangId.from_state(stored, "c.pt")
    log = logging.getLogger("test")
    assert write_langid(tmp_path, stored, "c.pt", log) is True
    from_json = read_langid(tmp_path, log)
    for text in ("The dog runs.", "nurx god eht .", "a"):
        assert again.detect(text) == toy_profiles.detect(text) == from_json.detect(text)
    assert read_langid(tmp_path / "nowhere", log) is None and write_langid(tmp_path, None, "x", log) is False


def damaged(state):
    s = json.loads(json.dumps(state))
    return [
        ("list", [], "not a rosettamt-langid-1"),
        ("format", {**s, "format": "other"}, "not a rosettamt-langid-1"),
        ("no languages", {"format": FORMAT, "languages": {}}, "1 to 256 languages"),
        ("code", {"format": FORMAT, "languages": {"\x1b[2J": s["languages"]["src"]}}, "short printable"),
        ("unseen", {"format": FORMAT, "languages": {"src": {**s["languages"]["src"], "unseen": 0.5}}}, "unseen"),
        ("nan", {"format": FORMAT, "languages": {"src": {"unseen": -1.0, "ngrams": {"ab": float("nan")}}}},
         "bad entry 'ab'"),
        ("long gram", {"format": FORMAT, "languages": {"src": {"unseen": -1.0, "ngrams": {"abcd": -1.0}}}},
         "bad entry 'abcd'"),
        ("bool", {"format": FORMAT, "languages": {"src": {"unseen": True, "ngrams": {}}}}, "unseen"),
    ]


def test_a_damaged_profile_is_refused_by_field(toy_profiles, tmp_path, caplog):
    for name, state, words in damaged(toy_profiles.state_dict()):
        with pytest.raises(UserError, match="c.pt: langid") as err:
            LangId.from_state(state, "c.pt")
        assert words in str(err.value) and "\n" not in str(err.value), name
        with caplog.at_level(logging.WARNING):  # loading a model: a warning, then no detection
            assert stored_langid(state, "c.pt", logging.getLogger("t")) is None
        assert "languages will not be detected" in caplog.text
    (tmp_path / "langid.json").write_text("{not json", encoding="utf-8")
    assert read_langid(tmp_path, logging.getLogger("t")) is None


def test_values_that_would_break_the_scores_are_refused(toy_profiles, tmp_path):
    """A huge int, NaN or a log-probability so low that every score becomes -inf (NaN confidences,
    an API that cannot answer): each is refused when loaded, never met in detect()."""
    s = toy_profiles.state_dict()
    for value in (-10 ** 400, float("nan"), float("-inf"), -1e308, 1e-9):
        state = {"format": FORMAT, "languages": {"src": {"unseen": value, "ngrams": {}}, "tgt": s["languages"]["tgt"]}}
        with pytest.raises(UserError, match=r"unseen \(a log-probability in \[-10000, 0\]\)"):
            LangId.from_state(state, "c.pt")
        state["languages"]["src"] = {"unseen": -5.0, "ngrams": {"ab": value}}
        with pytest.raises(UserError, match="bad entry 'ab'"):
            LangId.from_state(state, "c.pt")
    log = logging.getLogger("t")
    for text in ('{"format": "rosettamt-langid-1", "languages": {"src": {"unseen": -' + "9" * 5000 + "}}}",
                 "[" * 100_000 + "]" * 100_000, "\udcff"):
        (tmp_path / "langid.json").write_text(text, encoding="utf-8", errors="surrogateescape")
        assert read_langid(tmp_path, log) is None  # a warning; the export still translates


def test_only_keeps_the_models_languages(multi30k_profiles):
    pair = multi30k_profiles.only(["en", "de"])
    assert pair.languages == ["en", "de"] and [lang for lang, _ in pair.detect("Un homme.")] in (["en", "de"],
                                                                                              ["de", "en"])
    assert multi30k_profiles.only(["en", "xx"]) is None  # a language without a profile: no detection at all


def test_add_langid_script_on_a_bilingual_checkpoint_and_its_errors(toy_files, tmp_path_factory, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    import torch

    from helpers.toy_checkpoint import read_lines, toy_checkpoint
    from rosettamt.checkpoint import save_checkpoint

    stored = torch.load(toy_checkpoint(toy_files, tmp_path_factory), weights_only=True)
    save_checkpoint({k: v for k, v in stored.items() if k not in ("langid", "format")}, tmp_path / "old.pt")
    script = Path(__file__).resolve().parents[2] / "scripts" / "add_langid.py"

    def run(*args):
        return subprocess.run([sys.executable, str(script), "old.pt", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=300)

    train = f"data.files.train=[{toy_files['train'][0]},{toy_files['train'][1]}]"
    assert run("--out", "new.pt", train).returncode == 0
    assert not (tmp_path / "data").exists()  # its corpus cache went into a temporary folder
    added = LangId.from_state(torch.load(tmp_path / "new.pt", weights_only=True)["langid"], "new.pt")
    assert added.languages == ["src", "tgt"]
    src, tgt = (read_lines(p)[:20] for p in toy_files["test"])
    assert {added.detect(s)[0][0] for s in src} == {"src"} and {added.detect(t)[0][0] for t in tgt} == {"tgt"}
    for args, words in ((["--out", "x.pt", "trainer.seed=3"], "only data.KEY=VALUE overrides"),
                        (["--out", "x.pt"], "data.files.train"),  # the files the checkpoint names are not read
                        (["--out", "x.pt", "data.no_such_key=1"], "data.no_such_key is invalid"),
                        (["--out", "x.pt", "data.files.train=[nowhere.src,nowhere.tgt]"], "nowhere.src")):
        proc = run(*args)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("add_langid: error: "), proc.stderr
        assert words in lines[0] and not (tmp_path / "x.pt").exists(), lines
