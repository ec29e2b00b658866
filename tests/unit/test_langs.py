"""Directions and tags for multilingual models: parsing, checks, and picking a direction."""

import pytest

from rosettamt import langs
from rosettamt.errors import UserError


def test_langs_means_every_ordered_pair():
    dirs = langs.directions(["en", "de", "fr"], None)
    assert len(dirs) == 6 and ("de", "fr") in dirs and ("fr", "de") in dirs
    assert all(s != t for s, t in dirs)
    assert langs.target_tags(dirs) == ["<2de>", "<2en>", "<2fr>"]
    assert langs.languages(dirs) == ["en", "de", "fr"]


def test_pairs_are_taken_as_written_and_bilingual_is_none():
    assert langs.directions(None, ["en-de", "de-en", "en-cs"]) == [("en", "de"), ("de", "en"), ("en", "cs")]
    assert langs.directions(None, None) is None and langs.directions([], []) is None


@pytest.mark.parametrize("langs_, pairs, needle", [
    (["en", "de"], ["en-de"], "not both"),
    (["en"], None, "at least two"),
    (["en", "en", "de"], None, "repeats a language"),
    (["EN!", "de"], None, "not a language code"),
    (None, ["en_de"], "src-tgt"),
    (None, ["en-en"], "into itself"),
    (None, ["en-de", "en-de"], "repeats a direction"),
])
def test_bad_settings_are_one_line_errors(langs_, pairs, needle):
    with pytest.raises(UserError, match=needle) as err:
        langs.directions(langs_, pairs)
    assert "\n" not in str(err.value)


def test_pick_direction():
    dirs = [("en", "de"), ("de", "en"), ("en", "fr")]
    assert langs.pick_direction(dirs, None, "fr") == ("en", "fr")
    assert langs.pick_direction(dirs, "de", "en") == ("de", "en")
    assert langs.pick_direction(dirs, None, None, default=("en", "de")) == ("en", "de")
    assert langs.pick_direction(dirs, "de", None) == ("de", "en")
    with pytest.raises(UserError, match="not trained to translate fr-de"):
        langs.pick_direction(dirs, "fr", "de")
    with pytest.raises(UserError, match="does not translate into 'cs'"):
        langs.pick_direction(dirs, None, "cs")
    with pytest.raises(UserError, match="choose one with tgt_lang="):
        langs.pick_direction(dirs, None, None, default=("fr", "cs"))
    with pytest.raises(UserError, match="needs tgt_lang="):
        langs.pick_direction(dirs, "en", None)
