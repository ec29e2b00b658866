"""Edge cases of what evaluate and translate read: empty files, byte order marks and NUL bytes,
huge decode length limits, and model sizes that cannot be allocated. Each is either the same
result as the plain case or a one-line error naming the option, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rosettamt.config import DecodeConfig, ModelConfig
from rosettamt.errors import UserError
from rosettamt.evaluate import evaluate, read_lines

GREEDY = DecodeConfig(strategy="greedy")
MAX_POSITIONS = 1 << 20  # rosettamt.config.MAX_POSITIONS (imported by the tests below, which check it)


def run_evaluate(ckpt: Path, src: Path, ref: Path, out: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "rosettamt.cli.evaluate", f"checkpoint={ckpt}", f"src_file={src}",
           f"ref_file={ref}", "decode=greedy", "device=cpu", f"output_dir={out}", f"hydra.run.dir={out / 'hydra'}"]
    return subprocess.run(cmd, cwd=out, capture_output=True, text=True, timeout=300)


# ------------------------------------------------------------------ evaluate: empty and blank files


@pytest.mark.parametrize("text, why", [("", "the file is empty"), ("\n  \n\n", "all 3 lines are blank")])
def test_a_file_with_nothing_to_score_is_one_line_naming_it(ckpt, toy_files, tmp_path, text, why):
    nothing = tmp_path / "nothing.txt"
    nothing.write_text(text, encoding="utf-8")
    src_file, ref_file = toy_files["test"]
    for kwargs, option in ((dict(src_file=nothing, ref_file=nothing), "src_file"),
                           (dict(src_file=src_file, ref_file=nothing), "ref_file")):
        with pytest.raises(UserError) as err:
            evaluate(ckpt, output_dir=tmp_path, device="cpu", progress=False, decode=GREEDY, **kwargs)
        assert str(err.value) == f"{option}={nothing}: no lines to score ({why})"


def test_score_of_no_lines_is_a_clear_error_not_an_index_error():
    from rosettamt.evaluate import score

    with pytest.raises(ValueError, match="^no lines to score$"):
        score([], [])


def test_cli_on_empty_files_exits_2_with_one_line(ckpt, tmp_path):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    proc = run_evaluate(ckpt, empty, empty, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"rosettamt: error: src_file={empty}: no lines to score "
                                                "(the file is empty)"]


# ------------------------------------------------------------------ evaluate: read like the corpus reader


def test_read_lines_drops_a_byte_order_mark_and_nul_bytes_like_the_corpus_reader(tmp_path):
    from rosettamt.data.textfiles import lines

    path = tmp_path / "ref.txt"
    path.write_bytes(b"\xef\xbb\xbfA dog runs.  \r\nThe c\x00at sits.\n\nlast")
    assert read_lines(path, "ref_file") == ["A dog runs.", "The cat sits.", "", "last"]
    assert read_lines(path, "ref_file") == [line.rstrip() for line in lines(path)]


def test_read_lines_errors_name_the_option_file_and_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\nnot \xff utf-8\n")
    with pytest.raises(UserError, match=rf"^src_file={bad}:2: invalid UTF-8 \(byte 0xff at column 5\)"):
        read_lines(bad, "src_file")


def test_a_byte_order_mark_does_not_change_the_score(ckpt, toy_files, tmp_path):
    src_file, ref_file = toy_files["test"]
    text = Path(ref_file).read_bytes()
    bom_ref, bom_src = tmp_path / "bom.ref", tmp_path / "bom.src"
    bom_ref.write_bytes(b"\xef\xbb\xbf" + text)
    bom_src.write_bytes(b"\xef\xbb\xbf" + Path(src_file).read_bytes())
    (plain,) = evaluate(ckpt, src_file=src_file, ref_file=ref_file, decode=GREEDY, output_dir=tmp_path / "a",
                        device="cpu", progress=False)
    (bom,) = evaluate(ckpt, src_file=bom_src, ref_file=bom_ref, decode=GREEDY, output_dir=tmp_path / "b",
                      device="cpu", progress=False)
    assert plain.bleu > 10
    assert (bom.bleu, bom.chrf, bom.bleu_lc) == (plain.bleu, plain.chrf, plain.bleu_lc)
    assert Path(bom.hyp_file).read_bytes() == Path(plain.hyp_file).read_bytes()
    assert Path(bom.ref_file).read_bytes() == Path(plain.ref_file).read_bytes()


# ------------------------------------------------------------------ huge decode length limits


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
@pytest.mark.parametrize("huge", [dict(max_len_b=99999999999999999999), dict(max_len_b=9223372036854775807),
                                  dict(max_len_a=1e19), dict(max_len_a=1e308), dict(max_len_a=1e19, max_len_b=10**30)])
def test_huge_length_limits_mean_as_long_as_the_model_allows(ckpt, toy_files, strategy, huge):
    from rosettamt.checkpoint import load_for_inference
    from rosettamt.search import translate_ids

    model, tok, _ = load_for_inference(ckpt, "cpu")
    src = tok.encode_src(Path(toy_files["test"][0]).read_text(encoding="utf-8").splitlines()[:8])
    sane = DecodeConfig(strategy=strategy, beam_size=3, max_len_a=0.0, max_len_b=model.cfg.max_positions - 1)
    expected = [[h.tokens for h in hyps] for hyps in translate_ids(model, src, sane, "cpu")]
    got = [[h.tokens for h in hyps] for hyps in translate_ids(model, src, DecodeConfig(
        strategy=strategy, beam_size=3, **huge), "cpu")]
    assert got == expected and all(hyps[0] for hyps in got)  # nothing empty


def test_length_limits_are_capped_before_they_become_int64():
    from rosettamt.search.stepper import length_limits

    class Model:
        cfg = ModelConfig(max_positions=128)

    mask = torch.tensor([[True] * 3 + [False] * 2, [True] * 5])  # sources of 3 and 5 tokens
    for a, b, want in ((1e19, 0, [127, 127]), (0.0, 2 ** 63 - 1, [127, 127]), (0.0, 10 ** 40, [127, 127]),
                       (1.7e308, 10 ** 40, [127, 127]), (2.0, 3, [9, 13]), (40.0, 0, [120, 127]), (0.5, 0, [1, 2])):
        max_len, min_len = length_limits(Model(), mask, a, b, 2)
        assert max_len.tolist() == want and min_len.tolist() == [min(2, w) for w in want]


# ------------------------------------------------------------------ model.max_positions bound


def test_model_max_positions_above_the_bound_is_a_user_error():
    from rosettamt.config import MAX_POSITIONS as bound
    from rosettamt.model import Seq2SeqTransformer, check_config

    assert bound == MAX_POSITIONS

    sizes = dict(d_model=8, n_heads=2, d_ff=16, encoder_layers=1, decoder_layers=1, src_vocab_size=10,
                 tgt_vocab_size=10)
    check_config(ModelConfig(max_positions=MAX_POSITIONS, **sizes))  # the bound itself is allowed
    for positions in ("sinusoidal", "learned"):
        with pytest.raises(UserError, match=rf"^model.max_positions=1000000000000 is above the limit of "
                                            rf"{MAX_POSITIONS} positions$"):
            Seq2SeqTransformer(ModelConfig(max_positions=10 ** 12, positions=positions, **sizes))


def test_a_checkpoint_claiming_huge_max_positions_is_refused_in_one_line(ckpt, tmp_path):
    from rosettamt.checkpoint import load_checkpoint, load_for_inference, save_checkpoint

    state = load_checkpoint(ckpt)
    state["model_config"]["max_positions"] = 10 ** 12
    bad = tmp_path / "huge.pt"
    save_checkpoint(state, bad)
    with pytest.raises(UserError, match=rf"^checkpoint {bad}: stored model.max_positions=1000000000000 is above"):
        load_for_inference(bad, "cpu")
    proc = subprocess.run([sys.executable, "-m", "rosettamt.cli.translate", f"checkpoint={bad}", "device=cpu",
                           f"hydra.run.dir={tmp_path / 'hydra'}"], input="A dog runs.\n", cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"rosettamt: error: checkpoint {bad}: stored model.max_positions="
                                                f"1000000000000 is above the limit of {MAX_POSITIONS} positions"]


def test_training_with_huge_max_positions_fails_before_any_work(make_cfg, tmp_path):
    from rosettamt.train.setup import check_options

    with pytest.raises(UserError, match=rf"^model.max_positions=1000000000000 must be in \[1, {MAX_POSITIONS}\]$"):
        check_options(make_cfg("model.max_positions=1000000000000"))
    check_options(make_cfg(f"model.max_positions={MAX_POSITIONS}"))


def test_lengths_past_floats_range_are_checked_and_capped_not_overflowed():
    from types import SimpleNamespace

    from rosettamt.config import ServeConfig, _check_ranges, check_decode
    from rosettamt.engine.ct2 import CT2Engine

    check_decode(DecodeConfig(max_len_b=10 ** 400))  # an int is finite: "as long as the model allows"
    with pytest.raises(UserError, match="serve.port"):
        _check_ranges("serve.", ServeConfig(port=10 ** 400), {"port": (0, 65535, True, True)})
    engine = SimpleNamespace(cfg=ModelConfig(max_positions=128))
    for a, b, want in ((1e308, 0, 127), (1.7e308, 10 ** 40, 127), (0.0, 10 ** 400, 127), (1.5, 2, 9)):
        assert CT2Engine.max_len(engine, 5, DecodeConfig(max_len_a=a, max_len_b=b)) == want


def test_a_missing_test_split_names_split_not_the_training_options(tmp_path):
    from rosettamt.config import DataConfig, Source
    from rosettamt.evaluate.inputs import split_texts

    (tmp_path / "train.en.gz").write_bytes(b"")  # a corpus folder, without the test split asked for
    data = DataConfig(source=Source.multi30k, dir=str(tmp_path), download=False, cache_dir=str(tmp_path / "c"))
    with pytest.raises(UserError) as err:
        split_texts(data, ["test_2016_flickr", "test_2017_flickr"])
    assert "test_2016_flickr.en.gz" in str(err.value) and "for split=" in str(err.value)
    assert "data.train_split" not in str(err.value) and "data.test_splits" not in str(err.value)


def test_one_direction_of_a_multilingual_model_reads_a_plain_file_pair(tmp_path_factory, tmp_path):
    from helpers.toy_multilingual import multilingual_checkpoint, toy_pairs

    ckpt = multilingual_checkpoint(tmp_path_factory)
    triples = [(s, t) for s, lang, t in toy_pairs(40, seed=5) if lang == "fr"][:8]
    (tmp_path / "test.en").write_text("".join(s + "\n" for s, _ in triples), encoding="utf-8")
    (tmp_path / "test.fr").write_text("".join(t + "\n" for _, t in triples), encoding="utf-8")
    common = dict(splits=["test"], decode=DecodeConfig(strategy="greedy"), output_dir=tmp_path / "ev",
                  device="cpu", progress=False, tgt_lang="fr")
    with pytest.raises(UserError, match=r"give data.files.test=\[SRC,REF\]"):  # nothing named: asks for the pair
        evaluate(ckpt, **common)
    pair = [f"files.test=[{tmp_path}/test.en,{tmp_path}/test.fr]"]
    (result,) = evaluate(ckpt, data_overrides=pair, **common)
    assert result.direction == "en-fr" and result.sentences == len(triples) and result.bleu > 0
    with pytest.raises(UserError, match="one file pair.*2 directions: choose one with src_lang= / tgt_lang="):
        evaluate(ckpt, data_overrides=pair, **{**common, "tgt_lang": None})


def test_evaluate_input_that_is_not_a_text_file_says_what_it_is(tmp_path):
    with pytest.raises(UserError, match=r"^src_file=.* is a directory; give a text file$"):
        read_lines(tmp_path, "src_file")
    with pytest.raises(UserError, match=r"^ref_file=.*nope: no such file$"):
        read_lines(tmp_path / "nope", "ref_file")


def test_pipes_are_read_as_src_file_and_ref_file(ckpt, toy_files, tmp_path):
    """src_file=<(zcat test.en.gz) in a shell: a pipe is read once, and scores as the files do."""
    import shlex

    src_file, ref_file = toy_files["test"]
    (plain,) = evaluate(ckpt, src_file=src_file, ref_file=ref_file, decode=GREEDY, output_dir=tmp_path / "a",
                        device="cpu", progress=False)
    out = tmp_path / "b"
    out.mkdir()
    cmd = " ".join([shlex.quote(sys.executable), "-m", "rosettamt.cli.evaluate", f"checkpoint={shlex.quote(str(ckpt))}",
                    f"src_file=<(cat {shlex.quote(str(src_file))})", f"ref_file=<(cat {shlex.quote(str(ref_file))})",
                    "decode=greedy", "device=cpu", f"output_dir={out}", f"hydra.run.dir={out / 'hydra'}"])
    proc = subprocess.run(["bash", "-c", cmd], cwd=out, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"{plain.bleu:.2f}" in proc.stdout
    (hyp,) = out.glob("*.src_file.greedy.hyp.*")  # named after the option: the pipe's name means nothing
    assert hyp.read_bytes() == Path(plain.hyp_file).read_bytes()


def test_a_multirun_sweep_reads_its_pipes_once_for_every_job(ckpt, toy_files, tmp_path):
    """rosettamt-evaluate -m ... src_file=<(cat ...): the jobs run in one process and the pipe can be
    read only once; every job scores the same lines (the later ones used to find it empty)."""
    import shlex

    src_file, ref_file = toy_files["test"]
    out = tmp_path / "sweep"
    out.mkdir()
    cmd = " ".join([shlex.quote(sys.executable), "-m", "rosettamt.cli.evaluate", "-m",
                    f"checkpoint={shlex.quote(str(ckpt))}", f"src_file=<(cat {shlex.quote(str(src_file))})",
                    f"ref_file=<(cat {shlex.quote(str(ref_file))})", "decode=greedy,beam", "device=cpu",
                    f"output_dir={out}", f"hydra.sweep.dir={out / 'hydra'}"])
    proc = subprocess.run(["bash", "-c", cmd], cwd=out, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    n = len(Path(src_file).read_text(encoding="utf-8").splitlines())
    for strategy in ("greedy", "beam"):
        (hyp,) = out.glob(f"*.src_file.{strategy}*.hyp.*")
        assert len(hyp.read_text(encoding="utf-8").splitlines()) == n, strategy
