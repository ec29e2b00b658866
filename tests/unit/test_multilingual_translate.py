"""One model, many directions, on the inference side: the Translator puts the target tag first in
every source segment and translates toward the requested language; the prompt's :tgt / :src,
pipe mode and the heatmaps follow the chosen direction; bad directions are one-line errors; a
bilingual model behaves as before and takes only its own pair."""

from __future__ import annotations

import io

import pytest

from rosettamt.config import TranslateConfig
from rosettamt.data.tokenizer import UNK_ID
from rosettamt.errors import UserError
from rosettamt.prompt import AttentionPlotter, Prompt, Settings, translate_stream
from rosettamt.prompt.command import choose_direction
from rosettamt.translate import Translator
from helpers.toy_multilingual import looks_like, multilingual_checkpoint, toy_pairs


@pytest.fixture(scope="module")
def mt(tmp_path_factory) -> Translator:
    return Translator.from_checkpoint(multilingual_checkpoint(tmp_path_factory), device="cpu")


@pytest.fixture(scope="module")
def sources():
    return [s for s, _, _ in toy_pairs(16, seed=11)]


def searched(translator: Translator, monkeypatch) -> list:
    """Record every batch of source ids the engine is asked to search."""
    seen: list = []
    search = translator.engine.search

    def spy(src_ids, cfg, progress=False):
        seen.append([list(ids) for ids in src_ids])
        return search(src_ids, cfg, progress=progress)

    monkeypatch.setattr(translator.engine, "search", spy)
    return seen


def test_directions_and_the_tag_first_in_every_source(mt, translator, sources, monkeypatch):
    assert mt.multilingual and mt.directions == [("en", "de"), ("en", "fr")]
    assert not translator.multilingual and translator.directions == [("src", "tgt")]
    tags = {lang: mt.dirs.tag_ids[lang] for lang in ("de", "fr")}
    assert tags["de"] != tags["fr"] and mt.tokenizer.tgt_pieces([tags["fr"]]) == ["<2fr>"]
    seen = searched(mt, monkeypatch)
    mt.translate(sources[:3], tgt_lang="fr")
    mt.translate(sources[:3])  # the default direction: en-de, the stored data.src_lang/tgt_lang
    plain = mt.tokenizer.encode_src(sources[:3])
    assert seen[0] == [[tags["fr"]] + ids for ids in plain]
    assert seen[1] == [[tags["de"]] + ids for ids in plain]
    # a typed tag is text: the requested tag still comes first, and the typed one is <unk>, not a tag
    mt.translate(["<2fr> " + sources[0], sources[1] + " <2fr>"], tgt_lang="de")
    assert seen[2][0][0] == tags["de"] and seen[2][1][0] == tags["de"]
    assert all(tags["fr"] not in row for row in seen[2]) and all(UNK_ID in row for row in seen[2])
    assert mt.tokenizer.encode_src(["a <2de> b"]) == [[i if i != tags["de"] else UNK_ID
                                                        for i in mt.tokenizer._src.encode("a <2de> b")]]
    seen_bi = searched(translator, monkeypatch)
    translator.translate(sources[:2])
    assert seen_bi[0] == translator.tokenizer.encode_src(sources[:2])  # no tag for a bilingual model


def test_translates_toward_the_requested_language(mt, sources):
    for lang in ("de", "fr"):
        out = mt.translate(sources, tgt_lang=lang, beam_size=2)
        assert sum(looks_like(o, lang) for o in out) / len(out) > 0.8, (lang, out[:3])
        other = "fr" if lang == "de" else "de"
        assert sum(looks_like(o, other) for o in out) / len(out) < 0.2
    assert mt.translate(sources[:4]) == mt.translate(sources[:4], tgt_lang="de", src_lang="en")
    cands = mt.translate_nbest(sources[:2], nbest=2, tgt_lang="fr")
    assert all(looks_like(c[0].text, "fr") > 0.8 for c in cands)


def test_bad_directions_are_one_line_errors(mt, translator):
    cases = [(mt, {"tgt_lang": "cs"}, "does not translate into 'cs'"),
             (mt, {"src_lang": "de", "tgt_lang": "fr"}, "not trained to translate de-fr"),
             (mt, {"src_lang": "de"}, "src_lang=de needs tgt_lang="),
             (translator, {"tgt_lang": "fr"}, "translates only src-tgt, not src-fr"),
             (translator, {"src_lang": "en"}, "translates only src-tgt, not en-tgt")]
    for t, kwargs, words in cases:
        with pytest.raises(UserError, match=words) as err:
            t.translate("a dog runs", **kwargs)
        assert "\n" not in str(err.value)
        with pytest.raises(UserError, match=words):
            t.attention("a dog runs", **kwargs)
    # a bilingual model takes its own pair, and translates exactly as without it
    assert translator.translate(["A dog runs."], src_lang="src", tgt_lang="tgt") == translator.translate(["A dog runs."])


def test_long_line_keeps_the_tag_on_every_segment_within_the_limit(mt, monkeypatch):
    line = " ".join(s.rstrip(".").lower() for s, _, _ in toy_pairs(60, seed=3))  # one sentence: cut in windows
    limit = mt.max_source_pieces()
    assert len(mt.tokenizer.encode_src([line])[0]) > 3 * limit
    seen = searched(mt, monkeypatch)
    (out,) = mt.translate([line], tgt_lang="fr")
    segments = seen[0]
    assert len(segments) > 3 and all(seg[0] == mt.dirs.tag_ids["fr"] for seg in segments)
    assert all(len(seg) <= limit for seg in segments)  # the tag counts toward the limit
    assert max(len(seg) for seg in segments) > limit - 5  # windows as long as the limit allows
    assert looks_like(out, "fr") > 0.8


