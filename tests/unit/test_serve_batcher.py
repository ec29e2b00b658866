"""The dynamic batcher with a fake model (no torch, no HTTP): jobs with the same settings share a
batch within the token budget and the wait, each caller gets its own lines back in order, other
settings wait their turn, attention runs alone, the queue is bounded, a caller that gave up is
skipped, close() answers what is queued, a failed load or batch reaches the callers."""

from __future__ import annotations

import threading
import time

import pytest

from rosettamt.serve.batcher import Batcher, Closed, QueueFull, Settings

GREEDY, BEAM = Settings(1, 1, 1.0), Settings(4, 1, 1.0)


class Fake:
    """Each line costs 10 tokens; a batch waits for ``gate``; results say which search made them."""

    def __init__(self):
        self.batches = []
        self.gate = threading.Event()
        self.gate.set()
        self.busy = threading.Event()

    def count_tokens(self, lines):
        return 10 * len(lines)

    def translate(self, lines, settings):
        self.busy.set()
        assert self.gate.wait(10)
        if "boom" in lines:
            raise RuntimeError("boom")
        self.batches.append((settings, list(lines)))
        return [f"{line}/{settings.beam_size}" for line in lines]

    def attend(self, lines, settings):
        self.batches.append(("attention", list(lines)))
        return [f"{line}/att" for line in lines]


def make(model=None, tokens=1000, wait=0.0, queue=100, start=True):
    model = model or Fake()
    batcher = Batcher(lambda: model, tokens, wait, queue)
    if start:
        batcher.start()
        assert batcher.loaded.wait(5)
    return batcher, model


def hold(batcher, model):
    """Occupy the worker with one job so that what comes next piles up in the queue."""
    model.gate.clear()
    model.busy.clear()
    first = batcher.submit(["hold"], GREEDY)
    assert model.busy.wait(5)
    return first


def test_waiting_jobs_share_a_batch_by_settings_and_get_their_own_lines_in_order():
    batcher, model = make()
    first = hold(batcher, model)
    a = batcher.submit(["a1", "a2"], GREEDY)
    b = batcher.submit(["b1"], BEAM)
    c = batcher.submit(["c1"], GREEDY)
    d = batcher.submit(["d1", "d2", "d3"], BEAM)
    model.gate.set()
    assert first.result(5) == ["hold/1"]
    assert a.result(5) == ["a1/1", "a2/1"] and c.result(5) == ["c1/1"]
    assert b.result(5) == ["b1/4"] and d.result(5) == ["d1/4", "d2/4", "d3/4"]
    assert model.batches[1:] == [(GREEDY, ["a1", "a2", "c1"]), (BEAM, ["b1", "d1", "d2", "d3"])]
    stats = batcher.stats()
    assert (stats["batches"], stats["requests"], stats["sentences"]) == (3, 5, 8)
    assert stats["max_batch_sentences"] == 4 and stats["max_batch_tokens"] == 40 and stats["queued_sentences"] == 0
    assert batcher.close(5)


def test_a_batch_stays_within_the_token_budget():
    batcher, model = make(tokens=25)
    first = hold(batcher, model)
    futures = [batcher.submit([f"s{i}"], GREEDY) for i in range(5)]
    model.gate.set()
    assert [f.result(5) for f in futures] == [[f"s{i}/1"] for i in range(5)] and first.result(5)
    assert [lines for _, lines in model.batches[1:]] == [["s0", "s1"], ["s2", "s3"], ["s4"]]
    batcher.close(5)


def test_the_worker_waits_max_wait_for_company():
    batcher, model = make(wait=0.5)
    a = batcher.submit(["a"], GREEDY)
    time.sleep(0.1)
    b = batcher.submit(["b"], GREEDY)
    assert a.result(5) == ["a/1"] and b.result(5) == ["b/1"]
    assert model.batches == [(GREEDY, ["a", "b"])]
    batcher.close(5)


def test_attention_jobs_run_alone():
    batcher, model = make()
    first = hold(batcher, model)
    att = Settings(4, 2, 1.0, attention=True)
    x, y = batcher.submit(["x"], att), batcher.submit(["y"], att)
    model.gate.set()
    assert x.result(5) == ["x/att"] and y.result(5) == ["y/att"] and first.result(5)
    assert model.batches[1:] == [("attention", ["x"]), ("attention", ["y"])]
    batcher.close(5)


def test_the_queue_is_bounded_by_lines_and_frees_them_when_answered():
    batcher, model = make(queue=4)
    first = hold(batcher, model)
    second = batcher.submit(["a", "b", "c"], GREEDY)
    with pytest.raises(QueueFull, match="4 lines waiting, at most 4"):
        batcher.submit(["d"], GREEDY)
    model.gate.set()
    assert first.result(5) and second.result(5)
    assert batcher.submit(["a", "b", "c", "d"], GREEDY).result(5) == ["a/1", "b/1", "c/1", "d/1"]
    batcher.close(5)


def test_a_caller_that_gave_up_is_skipped():
    batcher, model = make()
    first = hold(batcher, model)
    gone = batcher.submit(["gone"], GREEDY)
    assert gone.cancel()
    kept = batcher.submit(["kept"], GREEDY)
    model.gate.set()
    assert kept.result(5) == ["kept/1"] and first.result(5)
    assert ["gone"] not in [lines for _, lines in model.batches]
    assert batcher.stats()["skipped_requests"] == 1 and batcher.stats()["queued_sentences"] == 0
    batcher.close(5)


def test_close_answers_what_is_queued_then_refuses():
    batcher, model = make()
    first = hold(batcher, model)
    queued = [batcher.submit([f"q{i}"], BEAM if i % 2 else GREEDY) for i in range(4)]
    closer = threading.Thread(target=batcher.close, args=(10,))
    closer.start()
    time.sleep(0.05)
    with pytest.raises(Closed):
        batcher.submit(["late"], GREEDY)
    model.gate.set()
    closer.join(10)
    assert first.result(0) == ["hold/1"]
    assert [f.result(0) for f in queued] == [["q0/1"], ["q1/4"], ["q2/1"], ["q3/4"]]


def test_a_failed_batch_fails_its_callers_and_the_next_batch_runs():
    batcher, model = make()
    with pytest.raises(RuntimeError, match="boom"):
        batcher.submit(["boom"], GREEDY).result(5)
    assert batcher.submit(["ok"], GREEDY).result(5) == ["ok/1"]
    assert batcher.stats()["failed_batches"] == 1
    batcher.close(5)


def test_a_failed_load_closes_the_batcher():
    def load():
        raise ValueError("no model")

    batcher = Batcher(load, 100, 0.0, 10)
    batcher.start()
    assert batcher.loaded.wait(5)
    assert isinstance(batcher.load_error, ValueError) and batcher.model is None
    with pytest.raises(Closed):
        batcher.submit(["a"], GREEDY)
    assert batcher.close(5)
