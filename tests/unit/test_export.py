"""The exports translate like rosettamt: CTranslate2 and transformers outputs equal rosettamt's token for
token (greedy and beam) on trained toy models of every shape, transformers' logits match, and what a
format cannot express is refused in one line. (The Argos package: test_export_argos.py.)"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Dict, List

import pytest

pytest.importorskip("ctranslate2")
pytest.importorskip("transformers")

from helpers.export_toys import VARIANTS, variant_checkpoint  # noqa: E402
from helpers.toy_checkpoint import read_lines  # noqa: E402

from rosettamt.config import DecodeConfig, ExportConfig  # noqa: E402
from rosettamt.errors import UserError  # noqa: E402
from rosettamt.export import export  # noqa: E402

ALL = ["toy"] + list(VARIANTS)  # toy: pre-norm, joint vocabulary, all embeddings tied, sinusoidal
HF_OK = ["toy", "post_separate_untied", "pre_learned_untied_output", "post_joint_untied_src"]
SEARCHES = [DecodeConfig(strategy="greedy"),
            DecodeConfig(strategy="beam", beam_size=4, length_norm="average"),
            DecodeConfig(strategy="beam", beam_size=5, length_norm="none"),
            DecodeConfig(strategy="beam", beam_size=3, length_norm="average", nbest=3)]


@pytest.fixture(scope="module")
def checkpoints(ckpt, toy_files, tmp_path_factory) -> Dict[str, Path]:
    return {"toy": ckpt, **{name: variant_checkpoint(name, toy_files, tmp_path_factory) for name in VARIANTS}}


@pytest.fixture(scope="module")
def sentences(toy_files) -> List[str]:
    """Ragged test sentences (2 to 9 words) of the toy pair."""
    return read_lines(toy_files["test"][0])[:24]


def load(path: Path):
    from rosettamt.export.common import load_source

    return load_source(path)


def non_trivial(outputs: List[List[int]]) -> None:
    """Equality must not come from degenerate outputs: several tokens, several different lengths."""
    lengths = {len(o) for o in outputs}
    assert len(lengths) >= 3 and max(lengths) >= 5 and min(lengths) >= 1, lengths


@pytest.mark.parametrize("name", ALL)
def test_ctranslate2_translates_token_for_token_like_rosettamt(name, checkpoints, sentences, tmp_path):
    from rosettamt.engine.ct2 import CT2Engine
    from rosettamt.engine.native import NativeEngine

    out = export(ExportConfig(checkpoint=str(checkpoints[name]), format="ctranslate2", output=str(tmp_path / "ct2")))
    ct2, tokenizer, meta = CT2Engine.load(out, "cpu", threads=1)
    source = load(checkpoints[name])
    ids = tokenizer.encode_src(sentences)
    assert ids == source.tokenizer.encode_src(sentences)  # the SentencePiece model travelled with the export
    native = NativeEngine(source.model, "cpu")
    for cfg in SEARCHES:
        want, got = native.search(ids, cfg), ct2.search(ids, cfg)
        assert [[h.tokens for h in n] for n in got] == [[h.tokens for h in n] for n in want], cfg
        non_trivial([n[0].tokens for n in want])


def test_ctranslate2_cuts_at_rosettamts_length_limit(checkpoints, sentences, tmp_path):
    """A limit that binds: greedy outputs are cut where rosettamt forces EOS."""
    from rosettamt.engine.ct2 import CT2Engine
    from rosettamt.engine.native import NativeEngine

    out = export(ExportConfig(checkpoint=str(checkpoints["toy"]), format="ctranslate2", output=str(tmp_path / "c")))
    ct2, tokenizer, _ = CT2Engine.load(out, "cpu", threads=1)
    ids = tokenizer.encode_src(sentences)
    cfg = DecodeConfig(max_len_a=0.5, max_len_b=1)
    want = [n[0].tokens for n in NativeEngine(load(checkpoints["toy"]).model, "cpu").search(ids, cfg)]
    assert [n[0].tokens for n in ct2.search(ids, cfg)] == want
    assert any(len(w) == int(0.5 * (len(i) + 1) + 1) for w, i in zip(want, ids))  # the limit did bind


@pytest.mark.parametrize("name", HF_OK)
def test_transformers_generate_and_logits_equal_rosettamt(name, checkpoints, sentences, tmp_path):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from rosettamt.engine.native import NativeEngine
    from rosettamt.export.check import hf_generate, max_logit_diff, probe_batch

    out = export(ExportConfig(checkpoint=str(checkpoints[name]), format="hf", output=str(tmp_path / "hf")))
    model = AutoModelForSeq2SeqLM.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    source = load(checkpoints[name])
    ids = source.tokenizer.encode_src(sentences)
    assert tokenizer(sentences)["input_ids"] == [i + [3] for i in ids]  # rosettamt's ids + EOS
    native = NativeEngine(source.model, "cpu")
    targets = [n[0].tokens for n in native.search(ids, DecodeConfig())]
    assert max_logit_diff(source.model, model, ids[:8], targets[:8]) < 1e-4
    assert max_logit_diff(source.model, model, *probe_batch(source.cfg)) < 1e-4
    for cfg in SEARCHES[:3]:
        cfg = dataclasses.replace(cfg, max_len_a=0.0, max_len_b=40)  # one limit for the batch, as generate() has
        want = [n[0].tokens for n in native.search(ids, cfg)]
        assert hf_generate(model, ids, cfg, max_len=40) == want, cfg
        non_trivial(want)


def test_plain_generate_follows_the_exported_search(checkpoints, sentences, tmp_path):
    """generation_config.json makes a plain generate() call rosettamt-translate's beam search."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from rosettamt.translate import Translator

    decode = DecodeConfig(strategy="beam", beam_size=4, length_norm="average")
    out = export(ExportConfig(checkpoint=str(checkpoints["post_separate_untied"]), format="hf",
                              output=str(tmp_path / "hf"), decode=decode))
    model = AutoModelForSeq2SeqLM.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    batch = tokenizer(sentences, return_tensors="pt", padding=True)
    got = tokenizer.batch_decode(model.generate(**batch), skip_special_tokens=True)
    want = Translator.from_checkpoint(checkpoints["post_separate_untied"], "cpu", decode).translate(sentences)
    assert [" ".join(g.split()) for g in got] == want
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "MarianMTModel" in card and "## Training" in card