def test_attention_shows_the_tag_as_the_first_source_token(mt, translator, sources):
    src, tgt, weights = mt.attention(sources[0], tgt_lang="fr")
    assert src[0] == "<2fr>" and src[-1] == "</s>" and weights.shape[2] == len(src)
    assert "".join(src[1:-1]).replace("▁", " ").strip() == sources[0]
    (cand,) = mt.nbest_with_attention(sources[0], nbest=1, tgt_lang="de")
    assert cand.src_tokens[0] == "<2de>" and cand.weights.shape[-1] == len(cand.src_tokens)
    assert looks_like(cand.text, "de") > 0.8
    bi_src, _, _ = translator.attention("A dog runs.")
    assert not any(tok.startswith("<2") for tok in bi_src)


def test_prompt_tgt_and_src_commands(mt, translator, sources, tmp_path, capsys):
    settings = Settings()
    choose_direction(mt, settings)  # the default direction, named
    assert (settings.src_lang, settings.tgt_lang) == ("en", "de")
    p = Prompt(mt, settings, history=tmp_path / "hist")
    p.handle(":help")
    assert ":tgt LANG" in capsys.readouterr().err
    p.handle(":tgt fr")
    assert settings.tgt_lang == "fr" and "direction: en -> fr" in capsys.readouterr().err
    p.handle(sources[0])
    assert looks_like(capsys.readouterr().out, "fr") > 0.8
    for bad, words in ((":tgt cs", "does not translate into 'cs'"), (":src de", "not trained to translate de-fr")):
        p.handle(bad)
        err = capsys.readouterr().err
        assert err.startswith(bad) and words in err and err.count("\n") == 1
    assert (settings.src_lang, settings.tgt_lang) == ("en", "fr")  # unchanged by the refusals
    p.handle(":tgt")
    assert "en-de, en-fr" in capsys.readouterr().err
    bilingual = Prompt(translator, Settings(), history=tmp_path / "hist2")
    bilingual.handle(":tgt fr")
    assert "translates only src-tgt" in capsys.readouterr().err and bilingual.settings.tgt_lang is None


def test_pipe_mode_and_plots_follow_tgt_lang(mt, sources, tmp_path, monkeypatch):
    out = io.StringIO()
    translate_stream(mt, sources[:5], out, Settings(tgt_lang="fr"))
    lines = out.getvalue().splitlines()
    assert len(lines) == 5 and all(looks_like(line, "fr") > 0.8 for line in lines)
    from rosettamt import viz

    labels: list = []
    plot = viz.plot_attention
    monkeypatch.setattr(viz, "plot_attention", lambda src, *a, **k: labels.append(list(src)) or plot(src, *a, **k))
    plotter = AttentionPlotter(mt, Settings(show_attention=True, tgt_lang="fr"))
    plotter.directory = tmp_path / "attention"
    text, path, _ = plotter(sources[0])
    assert path.is_file() and looks_like(text, "fr") > 0.8
    assert labels[0][0] == "<2fr>" and labels[0][-1] == "</s>"  # the heatmap's first column is the tag


def test_options_and_the_command_check(mt, translator):
    with pytest.raises(UserError, match="tgt_lang"):
        Settings.from_config(TranslateConfig(checkpoint="x", tgt_lang="French!"))
    assert Settings.from_config(TranslateConfig(checkpoint="x", tgt_lang="fr")).tgt_lang == "fr"
    with pytest.raises(UserError, match="does not translate into 'cs'"):
        choose_direction(mt, Settings(tgt_lang="cs"))
    with pytest.raises(UserError, match="translates only src-tgt"):
        choose_direction(translator, Settings(tgt_lang="fr"))
    bilingual = Settings(src_lang="src")
    choose_direction(translator, bilingual)
    assert (bilingual.src_lang, bilingual.tgt_lang) == ("src", None)  # a bilingual model's settings stay as given


def test_stored_directions_are_checked_as_someone_elses_file(mt):
    from rosettamt.translate.directions import Directions

    spm_model = mt.tokenizer.state_dict()["src_model"]
    for data, words in (({"pairs": "en-de"}, "stored data.pairs is not a list of strings"),
                        ({"pairs": ["en-de", "en-de"]}, "stored data.pairs repeats a direction"),
                        ({"langs": ["en", "cs"]}, "no piece <2cs> for the target language cs")):
        with pytest.raises(UserError, match=words) as err:
            Directions.from_stored({"data": data}, spm_model, "checkpoint x.pt")
        assert str(err.value).startswith("checkpoint x.pt:") and "\n" not in str(err.value)
    odd = Directions.from_stored({"data": ["x"]}, spm_model, "x", ("src", "tgt"))  # no data section: bilingual
    assert not odd.multilingual and odd.all == [("src", "tgt")] and odd.prefix(("src", "tgt")) == []
    dirs = Directions.from_stored({"data": {"pairs": ["en-fr", "en-de"], "src_lang": "de", "tgt_lang": "en"}},
                                  spm_model, "x")
    assert dirs.default == ("en", "fr") and dirs.pick() == ("en", "fr")  # not a direction: the first one is
    assert dirs.prefix(("en", "de")) == [mt.dirs.tag_ids["de"]]
