"""The pieces of rosettamt-translate run in-process: input decoding, pipe mode, the prompt's
commands, and the attention heatmaps (viz.py)."""

from __future__ import annotations

import io
import logging
import signal
import struct
from pathlib import Path

import numpy as np
import pytest

from rosettamt import viz
from rosettamt.config import DecodeConfig, TranslateConfig
from rosettamt.errors import UserError
from rosettamt.prompt import (
    AttentionPlotter,
    Prompt,
    Settings,
    attention_dir,
    bytes_to_lines,
    check_attention_settings,
    checkpoint_from_config,
    translate_stream,
)
from rosettamt.translate import Translator
from helpers.toy_checkpoint import read_lines


@pytest.fixture(scope="module")
def sentences(toy_files):
    return read_lines(toy_files["test"][0])[:12]


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk; fails unless the file is a PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


# ---------------------------------------------------------------------- input bytes to lines


def test_bytes_to_lines_newlines_and_invalid_utf8(caplog):
    assert bytes_to_lines(b"") == []
    assert bytes_to_lines(b"\n") == [""]
    assert bytes_to_lines(b"a\r\nb\n\nc") == ["a", "b", "", "c"]
    assert bytes_to_lines("x\u2028y\x0bz\n".encode()) == ["x\u2028y\x0bz"]  # one line, whatever str.splitlines says
    with caplog.at_level(logging.WARNING):
        lines = bytes_to_lines(b"ok\nbad \xff\xfe here\nfine\nalso \xc3\n", "in.txt")
    assert lines == ["ok", "bad \ufffd\ufffd here", "fine", "also \ufffd"]
    (record,) = [r for r in caplog.records if "invalid UTF-8" in r.getMessage()]
    assert "in.txt" in record.getMessage() and "2 line(s)" in record.getMessage() and "line 2" in record.getMessage()


def test_utf16_input_is_refused_and_a_pipe_is_read(tmp_path):
    import os
    import threading

    from rosettamt.prompt.streams import read_input

    for encoding in ("utf-16", "utf-16-be", "utf-32", "utf-16-le", "utf-32-le"):
        data = ("\ufeff" if encoding.endswith("be") else "") + "A dog runs.\nThe cat sits.\n"
        with pytest.raises(UserError, match=r"u16.txt.*UTF-(16|32) text.*re-encode it as UTF-8") as err:
            bytes_to_lines(data.encode(encoding), "u16.txt")
        assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="NUL"):  # no mark, and 0x0A inside a character
        bytes_to_lines("上海\n好\n".encode("utf-16-le"), "cjk.txt")
    assert bytes_to_lines(b"a stray \x00 NUL in a long enough line of text\n") == [
        "a stray \x00 NUL in a long enough line of text"]  # kept for the translator to clean, as before
    with pytest.raises(UserError, match="is a directory"):
        read_input(TranslateConfig(input=str(tmp_path)))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # what input=<(command) hands over
    writer = threading.Thread(target=lambda: fifo.write_bytes(b"one\ntwo\n"), daemon=True)
    writer.start()
    try:
        assert read_input(TranslateConfig(input=str(fifo))) == ["one", "two"]
    finally:  # a read that never opened the pipe must not leave the writer blocking the suite
        if writer.is_alive():
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
        writer.join(timeout=10)


# ---------------------------------------------------------------------- settings and options


def test_settings_from_config():
    s = Settings.from_config(TranslateConfig(decode=DecodeConfig(strategy="beam", beam_size=4)))
    assert (s.beam_size, s.nbest) == (4, 1)
    s = Settings.from_config(TranslateConfig(nbest=3, decode=DecodeConfig(strategy="greedy")))
    assert (s.beam_size, s.nbest) == (3, 3)  # n-best widens the search
    with pytest.raises(UserError, match="nbest=0"):
        Settings.from_config(TranslateConfig(nbest=0))
    with pytest.raises(UserError, match="decode.beam_size=0"):
        Settings.from_config(TranslateConfig(decode=DecodeConfig(strategy="beam", beam_size=0)))


def test_checkpoint_from_config(ckpt, tmp_path):
    assert checkpoint_from_config(TranslateConfig(checkpoint=str(ckpt))) == ckpt
    assert checkpoint_from_config(TranslateConfig(run_dir=str(ckpt.parent.parent))) == ckpt
    for bad, match in [(TranslateConfig(), "exactly one"),
                       (TranslateConfig(checkpoint=str(ckpt), run_dir=str(tmp_path)), "exactly one"),
                       (TranslateConfig(checkpoint=str(tmp_path / "x.pt")), "checkpoint=.*no such file"),
                       (TranslateConfig(run_dir=str(tmp_path / "nope")), "run_dir=.*no such directory")]:
        with pytest.raises(UserError, match=match):
            checkpoint_from_config(bad)


