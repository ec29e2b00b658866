"""Files someone hands rosettamt (a checkpoint, its run folder's index, an output path) stay data:
they never make a command write or delete outside what the user named, or destroy a device."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from rosettamt.atomic import atomic_open
from rosettamt.checkpoint import find_best_checkpoint, load_checkpoint, read_index, save_checkpoint
from rosettamt.errors import UserError
from rosettamt.train.saver import CheckpointSaver


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_an_output_that_is_a_fifo_is_written_into_and_stays_a_fifo(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader exists: opening for writing won't block
    try:
        with atomic_open(fifo, "w", named=True) as f:  # output=PIPE, as the user typed it
            f.write("Ein Hund rennt.\n")
        assert os.read(reader, 100) == b"Ein Hund rennt.\n"
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]  # no temp file left beside it


def test_an_output_the_user_named_that_is_a_symlink_stays_a_link_to_the_new_file(tmp_path):
    target, link = tmp_path / "real.txt", tmp_path / "link.txt"
    target.write_text("old\n")
    link.symlink_to(target)
    with atomic_open(link, "w", named=True) as f:
        f.write("new\n")
    assert link.is_symlink() and target.read_text() == "new\n"


def test_links_and_fifos_planted_in_a_handed_folder_are_replaced_never_written_through(tmp_path):
    from rosettamt.checkpoint import write_index

    victim = tmp_path / "home" / ".bashrc"
    victim.parent.mkdir()
    victim.write_text("keep me\n")
    folder = tmp_path / "handed" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "index.json").symlink_to(victim)
    write_index(folder, {"best": [], "averaged": None})  # what a resumed run writes first
    hyp = folder / "last.test.greedy.hyp.de"
    hyp.symlink_to(victim)
    with atomic_open(hyp, "w") as f:  # evaluate's output beside the checkpoint
        f.write("Ein Hund rennt.\n")
    assert victim.read_text() == "keep me\n"
    assert not (folder / "index.json").is_symlink() and not hyp.is_symlink() and hyp.read_text() == "Ein Hund rennt.\n"
    if hasattr(os, "mkfifo"):
        os.mkfifo(folder / "results.json")  # would block a writer forever
        with atomic_open(folder / "results.json", "w") as f:
            f.write("{}")
        assert (folder / "results.json").read_text() == "{}"


def _index(folder: Path, index) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.json").write_text(json.dumps(index), encoding="utf-8")
    return folder


@pytest.mark.parametrize("index, expected", [
    ([], "a list, not a JSON object"),
    ({"best": 5}, "'best' is a int, not a list"),
    ({"best": [{"file": "../../victim.txt", "step": 9, "bleu": 0.0}]}, "names '../../victim.txt'"),
    ({"periodic": [{"file": "/tmp/victim.pt", "step": 9}]}, "names '/tmp/victim.pt'"),
    ({"periodic": [{"file": "sub/step9.pt", "step": 9}]}, "names 'sub/step9.pt'"),
    ({"best": [{"file": "x.pt", "step": 1, "bleu": "abc"}]}, "bleu 'abc', not a number"),
    ({"best": [{"file": "x.pt", "step": "7", "bleu": 1.0}]}, "step '7', not a whole number"),
    ({"selected": {"file": "../other.pt"}}, "an entry of 'selected' names '../other.pt'"),
    ({"averaged": [1]}, "an entry of 'averaged' is a list"),
    ({"periodic": [{"file": "step9.pt"}]}, "(step9.pt) has step None"),
    ({"best": [{"file": "best.pt", "step": 3, "bleu": None}]}, "(best.pt) has bleu None"),
])
def test_a_damaged_checkpoint_index_is_one_line_naming_it(tmp_path, index, expected):
    folder = _index(tmp_path / "checkpoints", index)
    with pytest.raises(UserError) as err:
        read_index(folder)
    assert expected in str(err.value) and str(folder / "index.json") in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(UserError):  # every command that reads it: translate/evaluate/export (run_dir=) ...
        find_best_checkpoint(tmp_path)


def test_resuming_with_an_index_that_names_outside_files_deletes_nothing(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    folder = _index(tmp_path / "run" / "checkpoints", {
        "best": [{"file": "../../victim.txt", "step": 99, "bleu": 0.0}], "periodic": []})
    with pytest.raises(UserError, match="victim.txt"):
        CheckpointSaver(folder, keep_best=1).forget_after(10)  # the trainer's resume path
    assert victim.read_text() == "keep me\n"
    good = _index(tmp_path / "good" / "checkpoints", {  # the trainer's own index still reads
        "best": [{"file": "best-step0000020-bleu1.50.pt", "step": 20, "bleu": 1.5}],
        "periodic": [{"file": "step0000020.pt", "step": 20}], "last": {"file": "last.pt", "step": 20},
        "averaged": None, "selected": {"file": "averaged.pt", "step": 20, "bleu": 2.0, "sources": ["a.pt"]}})
    assert read_index(good)["best"][0]["step"] == 20


@pytest.mark.parametrize("field, value", [
    ("tgt_lang", "tgt/../../../escaped"), ("src_lang", "../x"), ("test_splits", ["test", "../../x"]),
    ("val_split", "/etc/passwd"),
])
def test_a_checkpoint_whose_names_are_paths_is_refused_before_anything_is_written(ckpt, tmp_path, field, value):
    from rosettamt.evaluate.pipeline import evaluate

    state = load_checkpoint(ckpt)
    state["config"]["data"][field] = value
    save_checkpoint(state, tmp_path / "odd.pt")
    src, ref = tmp_path / "s.txt", tmp_path / "r.txt"
    src.write_text("a b c\n")
    ref.write_text("a b c\n")
    out = tmp_path / "out"
    with pytest.raises(UserError) as err:
        evaluate(tmp_path / "odd.pt", src_file=src, ref_file=ref, output_dir=out, device="cpu")
    assert f"config.data.{field}" in str(err.value) and "not a plain name" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.pt", "out", "r.txt", "s.txt"]
    assert list(out.iterdir()) == []  # the folder the user named, checked up front, and nothing in it


def test_a_tokenizer_language_that_is_a_path_is_refused(ckpt, tmp_path):
    from rosettamt.translate import Translator

    state = load_checkpoint(ckpt)
    state["tokenizer"]["tgt_lang"] = "de/../../x"
    save_checkpoint(state, tmp_path / "odd.pt")
    with pytest.raises(UserError, match="tokenizer.tgt_lang"):
        Translator.from_checkpoint(tmp_path / "odd.pt", device="cpu")
    state["tokenizer"]["tgt_lang"] = "pt_BR"  # a real code with an underscore is fine
    state["config"]["data"]["hub_splits"] = {"val": "validation[:50%]"}  # the hub's names are not file names
    save_checkpoint(state, tmp_path / "ok.pt")
    assert Translator.from_checkpoint(tmp_path / "ok.pt", device="cpu") is not None


def test_a_damaged_metrics_log_loses_only_its_damaged_lines(tmp_path):
    from rosettamt.train.metrics import MetricsLog, plot_curves, read_metrics

    good = [{"kind": "train", "step": 5, "loss": 3.0}, {"kind": "val", "step": 5, "loss": 2.9, "bleu": 1.0}]
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in good)
                     + b'\xff\xfe{"step": 6}\n{"step": "abc"}\n5\n{"kind": "val", "step": 8}\n'
                     + json.dumps({"kind": "train", "step": 20, "loss": 2.0}).encode() + b'\n{"step": 2')
    assert [r["step"] for r in read_metrics(path)] == [5, 5, 8, 20]
    assert plot_curves(path, tmp_path / "curves.png").stat().st_size > 0  # the val record without scores is left out
    MetricsLog(tmp_path, tensorboard=False).truncate_after(10)  # what a resumed run does first
    assert [r["step"] for r in read_metrics(path)] == [5, 5, 8]


def test_damaged_cache_files_are_rebuilt_with_a_warning_not_a_traceback(toy_files, tmp_path, caplog):
    import logging

    from rosettamt.config import DataConfig, Source, TokenizerConfig
    from rosettamt.data.pipeline import prepare_data

    cache = tmp_path / "cache"
    cfg = DataConfig(source=Source.files, files=toy_files, src_lang="en", tgt_lang="xx", test_splits=["test"],
                     cache_dir=str(cache))
    tok_cfg = TokenizerConfig(vocab_size=120)
    first = prepare_data(cfg, tok_cfg)
    train_ids = first.ids["train"]["src_ids"]
    corpus_arrow = next((cache / "corpus").glob("*.arrow"))
    corpus_meta = next((cache / "corpus").glob("*.json"))
    ids_arrow = next((cache / "ids").rglob("train.*.arrow"))
    spm = next((cache / "tokenizers").rglob("joint.model"))
    del first  # its splits map these files; the damage below is another process's (a new file)
    for path in (corpus_arrow, ids_arrow, spm):  # cut short, as a full disk or a killed copy leaves them
        data = path.read_bytes()
        path.unlink()
        path.write_bytes(data[: len(data) // 3])
    corpus_meta.write_text("[1]")
    with caplog.at_level(logging.WARNING, logger="rosettamt"):
        again = prepare_data(cfg, tok_cfg)
    assert again.ids["train"]["src_ids"] == train_ids and not again.tokenizer_cache_hit
    damaged = [r.getMessage() for r in caplog.records if "is damaged" in r.getMessage()]
    assert len(damaged) >= 3 and all("rebuilding it" in m for m in damaged)
    import shutil

    entry = spm.parent  # the tokenizer's cache folder, now a link to a damaged copy elsewhere
    elsewhere = tmp_path / "elsewhere"
    shutil.move(str(entry), str(elsewhere))
    (elsewhere / "joint.model").write_bytes(b"cut")
    entry.symlink_to(elsewhere, target_is_directory=True)
    del again
    third = prepare_data(cfg, tok_cfg)
    assert third.ids["train"]["src_ids"] == train_ids and not entry.is_symlink()
    assert (elsewhere / "joint.model").read_bytes() == b"cut"  # the link went, not what it pointed to


def test_a_damaged_shard_of_a_multiprocess_id_cache_is_rebuilt(toy_files, tmp_path, caplog):
    import logging

    from rosettamt.config import DataConfig, Source, TokenizerConfig
    from rosettamt.data.pipeline import prepare_data

    cache = tmp_path / "cache"
    cfg = DataConfig(source=Source.files, files=toy_files, src_lang="en", tgt_lang="xx", test_splits=["test"],
                     cache_dir=str(cache), num_proc=2)  # the id cache is then one file per process
    first = prepare_data(cfg, TokenizerConfig(vocab_size=120))
    train_ids = first.ids["train"]["src_ids"]
    del first
    shards = sorted((cache / "ids").rglob("train.*_of_00002.arrow"))
    assert len(shards) == 2
    data = shards[1].read_bytes()
    shards[1].unlink()
    shards[1].write_bytes(data[: len(data) // 3])
    with caplog.at_level(logging.WARNING, logger="rosettamt"):
        again = prepare_data(cfg, TokenizerConfig(vocab_size=120))
    assert again.ids["train"]["src_ids"] == train_ids
    assert any("is damaged" in r.getMessage() and "_of_00002" in r.getMessage() for r in caplog.records)


def test_an_encoding_error_in_a_worker_is_not_taken_for_a_damaged_cache(toy_files, tmp_path, caplog, monkeypatch):
    """With num_proc > 1 a failing worker leaves shards of its own; with no cache before the run,
    the error is the encoding's and is raised as it is, not "rebuilt" (and then raised again)."""
    import logging

    from rosettamt.config import DataConfig, Source, TokenizerConfig
    from rosettamt.data.pipeline import prepare_data
    from rosettamt.data.tokenizer import Tokenizer

    last_source = Path(toy_files["train"][0]).read_text(encoding="utf-8").splitlines()[-1]
    encode = Tokenizer.encode_src

    def broken(self, texts):  # only the second worker's shard meets the last line: the first one completes
        if last_source in texts:
            raise RuntimeError("the encoder broke")
        return encode(self, texts)

    monkeypatch.setattr(Tokenizer, "encode_src", broken)  # the workers are forked: they see it too
    cfg = DataConfig(source=Source.files, files=toy_files, src_lang="en", tgt_lang="xx", test_splits=["test"],
                     cache_dir=str(tmp_path / "cache"), num_proc=2)
    for _ in range(2):  # the second run meets no shard the first one left behind
        with caplog.at_level(logging.WARNING, logger="rosettamt"), pytest.raises(Exception, match="encoder broke"):
            prepare_data(cfg, TokenizerConfig(vocab_size=120))
        assert not any("is damaged" in r.getMessage() for r in caplog.records)
        assert not list((tmp_path / "cache" / "ids").rglob("train.*_of_00002.arrow"))