def test_refusals_name_the_reason(checkpoints, tmp_path):
    from rosettamt.config import ModelConfig
    from rosettamt.export.ct2 import unsupported
    from rosettamt.export.hf import architecture

    base = ModelConfig(src_vocab_size=50, tgt_vocab_size=50, joint_vocab=True)
    assert "one head size" in unsupported(dataclasses.replace(base, d_k=16, d_v=32))
    assert unsupported(dataclasses.replace(base, d_k=32, d_v=32)) is None  # head_dim != d_model / n_heads: fine
    assert "share one embedding" in architecture(dataclasses.replace(base, joint_vocab=False))[1]
    assert "share one embedding" in architecture(dataclasses.replace(base, tie_all=False))[1]
    assert "layer norm on the embeddings" in architecture(dataclasses.replace(base, norm="post", positions="learned"))[1]
    assert architecture(dataclasses.replace(base, norm="post", tie_all=False, joint_vocab=False))[0] == "marian"
    with pytest.raises(UserError) as err:
        export(ExportConfig(checkpoint=str(checkpoints["pre_head12"]), format="hf", output=str(tmp_path / "x")))
    assert "d_k=12" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "x").exists() and list(tmp_path.iterdir()) == []  # nothing half-made


def test_existing_output_is_refused_unless_overwrite(checkpoints, tmp_path, monkeypatch):
    out = tmp_path / "ct2"
    cfg = ExportConfig(checkpoint=str(checkpoints["toy"]), format="ctranslate2", output=str(out))
    export(cfg)
    with pytest.raises(UserError, match="already exists; pass overwrite=true") as err:
        export(cfg)
    assert "\n" not in str(err.value)
    import rosettamt.export.ct2 as ct2_module

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ct2_module, "export_ctranslate2", broken)
    with pytest.raises(RuntimeError):
        export(dataclasses.replace(cfg, overwrite=True))
    assert (out / "model.bin").is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["ct2"]  # old one kept
    monkeypatch.undo()
    export(dataclasses.replace(cfg, overwrite=True, quantization="int8"))
    assert '"quantization": "int8"' in (out / "rosettamt.json").read_text(encoding="utf-8")


def test_overwrite_replaces_only_an_earlier_export(checkpoints, tmp_path):
    thesis = tmp_path / "notes" / "sub" / "thesis.txt"
    thesis.parent.mkdir(parents=True)
    thesis.write_text("four years of work\n")
    cfg = ExportConfig(checkpoint=str(checkpoints["toy"]), format="ctranslate2", output=str(tmp_path / "notes"),
                       overwrite=True)
    with pytest.raises(UserError, match="rosettamt-export did not write") as err:
        export(cfg)
    assert "\n" not in str(err.value) and thesis.read_text() == "four years of work\n"
    (tmp_path / "link").symlink_to(tmp_path / "notes")
    with pytest.raises(UserError, match="symbolic link"):
        export(dataclasses.replace(cfg, output=str(tmp_path / "link")))
    assert thesis.is_file()
    (tmp_path / "empty").mkdir()  # an empty folder (made for the export) is fine
    (tmp_path / "empty" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # a file manager looked into it
    assert (export(dataclasses.replace(cfg, output=str(tmp_path / "empty"))) / "model.bin").is_file()
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / ".DS_Store").write_bytes(b"")
    (tmp_path / "kept" / "draft.txt").write_text("mine\n")  # clutter beside someone's file: still theirs
    with pytest.raises(UserError, match="rosettamt-export did not write"):
        export(dataclasses.replace(cfg, output=str(tmp_path / "kept")))


@pytest.mark.parametrize("module, extra, fmt", [("ctranslate2", "ctranslate2", "ctranslate2"),
                                                ("transformers", "hf", "hf")])
def test_a_missing_package_names_its_extra(module, extra, fmt, checkpoints, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(UserError) as err:
        export(ExportConfig(checkpoint=str(checkpoints["toy"]), format=fmt, output=str(tmp_path / "x")))
    assert f"pip install 'rosettamt[{extra}]'" in str(err.value) and "\n" not in str(err.value)


def test_backend_ctranslate2_refuses_gnmt_beam_search(tmp_path):
    from rosettamt.engine.ct2_options import resolve_model_dir

    with pytest.raises(UserError, match="GNMT.*or decode=greedy"):
        resolve_model_dir(None, None, tmp_path, DecodeConfig(strategy="beam", beam_size=5, length_norm="gnmt"))
    from rosettamt.config import resolve_decode
    from rosettamt.engine.ct2_options import length_penalty

    with pytest.raises(UserError, match=r"GNMT.*\(nbest=3 searches with a beam of 3\)$"):  # greedy was asked for
        length_penalty(resolve_decode(DecodeConfig(strategy="greedy", length_norm="gnmt"), nbest=3))
    with pytest.raises(UserError, match="model_dir=DIR"):
        resolve_model_dir("a.pt", None, tmp_path, DecodeConfig())
    assert resolve_model_dir(None, None, tmp_path, DecodeConfig()) == tmp_path
