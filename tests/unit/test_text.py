"""rosettamt.text: what the Translator does to a line before tokenizing it."""

from __future__ import annotations

from rosettamt.text import clean_text, split_sentences


def test_clean_text_removes_controls_and_collapses_whitespace():
    assert clean_text("") == ""
    assert clean_text(" \t\r\n\u00a0\u3000 ") == ""
    assert clean_text("a\x00b\x07c\x1b[31m d") == "abc[31m d"
    assert clean_text("  two\t\twords\u2028here ") == "two words here"
    assert clean_text("zero\u200bwidth \u202eRTL\u202c mark\ufeff") == "zerowidth RTL mark"
    assert clean_text("lone \ud800 surrogate") == "lone surrogate"
    # letters of any script, emoji and combining marks survive
    assert clean_text("Ünïcödé 日本 עברית 😀 e\u0301 👨\u200d👩 می\u200cخواهم") == (
        "Ünïcödé 日本 עברית 😀 e\u0301 👨\u200d👩 می\u200cخواهم")


def test_split_sentences_keeps_all_text():
    text = "A dog runs. The cat sits! Why? 一个人。两个人 end"
    parts = split_sentences(text)
    assert parts == ["A dog runs.", "The cat sits!", "Why?", "一个人。", "两个人 end"]
    assert "".join(parts).replace(" ", "") == text.replace(" ", "")


def test_the_translate_package_still_exports_them():
    import rosettamt.translate

    assert rosettamt.translate.clean_text is clean_text and rosettamt.translate.split_sentences is split_sentences
