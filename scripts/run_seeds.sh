#!/usr/bin/env bash
# Train the Multi30k recipes' seeds side by side, one process each, and wait for them (issue 19).
#
#   bash scripts/run_seeds.sh OUT_DIR DATA_DIR MAX_TIME [override ...]
#
# Starts, at the same moment, every run named in RUNS (default: the En->De recipe, the En->De
# recipe with R-Drop and the De->En recipe, each with seeds 1, 2 and 3): run NAME trains into
# OUT_DIR/NAME (its own rosettamt-train run directory) and logs to OUT_DIR/NAME.log. Every run
# gets trainer.max_time=MAX_TIME (seconds of training; 0 = the recipe's own stop) and the extra
# overrides, so the runs that share the machine share it for the same wall-clock time: the
# ablation is "at equal time". On one GPU the processes share the card; on a CPU give each a
# thread count (trainer.threads=1) and no more runs than cores. Afterwards:
#
#   python scripts/seed_table.py OUT_DIR --out seeds.json
#
# RUNS is a space-separated list of NAME=OVERRIDES, the overrides joined by commas (so a RUNS
# override cannot hold a space, a comma or a list: pass those as trailing overrides, which every
# run gets, quoted as written); RDROP_ALPHA (default 5) is the alpha of the default R-Drop runs.
# Ctrl-C or SIGTERM to this script stops every run gracefully (SIGTERM: each saves and exits).
set -euo pipefail

if [[ $# -lt 3 ]]; then
    echo "usage: bash scripts/run_seeds.sh OUT_DIR DATA_DIR MAX_TIME [override ...]" >&2
    exit 2
fi
out=$1 data=$2 max_time=$3
shift 3
alpha=${RDROP_ALPHA:-5}
if [[ -z ${RUNS:-} ]]; then
    RUNS=""
    for s in 1 2 3; do
        RUNS+=" en_de_s$s=experiment=multi30k_en_de,seed=$s"
        RUNS+=" en_de_rdrop_s$s=experiment=multi30k_en_de,seed=$s,trainer.rdrop_alpha=$alpha"
        RUNS+=" de_en_s$s=experiment=multi30k_de_en,seed=$s"
    done
fi
if command -v rosettamt-train >/dev/null; then train=(rosettamt-train); else train=("${PYTHON:-python3}" -m rosettamt.cli.train); fi

mkdir -p "$out"
pids=() names=()
# background jobs of a script start with SIGINT ignored: pass a Ctrl-C or a SIGTERM on as SIGTERM
trap 'echo "stopping the runs" >&2; kill -TERM "${pids[@]}" 2>/dev/null' INT TERM
for run in $RUNS; do
    name=${run%%=*}
    IFS=, read -r -a overrides <<< "${run#*=}"
    "${train[@]}" "${overrides[@]}" data.dir="$data" trainer.max_time="$max_time" "$@" \
        hydra.run.dir="$out/$name" > "$out/$name.log" 2>&1 &
    pids+=($!) names+=("$name")
    echo "started $name (pid $!): ${overrides[*]} $*"
done

failed=0
for i in "${!pids[@]}"; do
    status=0
    wait "${pids[$i]}" || status=$?
    while kill -0 "${pids[$i]}" 2>/dev/null; do  # a trapped signal interrupted the wait: wait on
        status=0
        wait "${pids[$i]}" || status=$?
    done
    if [[ $status -eq 0 ]]; then
        echo "${names[$i]}: done"
    else
        echo "${names[$i]}: FAILED (exit $status); last lines of $out/${names[$i]}.log:"
        tail -n 5 "$out/${names[$i]}.log" | sed 's/^/    /'
        failed=1
    fi
done
exit $failed
