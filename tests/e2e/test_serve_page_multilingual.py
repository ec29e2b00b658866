"""The page at / on a multilingual model (headless Chromium, the toy en->de/en->fr model): it offers the
model's directions, translates in the one chosen, and its heatmap's first source column is the tag.
Skipped, with the reason, where no Chromium or Playwright is installed."""

from __future__ import annotations

import os
import shutil

import pytest

from helpers.serve import start_server
from helpers.toy_multilingual import looks_like, multilingual_checkpoint, toy_pairs

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
pytestmark = pytest.mark.slow


def chromium():
    for candidate in (os.environ.get("ROSETTAMT_CHROMIUM"), "chromium", "chromium-browser", "/usr/bin/chromium"):
        path = candidate and shutil.which(candidate)
        if path:
            return path
    return None


def test_the_page_offers_the_directions_and_translates_in_the_chosen_one(tmp_path_factory):
    CHROMIUM = chromium()
    if CHROMIUM is None:
        pytest.skip("no Chromium found (apt-get install chromium, or set ROSETTAMT_CHROMIUM): browser test skipped")
    server = start_server(multilingual_checkpoint(tmp_path_factory))
    assert "ready: en -> de (the default of 2 directions: en-de, en-fr)" in server.log
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            pg = browser.new_page(viewport={"width": 1100, "height": 900})
            errors: list = []
            pg.on("pageerror", lambda err: errors.append(str(err)))
            pg.goto(f"{server.url}/")
            pg.wait_for_selector("#status.ok", timeout=60_000)
            assert pg.is_visible("#direction") and not pg.is_visible("#pair")
            options = pg.eval_on_selector_all("#direction option", "os => os.map(o => o.value)")
            assert options == ["en-de", "en-fr"] and pg.input_value("#direction") == "en-de"
            pg.select_option("#direction", "en-fr")
            sentence = toy_pairs(1, seed=51)[0][0]
            pg.fill("#source", sentence)
            pg.click("#translate")
            pg.wait_for_selector("#heatmap td.cell", timeout=60_000)
            assert looks_like(pg.inner_text("#translation"), "fr") > 0.8
            labels = pg.eval_on_selector_all("#heatmap th.col-label", "ths => ths.map(t => t.innerText)")
            assert labels[0] == "<2fr>" and labels[-1] == "</s>"
            browser.close()
        assert errors == []
    finally:
        assert server.stop() == 0, server.log