def test_check_attention_settings_names_the_option(translator):
    check_attention_settings(translator, Settings(layer=-1, head=3))
    with pytest.raises(UserError, match="attention_layer=2: the model has 2 decoder layers"):
        check_attention_settings(translator, Settings(layer=2))
    with pytest.raises(UserError, match="attention_head=4: the model has 4 heads"):
        check_attention_settings(translator, Settings(head=4))


# ---------------------------------------------------------------------- pipe mode


def test_translate_stream_one_line_per_input_in_order(translator, sentences):
    lines = [sentences[0], "", sentences[1], "  \t ", sentences[2], "\x00\x01", *sentences[3:]]
    out = io.StringIO()
    translate_stream(translator, lines, out, Settings(beam_size=2))
    rows = out.getvalue().split("\n")
    assert rows[-1] == "" and len(rows) - 1 == len(lines)
    assert rows[:-1] == translator.translate(lines, beam_size=2)
    assert rows[1] == rows[3] == rows[5] == ""
    assert len(set(rows[6:-1])) > len(sentences[3:]) // 2  # real, different translations


def test_translate_stream_nbest_format(translator, sentences):
    out = io.StringIO()
    translate_stream(translator, sentences[:4] + [""], out, Settings(beam_size=3, nbest=3))
    rows = [r.split("\t") for r in out.getvalue().splitlines()]
    assert all(len(r) == 3 for r in rows)
    numbers = [int(r[0]) for r in rows]
    assert numbers == sorted(numbers) and set(numbers) == {1, 2, 3, 4, 5}
    for n in range(1, 5):
        scores = [float(r[1]) for r in rows if int(r[0]) == n]
        assert 1 <= len(scores) <= 3 and scores == sorted(scores, reverse=True)
    assert rows[-1] == ["5", "0.0000", ""]


def test_translate_stream_with_attention_writes_one_png_per_line(translator, sentences, toy_files, tmp_path,
                                                                 capsys):
    t = Translator(translator.model, translator.tokenizer, checkpoint_path=tmp_path / "checkpoints" / "x.pt")
    out = io.StringIO()
    long_line = " ".join(read_lines(toy_files["train"][0]))[:1500]  # several segments: the plot shows the first
    lines = [sentences[0], " ", sentences[1], long_line]
    translate_stream(t, lines, out, Settings(show_attention=True))
    assert out.getvalue().splitlines() == t.translate(lines)  # the whole long line, as without attention
    assert len(out.getvalue().splitlines()[3].split()) > 0.5 * len(long_line.split())
    pngs = sorted((tmp_path / "attention").glob("*.png"))  # run dir = parent of checkpoints/
    assert [p.name for p in pngs] == ["001.png", "002.png", "003.png"]  # none for the blank line
    err = capsys.readouterr().err
    assert f"line 1: attention plot {pngs[0]}" in err and f"line 3: attention plot {pngs[1]}" in err


# ---------------------------------------------------------------------- the prompt's commands


def test_prompt_commands_and_translation(translator, sentences, tmp_path, capsys):
    t = Translator(translator.model, translator.tokenizer, checkpoint_path=tmp_path / "m.pt")
    p = Prompt(t, Settings(beam_size=1), history=tmp_path / "hist")
    assert p.handle(sentences[0]) is True
    assert capsys.readouterr().out == t.translate(sentences[0], beam_size=1)[0] + "\n"

    assert p.handle(":beam 3") and p.settings.beam_size == 3
    assert "beam 3" in capsys.readouterr().err
    for bad in (":beam 0", ":beam x", ":nbest -1", ":beam 10000000000", ":nbest 1001", ":attn maybe", ":layer 9",
                ":head 99", ":frobnicate"):
        assert p.handle(bad) is True  # a message, no exception, settings unchanged
    assert (p.settings.beam_size, p.settings.nbest, p.settings.show_attention) == (3, 1, False)
    assert "unknown command :frobnicate" in capsys.readouterr().err

    assert p.handle(":nbest 2") and p.settings.nbest == 2
    capsys.readouterr()
    p.handle(sentences[1])
    shown = capsys.readouterr().out.splitlines()
    best = t.translate(sentences[1], beam_size=3, nbest=2)[0]
    assert shown == [f"{i}. ({c.score:.3f}) {c.text}" for i, c in enumerate(best, 1)]

    assert p.handle(":greedy") and (p.settings.beam_size, p.settings.nbest) == (1, 1)
    assert p.handle(":head grid") and p.settings.grid
    assert p.handle(":head 1") and (p.settings.head, p.settings.grid) == (1, False)
    assert p.handle(":layer 0") and p.settings.layer == 0
    assert p.handle(":attn on") and p.settings.show_attention
    capsys.readouterr()
    p.handle(sentences[2])
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == t.translate(sentences[2])[0]
    assert all("->" in line for line in lines[1:]) and len(lines) > 2  # the text view
    assert (tmp_path / "attention" / "001.png").is_file() and "001.png" in err
    assert p.handle(":beam 3") and p.handle(":nbest 3")  # n-best with attention: every candidate, then the view
    capsys.readouterr()
    p.handle(sentences[3])
    lines = capsys.readouterr().out.splitlines()
    cands = t.translate(sentences[3], beam_size=3, nbest=3)[0]
    assert lines[:len(cands)] == [f"{i}. ({c.score:.3f}) {c.text}" for i, c in enumerate(cands, 1)]
    assert len(cands) > 1 and all("->" in line for line in lines[len(cands):])
    assert (tmp_path / "attention" / "002.png").is_file()
    assert p.handle(":nbest 1")

    assert p.handle(":) smiley") is True  # not a command: translated
    assert capsys.readouterr().out.splitlines()[0] == t.translate(":) smiley")[0]
    assert p.handle("   ") is True and capsys.readouterr().out == ""  # blank: no output
    assert p.handle(":quit") is False and p.handle(":q") is False


