#!/usr/bin/env python
"""A screenshot of rosettamt-serve's page translating one sentence, for the README.

    python scripts/screenshot_page.py --run-dir outputs/en_de --sentence "A man rides a bike." \
        --out scripts/results/serve_page_en_de.png

Starts rosettamt-serve on a free 127.0.0.1 port with the model, opens the page in headless
Chromium (Debian's chromium, driven by Playwright's Python package), types the sentence,
presses Translate, picks the layer and head asked for, hovers one target piece so that the
source pieces it attended to light up, saves the page as PNG and stops the server.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serve import Server  # noqa: E402  (the same child-process server)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("--run-dir")
    model.add_argument("--checkpoint")
    p.add_argument("--sentence", default="A man rides a bike.")
    p.add_argument("--out", default="scripts/results/serve_page.png")
    p.add_argument("--alternatives", type=int, default=3, help="n-best list length shown")
    p.add_argument("--layer", type=int, default=-1, help="decoder layer shown (-1 = the last)")
    p.add_argument("--head", default="mean", help="mean, or a head number from 1")
    p.add_argument("--hover", type=int, default=1, help="target piece to hover (from 1; 0 = none)")
    p.add_argument("--width", type=int, default=1100)
    p.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--serve-arg", dest="serve_args", action="append", default=[], help="another server override")
    args = p.parse_args()
    if not args.chromium:
        sys.exit("screenshot_page: no chromium found (apt-get install chromium, or pass --chromium PATH)")
    from playwright.sync_api import sync_playwright

    server = Server(args.run_dir, args.checkpoint, args.threads, args.serve_args)
    try:
        url = server.wait_ready(timeout=600)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": args.width, "height": 900}, device_scale_factor=2)
            page.goto(f"{url}/")
            page.wait_for_selector("#status.ok", timeout=60_000)
            page.fill("#nbest", str(args.alternatives))
            page.fill("#source", args.sentence)
            page.click("#translate")
            page.wait_for_selector("#heatmap td.cell", timeout=120_000)
            layers = page.eval_on_selector_all("#layer option", "o => o.length")
            page.select_option("#layer", str(args.layer % layers))
            page.select_option("#head", "-1" if args.head == "mean" else str(int(args.head) - 1))
            if args.hover:
                page.hover(f"#tgt-tokens .chip:nth-child({args.hover})")
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=args.out, full_page=True)
            print(f"{page.inner_text('#translation')!r}: wrote {args.out}")
            browser.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
