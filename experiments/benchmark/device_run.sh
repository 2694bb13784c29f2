#!/usr/bin/env bash
# The one command of a device lease, run ON the H200 from the repository root: the packages it
# lacks installed from .device/ (made here beforehand by device_prepare.sh), the machine's
# versions, the CUDA tests, then gpu.py's comparison on WikiANN he, and optionally
# step_floor.py. The lead calls it with the device tool, from the checkout the session was
# started in (the tool sends that one), after `bash experiments/benchmark/device_prepare.sh`:
#
#     run(command="bash experiments/benchmark/device_run.sh", carry=[".device"], timeout_s=390)
#
# Variables before the command change what runs (the tool's command takes 2000 characters):
#     BUDGET_S=360     seconds the whole script may take (below)
#     GPU_ARGS="..."   more gpu.py arguments, after the script's: "--systems ours,ours_graphs",
#                      "--systems ours_graphs,ours_graphs_compiled,trainer",
#                      "--settings 3:bf16", "--steps 400", ...
#     TESTS_S=90       the most seconds tests/test_cuda.py may take; 0: not run
#     STEP_FLOOR=1     then .device/step_floor.py (about a minute), if 75 s of the budget are left
# e.g. run(command="GPU_ARGS='--systems ours_graphs,trainer' bash experiments/benchmark/device_run.sh", ...)
#
# Time. A session has 15 minutes of device time for all its calls, and a call that finds no
# warm machine spends 1-2 of them starting one (a machine goes back 30 s after a call, so a
# rerun usually starts another): two whole calls fit, 2 x (1.5 + 6) minutes, when each takes 6
# minutes. So BUDGET_S=360 by default, and timeout_s=390 leaves the script its own end. Within
# the budget (the first two timed on the CPU, not yet there): installing ~5 s, the versions
# ~10 s, tests/test_cuda.py at most TESTS_S, and gpu.py the rest less 10 s (less 75 s more with
# STEP_FLOOR=1): its --stop-after starts no run in its last 60 s, so that it ends with its
# summary; `timeout` ends it past the rest all the same, and then this script prints the summary
# of what results.json holds.
#
# What comes back, in $OUT (flat, at most 8 files): device_run.log (all of it), gpu.log
# (gpu.py's output), RESULTS_section.md (the section for experiments/benchmark/RESULTS.md),
# gpu_results.json (every run's figures), tests.log, step_floor.log. The exit status is the
# first failed step's (the others still run); 0 when all passed.
set -uo pipefail
: "${OUT:?OUT: the folder whose files come back (the device tool sets it)}"
BUDGET_S=${BUDGET_S:-360}
TESTS_S=${TESTS_S:-90}
STEP_FLOOR=${STEP_FLOOR:-0}
GPU_ARGS=${GPU_ARGS:-}
SITE=${SITE:-/tmp/site}
START=$SECONDS
STATUS=0

left() { echo $((BUDGET_S - (SECONDS - START))); }
step() { echo; echo "=== $1 ($((SECONDS - START)) s in, $(left) s of $BUDGET_S left)"; }
failed() {  # a step's exit status: the first failure is the script's
    echo "=== $1: exit status $2"
    [ "$STATUS" -ne 0 ] || STATUS=$2
}

main() {  # its body unindented, so that the heredocs in it read as the files they are
step "install .device/whl into $SITE"
if ! ls .device/whl/*.whl >/dev/null 2>&1; then
    echo "no .device/whl/*.whl: run experiments/benchmark/device_prepare.sh first, and carry .device"
    return 2
fi
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" .device/whl/*.whl || { failed install $?; return "$STATUS"; }
export PYTHONPATH="$SITE:$PWD"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false

step "the machine"
nvidia-smi || failed nvidia-smi $?
# The imports the project needs, and the versions it runs with: a missing or mismatched
# package stops the script here, in one line, rather than in every run.
python3 - <<'EOF' || { failed imports $?; return "$STATUS"; }
import importlib.metadata as metadata

import datasets, hydra, seqeval, torch, transformers  # noqa: F401  (what the runs import)
import ner.train  # noqa: F401

names = "torch transformers datasets tokenizers huggingface-hub fsspec pyarrow accelerate hydra-core seqeval"
print(", ".join(f"{n} {metadata.version(n)}" for n in names.split()))
print(f"CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA device'}")
EOF

if [ "$TESTS_S" -gt 0 ]; then
    step "tests/test_cuda.py (at most $TESTS_S s)"
    if [ -f tests/test_cuda.py ]; then
        timeout -k 5 "$TESTS_S" python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 \
            | tee "$OUT/tests.log" || failed tests/test_cuda.py $?
    else
        echo "tests/test_cuda.py is not in this checkout: no CUDA tests run"
    fi
fi

reserve=10
[ "$STEP_FLOOR" = 1 ] && reserve=85
gpu_s=$(($(left) - reserve))
step "gpu.py (at most $gpu_s s; no run starts after $((gpu_s - 60)) s)"
if [ "$gpu_s" -lt 90 ]; then
    echo "gpu.py: not run, $gpu_s s is too little for a run"
    failed gpu.py 124
else
    work=/tmp/benchmark_gpu
    timeout -k 10 "$gpu_s" python3 experiments/benchmark/gpu.py --data .device/wikiann \
        --data-config he --work-dir "$work" --results "$OUT/RESULTS_section.md" \
        --stop-after $((gpu_s - 60)) $GPU_ARGS 2>&1 | tee "$OUT/gpu.log"
    rc=$?
    results=$(ls -t "$work"/*/results.json 2>/dev/null | head -n 1)
    [ -z "$results" ] || cp "$results" "$OUT/gpu_results.json"
    if [ "$rc" -ne 0 ]; then
        failed gpu.py "$rc"
        if [ -n "$results" ]; then  # cut short: the table of what it measured
            echo "the summary of $results:"
            python3 - "$results" <<'EOF'
import json
import sys

sys.path.insert(0, "experiments/benchmark")
import gpu

report = json.load(open(sys.argv[1]))
print("\n".join(gpu.summary_lines(report["runs"], "cuda")))
EOF
        fi
    fi
fi

if [ "$STEP_FLOOR" = 1 ]; then
    step ".device/step_floor.py"
    if [ "$(left)" -lt 75 ]; then
        echo "step_floor.py: not run, $(left) s left"
    else
        timeout -k 5 $(($(left) - 5)) python3 .device/step_floor.py 2>&1 \
            | tee "$OUT/step_floor.log" || failed step_floor.py $?
    fi
fi

step "done, exit status $STATUS"
return "$STATUS"
}

# Through tee to the end, so that device_run.log holds every line before the command returns.
main 2>&1 | tee "$OUT/device_run.log"
exit "${PIPESTATUS[0]}"
