"""The end-of-run checkpoint rule (trainer.select) on constructed candidates, what run_dir= then resolves
to, the audit trail in results.json, and the end-of-run table's paper-protocol column."""

from __future__ import annotations

import json

import pytest

from rosettamt.checkpoint import find_best_checkpoint, read_index
from rosettamt.config import Select
from rosettamt.train import report
from rosettamt.train.report import format_table, metric_for_tests
from rosettamt.train.saver import CheckpointSaver
from rosettamt.train.select import Candidate, pick, select


def _candidates(best: float, last: float, top: float):
    return [Candidate("best", "best-step0000900-bleu.pt", best), Candidate("average_last", "averaged.pt", last),
            Candidate("average_best", "averaged-best.pt", top)]


def test_val_bleu_rule_takes_the_highest_and_ties_go_to_the_simplest():
    assert pick(_candidates(40.8, 41.2, 41.0), Select.val_bleu)[0].name == "average_last"
    assert pick(_candidates(40.8, 40.9, 41.0), Select.val_bleu)[0].name == "average_best"
    assert pick(_candidates(41.0, 41.0, 41.0), Select.val_bleu)[0].name == "best"
    assert pick(_candidates(40.0, 41.0, 41.0), Select.val_bleu)[0].name == "average_last"
    assert pick(list(reversed(_candidates(40.0, 41.0, 41.0))), Select.val_bleu)[0].name == "average_last"


def test_a_fixed_rule_takes_its_candidate_whatever_the_scores():
    cands = _candidates(45.0, 30.0, 20.0)
    for rule in (Select.best, Select.average_last, Select.average_best):
        chosen, why = pick(cands, rule)
        assert chosen.name == rule.value and why == f"trainer.select={rule.value}"
    chosen, why = pick(cands[:2], Select.average_best)  # not built (too few checkpoints): the val rule, said so
    assert chosen.name == "best" and "was not built" in why


def test_the_pick_is_what_run_dir_resolves_to(tmp_path, make_cfg):
    ckpt_dir = tmp_path / "run" / "checkpoints"
    saver = CheckpointSaver(ckpt_dir, keep_best=3)
    for name in ("best-step0000900-bleu.pt", "averaged.pt", "averaged-best.pt", "last.pt"):
        (ckpt_dir / name).write_bytes(b"")
    saver.index["best"] = [{"file": "best-step0000900-bleu.pt", "step": 900, "bleu": 45.0}]
    saver.index["averaged"] = {"file": "averaged.pt", "step": 1000, "bleu": 30.0, "sources": []}
    cfg = make_cfg("trainer.average_last=2", "trainer.select=average_last")
    chosen = select(cfg, saver, _candidates(45.0, 30.0, 20.0))
    assert chosen.name == "average_last"
    assert find_best_checkpoint(tmp_path / "run") == ckpt_dir / "averaged.pt"  # not the higher-BLEU best single
    assert read_index(ckpt_dir)["selected"]["rule"] == "average_last"
    saver.forget_after(500)  # a resumed run redoes its end: the old pick is forgotten
    assert read_index(ckpt_dir)["selected"] is None



def test_end_of_run_scores_every_candidate_and_prints_the_paper_column(make_cfg, tmp_path, capsys):
    from rosettamt.train.loop import train

    pytest.importorskip("sacremoses")
    run = tmp_path / "run"
    result = train(make_cfg("trainer.max_steps=20", "trainer.save_every=5", "trainer.val_every=5",
                                   "trainer.keep_best=3", "trainer.average_last=2", "trainer.average_best=2",
                                   "trainer.select=average_best", "trainer.evaluate_at_end=true",
                                   "metric.paper_protocol=true"), run)
    out = capsys.readouterr().out
    results = json.loads((run / "results.json").read_text())
    sel = results["selection"]
    assert sel["rule"] == "average_best" and sel["picked"] == "average_best"
    assert [c["name"] for c in sel["candidates"]] == ["best", "average_last", "average_best"]
    index = read_index(run / "checkpoints")
    for c in sel["candidates"]:
        assert set(c["test"]) == {"test"} and c["test"]["test"]["paper_bleu"] is not None
        assert (run / "checkpoints" / c["file"]).is_file()
    assert sel["candidates"][2]["sources"] == [e["file"] for e in index["best"][:2]]
    assert sel["candidates"][0]["val_bleu"] == index["best"][0]["bleu"]
    assert result.best_checkpoint.name == "averaged-best.pt" and results["checkpoint"].endswith("averaged-best.pt")
    assert "| paper BLEU |" in out and "* average_best" in out


def test_table_paper_column_and_the_note_without_sacremoses(make_cfg, monkeypatch, tmp_path, capsys):
    row = {"bleu": 40.123, "chrf": 64.0, "bleu_signature": "sig"}
    plain = format_table({"test_2016_flickr": {**row, "paper_bleu": None}})
    assert "paper" not in plain and "40.12" in plain
    table = format_table({"test_2016_flickr": {**row, "paper_bleu": 41.404}, "test_2017_flickr": {**row}})
    header, _, first, second = table.splitlines()
    assert header.split("|")[4].strip() == "paper BLEU"
    assert first.split("|")[4].strip() == "41.40" and second.split("|")[4].strip() == "-"
    cfg = make_cfg("metric.paper_protocol=true")
    assert metric_for_tests(cfg) == (cfg, "")
    real = report.importlib.util.find_spec
    monkeypatch.setattr(report.importlib.util, "find_spec", lambda name, *a: None if name == "sacremoses"
                        else real(name, *a))
    scored, note = metric_for_tests(cfg)
    assert not scored.metric.paper_protocol and cfg.metric.paper_protocol
    assert note == ("paper-protocol BLEU not computed: metric.paper_protocol=true needs sacremoses "
                    "(pip install sacremoses)")
    import rosettamt.evaluate

    seen = []
    monkeypatch.setattr(rosettamt.evaluate, "evaluate_splits", lambda ckpt, data, splits, decode, metric, *a, **k:
                        seen.append(metric.paper_protocol) or {"test": {**row, "paper_bleu": None}})
    report.evaluate_test_splits(tmp_path / "x.pt", cfg, tmp_path, "cpu")
    lines = capsys.readouterr().out.strip().splitlines()
    assert seen == [False] and lines[-1] == note and "paper" not in "".join(lines[:-1])