# ---------------------------------------------------------------------- viz


def test_attention_plots_are_valid_pngs_of_plausible_size(translator, sentences, tmp_path):
    src, tgt, weights = translator.attention(sentences[0])
    mean = viz.plot_attention(src, tgt, weights, tmp_path / "mean.png", title="mean")
    head = viz.plot_attention(src, tgt, weights, tmp_path / "head.png", head=2)
    grid = viz.plot_attention(src, tgt, weights, tmp_path / "grid.png", grid=True)
    for path in (mean, head, grid):
        w, h = png_size(path)
        assert 200 <= w <= 4000 and 150 <= h <= 4000, (path, w, h)
        assert path.stat().st_size > 5_000
    # the grid holds H panels: larger than a single heatmap
    assert png_size(grid)[0] * png_size(grid)[1] > png_size(mean)[0] * png_size(mean)[1]
    # not a blank picture
    import matplotlib.image

    pixels = matplotlib.image.imread(mean)
    assert pixels.std() > 0.05
    # a very long sentence gets a bounded image
    long_src = [f"s{i}" for i in range(300)]
    w = np.full((2, 5, 300), 1 / 300)
    big = viz.plot_attention(long_src, ["a", "b", "c", "d", "e"], w, tmp_path / "big.png")
    assert max(png_size(big)) <= viz.MAX_INCHES * 100 + 1
    with pytest.raises(ValueError, match="do not match"):
        viz.plot_attention(src[:-1], tgt, weights, tmp_path / "bad.png")


def test_select_heads_and_text_view():
    w = np.zeros((2, 3, 4))
    w[0, 0, 1], w[1, 0, 1] = 1.0, 1.0  # both heads: target 0 -> source 1
    w[0, 1, 3], w[1, 1, 0] = 1.0, 1.0  # heads disagree on target 1
    w[0, 2, 2], w[1, 2, 2] = 0.6, 0.8
    w[0, 2, 0], w[1, 2, 0] = 0.4, 0.2
    np.testing.assert_allclose(viz.select_heads(w).sum(-1), 1.0)
    assert viz.strongest_source(viz.select_heads(w, 1)) == [(1, 1.0), (0, 1.0), (2, 0.8)]
    view = viz.text_view(["A", "dog", "runs", "</s>"], ["x", "yy", "</s>"], viz.select_heads(w))
    assert view.splitlines() == ["  x     -> dog (1.00)", "  yy    -> A (0.50)", "  </s>  -> runs (0.70)"]
    with pytest.raises(IndexError):
        viz.select_heads(w, 5)


def test_next_plot_path_never_overwrites(tmp_path):
    assert viz.next_plot_path(tmp_path / "a").name == "001.png"
    (tmp_path / "a" / "007.png").write_bytes(b"")
    (tmp_path / "a" / "notes.txt").write_text("x")
    assert viz.next_plot_path(tmp_path / "a").name == "008.png"
    assert attention_dir(tmp_path / "run" / "checkpoints" / "best.pt") == (tmp_path / "run" / "attention").resolve()
    assert attention_dir(tmp_path / "model.pt") == (tmp_path / "attention").resolve()


def test_attention_plotter_rejects_unwritable_dir(translator, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    t = Translator(translator.model, translator.tokenizer, checkpoint_path=blocker / "m.pt")
    with pytest.raises(UserError, match="cannot write attention plots"):
        AttentionPlotter(t, Settings(show_attention=True))("a dog runs")


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="POSIX signal masks")
def test_holding_ctrl_c_blocks_sigint_and_restores_the_mask_afterwards():
    """rosettamt-translate's prompt blocks SIGINT for the threads torch starts; the block ends with
    the command, and a Ctrl-C still pending then is dropped rather than raised at the caller."""
    from rosettamt.prompt.interactive import holding_ctrl_c

    blocked = lambda: signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, set())  # noqa: E731
    assert not blocked()
    with holding_ctrl_c(True):
        assert blocked()
        signal.raise_signal(signal.SIGINT)  # held while blocked
        assert signal.SIGINT in signal.sigpending()
    assert not blocked() and signal.SIGINT not in signal.sigpending()
    with holding_ctrl_c(False):  # pipe mode: nothing changes
        assert not blocked()
