#!/usr/bin/env bash
# What the open targets need a GPU for, in one run of under ten minutes; every result lands in $OUT.
#
#   OUT=out bash packaging/gpu_checks.sh                        # on a CUDA machine (DEADLINE=565 s)
#   OUT=/tmp/o DEVICE=cpu QUICK=1 bash packaging/gpu_checks.sh   # smoke test of the script itself
#
# 1. teacher training throughput, base U-Net at 64²: eager bf16 at batch 128, eager channels-last
#    at batch 512 and the fast path (--channels-last --compile, batch 512), each with its
#    FLOP/sample and the measured bf16 peak in the same run (teacher-*.json);
# 2. the bundled darcy 64² set made again with minutes of training (make_models.py: 5,000
#    reference-solved samples, teacher, PIDDM student, λ = 0 student, generation bench, Heun-40
#    pairs and bench) -> darcy.tar (the bundle) and summary.json;
# 3. interactive latency of an 8-member piddm solve at 64² on the GPU (latency.txt).
# Each step has a time limit, so one that hangs (a compile) cannot take the others' time, and the
# training budgets are what is left before DEADLINE (seconds since the start, default 565).
# Needs only torch, numpy, scipy, h5py (no Qt, no network); runs from the repository root.
set -uo pipefail
OUT=${OUT:?set OUT to a results folder}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}  # the GPU image has python3 only
exec > >(tee -a "$OUT/log.txt") 2>&1
step() { echo "== $(date +%T) $*"; }
[[ "$DEVICE" == cuda* ]] && nvidia-smi --query-gpu=name,memory.total,clocks.sm,driver_version --format=csv

# The whole script keeps to DEADLINE seconds: the models get what the throughput steps leave.
DEADLINE=${DEADLINE:-565}
left() { echo $((DEADLINE - SECONDS)); }
if [[ -n "${QUICK:-}" ]]; then  # tiny sizes: checks that every command runs, measures nothing
    TEACHER=(--model tiny --grid 16 --steps 4 --warmup 2) BATCH=(8 16) LIMIT=(120 300) OVERHEAD=40
    MODELS=(--grid 16 --model tiny --n-data 64 --pairs 32 --batch 16 --sampler-steps 4 --bench-n 8 --bench-seeds 1)
    LAT=16
else
    TEACHER=(--model base --grid 64 --steps 60 --warmup 40) BATCH=(128 512) LIMIT=(60 150) OVERHEAD=150
    MODELS=(--grid 64 --model small --n-data 5000 --teacher-batch 256 --teacher-ema 300 --pairs 2048
            --refresh 500 --batch 128 --distill-lr 3e-4 --student-ema 200 --sampler-steps 40
            --bench-n 256 --bench-seeds 3)
    LAT=64
fi

step "teacher throughput: eager, batch ${BATCH[0]}"
timeout "${LIMIT[0]}" "$PY" tests/bench/bench_teacher.py "${TEACHER[@]}" --batch "${BATCH[0]}" \
    --device "$DEVICE" > "$OUT/teacher-eager.json"
step "teacher throughput: eager channels-last, batch ${BATCH[1]}"
timeout "${LIMIT[0]}" "$PY" tests/bench/bench_teacher.py "${TEACHER[@]}" --batch "${BATCH[1]}" \
    --device "$DEVICE" --channels-last > "$OUT/teacher-eager-cl.json"
step "teacher throughput: fast path, batch ${BATCH[1]}"
timeout "${LIMIT[1]}" "$PY" tests/bench/bench_teacher.py "${TEACHER[@]}" --batch "${BATCH[1]}" \
    --device "$DEVICE" --channels-last --compile > "$OUT/teacher-fast.json"
grep -h '"utilisation"\|"samples_per_s_median"\|"batch"\|"compile"' "$OUT"/teacher-*.json

# Training minutes from the time left (data, pairs, bench and latency take about OVERHEAD s):
# teacher 48 %, PIDDM student 44 %, λ = 0 student 8 %.
TRAIN=$(( $(left) - OVERHEAD )); (( TRAIN < 30 )) && TRAIN=30
minutes() { awk -v s="$TRAIN" -v f="$1" 'BEGIN { printf "%.2f", s * f / 60 }'; }
step "darcy models: $TRAIN s of training"
"$PY" packaging/make_models.py --pdes darcy --sweep --device "$DEVICE" "${MODELS[@]}" \
    --teacher-minutes "$(minutes 0.48)" --distill-minutes "$(minutes 0.44)" --ablation-minutes "$(minutes 0.08)" \
    --work runs/gpu/work --out runs/gpu/models --tar "$OUT"

step "latency"
timeout 60 "$PY" tests/bench/bench_solve_latency.py "$LAT" "$DEVICE" > "$OUT/latency.txt"
cat "$OUT/latency.txt"
step "done, $(left) s before the deadline"
ls -l "$OUT"
