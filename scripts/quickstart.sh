#!/usr/bin/env bash
# Fresh machine -> installed rosettamt -> prepared Multi30k En->De -> trained model -> test BLEU table.
#
# Trains the Multi30k En->De recipe (configs/experiment/multi30k_en_de.yaml) for at most 90 minutes
# of training time (the CPU run reported in the README; a GPU finishes the recipe much sooner).
# Uses a local Multi30k copy when one is found (../shared/data/multi30k or $MULTI30K_DIR); otherwise
# the corpus is downloaded into data/multi30k. Extra arguments are Hydra overrides for
# rosettamt-train and win over the ones here, e.g.  bash scripts/quickstart.sh model=tiny trainer.max_steps=50
# or  bash scripts/quickstart.sh experiment=multi30k_en_de_fast  (the one-hour CPU recipe)
set -euo pipefail
cd "$(dirname "$0")/.."
pip install -q torch==2.13.0 2>/dev/null || pip install -q "torch>=2.3"
pip install -q -e .
DATA_DIR="${MULTI30K_DIR:-}"
if [ -z "$DATA_DIR" ] && [ -d ../shared/data/multi30k ]; then DATA_DIR=../shared/data/multi30k; fi
DATA_ARGS=()
if [ -n "$DATA_DIR" ]; then DATA_ARGS+=("data.dir=$DATA_DIR"); fi
RUN_DIR="outputs/quickstart-$(date +%Y%m%d-%H%M%S)"
rosettamt-prepare "${DATA_ARGS[@]}"
# The default recipe gets a 90-minute cap; a recipe named on the command line (experiment=...) runs at
# its own length (multi30k_en_de_fast: 4,800 steps, at most 60 minutes; add trainer.max_time=SECONDS
# to cap another one).
RECIPE_ARGS=(experiment=multi30k_en_de trainer.max_time=5400)
for arg in "$@"; do
  case "$arg" in experiment=*|+experiment=*|++experiment=*) RECIPE_ARGS=() ;; esac
done
rosettamt-train "${RECIPE_ARGS[@]}" "${DATA_ARGS[@]}" hydra.run.dir="$RUN_DIR" "$@"
echo "run directory: $RUN_DIR   (translate with: rosettamt-translate run_dir=$RUN_DIR)"