def test_the_metrics_log_never_appends_through_a_link(tmp_path):
    from rosettamt.train.metrics import MetricsLog

    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").symlink_to(victim)
    with pytest.raises(UserError, match="metrics.jsonl"):
        MetricsLog(run, tensorboard=False).write({"kind": "train", "step": 1})
    assert victim.read_text() == "keep me\n"
    (tmp_path / "run2").mkdir()
    MetricsLog(tmp_path / "run2", tensorboard=False).write({"kind": "train", "step": 1})  # a plain file: appended
    assert (tmp_path / "run2" / "metrics.jsonl").read_text() == '{"kind": "train", "step": 1}\n'


@pytest.mark.parametrize("change, field", [
    (lambda m: m.update(tgt_lang="de/../../../x"), "tgt_lang"),
    (lambda m: m["config"]["data"].update(src_lang="../en"), "config.data.src_lang"),
    (lambda m: m["tokenizer"].update(source="../../secret.model"), "tokenizer.source"),
])
def test_an_exports_rosettamt_json_names_no_paths(tmp_path, change, field):
    from rosettamt.export.common import META_FILE, META_FORMAT, read_meta

    meta = {"format": META_FORMAT, "kind": "ctranslate2", "src_lang": "en", "tgt_lang": "de",
            "tokenizer": {"joint": True, "source": "sentencepiece.model", "target": "sentencepiece.model"},
            "config": {"data": {"src_lang": "en", "tgt_lang": "de", "test_splits": ["test_2016_flickr"]}}}
    (tmp_path / META_FILE).write_text(json.dumps(meta))
    assert read_meta(tmp_path)["tgt_lang"] == "de"  # what rosettamt-export writes reads back
    change(meta)
    (tmp_path / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(UserError, match=field.replace(".", r"\.")):
        read_meta(tmp_path)


def test_training_refuses_up_front_the_names_its_checkpoints_would_be_refused_for(make_cfg):
    from rosettamt.config import check_train

    check_train(make_cfg("data.src_lang=pt_BR", "data.tgt_lang=sr-Latn"))  # real codes are fine
    for bad, field in (("data.tgt_lang=de/x", "data.tgt_lang"), ("data.test_splits=[test,../t]", "data.test_splits[1]")):
        with pytest.raises(UserError, match=field.replace("[", r"\[").replace("]", r"\]")):
            check_train(make_cfg(bad))


@pytest.mark.parametrize("entry", [".hydra/overrides.yaml", "train.log", "checkpoints", "metrics.jsonl"])
def test_a_run_folder_with_a_link_where_a_command_writes_is_refused_before_hydra_writes(tmp_path, entry):
    from rosettamt.cli._app import check_run_dir

    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "notes.txt").write_text("keep me\n")
    run = tmp_path / "run"
    (run / entry).parent.mkdir(parents=True, exist_ok=True)
    (run / entry).symlink_to(victim / "notes.txt" if "." in Path(entry).name else victim)
    for given in (f"hydra.run.dir={run}", f'hydra.run.dir="{run}"'):  # plain, or quoted as resume prints it
        with pytest.raises(UserError, match=f"{entry} in it is a symbolic link"):
            check_run_dir([given, "trainer.resume=true"], "train")
    assert (victim / "notes.txt").read_text() == "keep me\n"
    check_run_dir([f"hydra.run.dir={tmp_path / 'fresh'}"], "train")  # a new or plain folder is fine
