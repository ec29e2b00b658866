#!/usr/bin/env bash
# Install rosettamt with its test extras and run the whole test suite (offline, CPU, a few minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
pip install -q torch==2.13.0 2>/dev/null || pip install -q "torch>=2.3"
pip install -q -e ".[test]"
# Argos Translate, for the test that installs an exported .argosmodel and translates with it. Its
# exact pins (stanza==1.10.1, sacremoses<0.2) clash with ours, and it runs with the newer ones,
# so it is installed without them, beside what it imports.
pip install -q "spacy>=3.5" stanza minisbd && pip install -q --no-deps argostranslate
# tests/e2e/test_serve_page.py drives a headless Chromium (Debian's chromium package; .ci/run installs it)
if [ -z "${ROSETTAMT_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1 \
   && ! command -v chromium-browser >/dev/null 2>&1; then
  echo "test.sh: no chromium found (apt-get install chromium, or set ROSETTAMT_CHROMIUM):" \
       "the browser test tests/e2e/test_serve_page.py will be skipped" >&2
fi
set +e
python -m pytest -q -p no:cacheprovider "$@"
rc=$?
set -e
# pytest exits 5 when it collected no tests: that is a failure here, not a pass.
if [ "$rc" -eq 5 ]; then echo "no tests were collected" >&2; exit 1; fi
exit "$rc"
