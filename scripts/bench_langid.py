"""How well and how fast rosettamt.langid tells Multi30k's languages apart.

Builds profiles from the first N training sentences of each language (as training does, at
most rosettamt.langid.MAX_LINES), then classifies every test_2016 / test_2017 sentence, which the
profiles never saw, and times both. Writes a JSON of the counts and timings.

    python scripts/bench_langid.py --data-dir ../shared/data/multi30k --out scripts/results/langid_multi30k.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

from rosettamt.langid import MAX_LINES, LangId

LANGS = ("en", "de", "fr", "cs")
TESTS = ("test_2016_flickr", "test_2017_flickr")


def read(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [line.strip() for line in f]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, required=True, help="a Multi30k folder ({split}.{lang}.gz)")
    ap.add_argument("--lines", type=int, nargs="+", default=[3000, MAX_LINES], help="training sentences per language")
    ap.add_argument("--out", type=Path, help="write the results here (JSON)")
    args = ap.parse_args()
    langs = [lang for lang in LANGS if (args.data_dir / f"train.{lang}.gz").is_file()]
    if len(langs) < 2:
        raise SystemExit(f"bench_langid: {args.data_dir} has fewer than two of train.{{{','.join(LANGS)}}}.gz")
    train = {lang: read(args.data_dir / f"train.{lang}.gz") for lang in langs}
    tests = {(split, lang): read(args.data_dir / f"{split}.{lang}.gz") for split in TESTS for lang in langs
             if (args.data_dir / f"{split}.{lang}.gz").is_file()}
    results = []
    for n in args.lines:
        start = time.perf_counter()
        profiles = LangId.build({lang: train[lang][:n] for lang in langs})
        build_s = time.perf_counter() - start
        start = time.perf_counter()
        LangId.build({lang: train[lang][:n] for lang in langs[:2]})
        build_pair_s = time.perf_counter() - start
        right, total, wrong, start = 0, 0, [], time.perf_counter()
        for (split, lang), lines in tests.items():
            for number, line in enumerate(lines, 1):
                found = profiles.detect(line)[0][0]
                right += found == lang
                total += 1
                if found != lang:  # where, not the text: the corpus stays out of the results
                    wrong.append({"split": split, "lang": lang, "line": number, "detected": found})
        detect_ms = (time.perf_counter() - start) / total * 1e3
        row = {"train_lines": n, "languages": langs, "build_s_all": round(build_s, 2),
               "build_s_first_two": round(build_pair_s, 2), "right": right, "sentences": total,
               "detect_ms_per_sentence": round(detect_ms, 3), "wrong": wrong}
        results.append(row)
        print(f"{n:>6} lines/language: {right}/{total} right; build {build_s:.2f} s ({len(langs)} languages), "
              f"{build_pair_s:.2f} s ({'+'.join(langs[:2])}); {detect_ms:.3f} ms per sentence")
    if args.out:
        args.out.write_text(json.dumps({"tests": list(TESTS), "results": results}, indent=1, ensure_ascii=False) + "\n",
                            encoding="utf-8")


if __name__ == "__main__":
    main()
