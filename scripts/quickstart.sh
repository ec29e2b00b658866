#!/usr/bin/env bash
# Fresh machine -> installed rosettamt -> prepared Multi30k -> trained model -> test BLEU.
# Uses a local Multi30k copy when one is found (../shared/data/multi30k or $MULTI30K_DIR);
# otherwise the corpus is downloaded into data/multi30k. Extra arguments go to rosettamt-train.
set -euo pipefail
cd "$(dirname "$0")/.."
pip install -q torch==2.13.0 2>/dev/null || pip install -q "torch>=2.3"
pip install -q -e .
DATA_DIR="${MULTI30K_DIR:-}"
if [ -z "$DATA_DIR" ] && [ -d ../shared/data/multi30k ]; then DATA_DIR=../shared/data/multi30k; fi
ARGS=()
if [ -n "$DATA_DIR" ]; then ARGS+=("data.dir=$DATA_DIR"); fi
rosettamt-prepare "${ARGS[@]}"
rosettamt-train "${ARGS[@]}" "$@"
