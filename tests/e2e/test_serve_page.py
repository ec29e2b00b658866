"""The page at / in a real browser (headless Chromium driven by Playwright, the toy model): it shows
the model's pair, translates what is typed (button and Ctrl+Enter) exactly as the API does, lists
the alternatives with scores, draws the attention heatmap with one row per target piece and one
column per source piece, switches head and alternative, lights the attended pieces on hover, shows
API errors, fits a phone-width screen and asks nothing of any other host. Skipped, with the reason,
where no Chromium is installed (CI installs Debian's: .ci/run)."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from helpers.serve import start_server
from helpers.toy_checkpoint import read_lines, toy_checkpoint

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
pytestmark = pytest.mark.slow


def find_chromium():
    for candidate in (os.environ.get("ROSETTAMT_CHROMIUM"), "chromium", "chromium-browser", "/usr/bin/chromium"):
        path = candidate and shutil.which(candidate)
        if path:
            return path
    return None


CHROMIUM = find_chromium()


@pytest.fixture(scope="module")
def server(toy_files, tmp_path_factory):
    srv = start_server(toy_checkpoint(toy_files, tmp_path_factory))
    yield srv
    assert srv.stop() == 0, srv.log


@pytest.fixture(scope="module")
def page(server):
    if CHROMIUM is None:
        pytest.skip("no Chromium found (apt-get install chromium, or set ROSETTAMT_CHROMIUM): browser test skipped")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        pg = browser.new_page(viewport={"width": 1100, "height": 900})
        pg.elsewhere = []  # requests to any other host: there must be none (no CDN)
        errors = []
        pg.on("pageerror", lambda err: errors.append(str(err)))

        def route(r):
            if r.request.url.startswith(server.url):
                r.continue_()
            else:
                pg.elsewhere.append(r.request.url)
                r.abort()

        pg.route("**/*", route)
        pg.goto(f"{server.url}/")
        yield pg
        browser.close()
        assert errors == []


def v1(server, sentence, beam, nbest):
    body = {"q": sentence, "beam_size": beam, "nbest": nbest, "attention": True}
    return httpx.post(f"{server.url}/v1/translate", json=body, timeout=60).json()["translations"][0]


def colors(pg):
    return pg.eval_on_selector_all("#heatmap td.cell", "cells => cells.map(c => c.style.backgroundColor)")


def test_page_translates_and_draws_the_attention(page, server, toy_files, tmp_path):
    pg = page
    sentences = read_lines(toy_files["test"][0])
    pg.wait_for_selector("#status.ok", timeout=60_000)
    assert "src" in pg.inner_text("#pair") and "tgt" in pg.inner_text("#pair")

    pg.fill("#source", sentences[0])
    pg.click("#translate")
    pg.wait_for_selector("#heatmap td.cell", timeout=60_000)
    beam, nbest = int(pg.input_value("#beam")), int(pg.input_value("#nbest"))
    api = v1(server, sentences[0], beam, nbest)
    assert pg.inner_text("#translation") == api["text"]
    shown = pg.eval_on_selector_all("#alternatives li", "lis => lis.map(li => li.innerText)")
    assert len(shown) == nbest
    for text, cand in zip(shown, api["nbest"]):
        assert cand["text"] in text and f"{cand['score']:.3f}" in text

    # one row per target piece, one column per source piece
    rows = pg.eval_on_selector_all("#heatmap tbody tr", "trs => trs.map(tr => tr.querySelectorAll('td').length)")
    assert len(rows) == len(api["nbest"][0]["target_pieces"])
    assert set(rows) == {len(api["source_pieces"])}
    assert pg.eval_on_selector_all("#heatmap th.col-label", "ths => ths.map(t => t.innerText)") == api["source_pieces"]

    # another head redraws the cells; hovering a cell lights the source piece its row attended to most
    mean = colors(pg)
    pg.select_option("#head", "1")
    assert colors(pg) != mean
    row = 1
    pg.hover(f"#heatmap tbody tr:nth-child({row + 1}) td:nth-child(2)")
    weights = np.array(api["nbest"][0]["attention"])[-1, 1]  # last layer (the default), head 1: (T, S)
    strongest = pg.eval_on_selector_all(  # the one lit at full strength (alpha 1 reads back as rgb)
        "#src-tokens .chip", "cs => cs.findIndex(c => c.style.backgroundColor === 'rgb(253, 186, 37)')")
    assert strongest == int(weights[row].argmax())
    assert pg.get_attribute(f"#tgt-tokens .chip:nth-child({row + 1})", "class") == "chip active"
    pg.hover("#src-tokens .chip:nth-child(1)")  # and the other way round: the target pieces light up
    assert pg.eval_on_selector_all("#tgt-tokens .chip", "cs => cs.filter(c => c.style.backgroundColor).length") > 0

    # picking another alternative draws its own rows
    pg.click("#alternatives li:nth-child(2)")
    assert pg.eval_on_selector_all("#heatmap tbody tr", "t => t.length") == len(api["nbest"][1]["target_pieces"])
    pg.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    assert (tmp_path / "page.png").stat().st_size > 10_000

    # Ctrl+Enter translates too
    pg.fill("#source", sentences[1])
    pg.press("#source", "Control+Enter")
    want = v1(server, sentences[1], beam, nbest)["text"]
    pg.wait_for_function("want => document.getElementById('translation').textContent === want", arg=want)

    # the checkpoint carries language profiles: the page says what the text reads as, and warns
    # when it does not read like the language the model translates from
    assert pg.get_attribute("#detected", "class") == "note" and pg.inner_text("#detected").startswith("Reads as src (")
    pg.fill("#source", read_lines(toy_files["test"][1])[0])
    pg.click("#translate")
    pg.wait_for_selector("#detected.warn")
    assert "does not read like src" in pg.inner_text("#detected")

    # an API error appears in the page
    pg.fill("#beam", "99")
    pg.click("#translate")
    pg.wait_for_selector("#error:not([hidden])")
    assert "beam_size=99 is outside" in pg.inner_text("#error")
    assert pg.is_hidden("#detected")  # no translation, nothing detected to show

    # a phone-width screen: nothing wider than the screen but the heatmap's own scroll box
    pg.set_viewport_size({"width": 360, "height": 740})
    wide = pg.evaluate("""[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 362)
        .map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right) + ' ' + (e.textContent||'').slice(0,60))""")
    assert pg.evaluate("document.documentElement.scrollWidth") <= 360, wide
    pg.screenshot(path=str(tmp_path / "phone.png"), full_page=True)

    pg.goto(f"{server.url}/docs")  # the API docs come from the package too
    pg.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
    assert pg.elsewhere == []
