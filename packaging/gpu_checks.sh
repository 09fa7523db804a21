#!/usr/bin/env bash
# The measurements the open targets need a GPU for, in one run; every result lands in $OUT.
#
#   OUT=out bash packaging/gpu_checks.sh                        # on a CUDA machine (~6 min on an H200)
#   OUT=/tmp/o DEVICE=cpu QUICK=1 bash packaging/gpu_checks.sh   # smoke test of the script itself
#
# 1. teacher training throughput: base 64², eager bf16 at batch 128 against the fast path
#    (--channels-last --compile, batch 512), each with its FLOP/sample and the measured bf16 peak;
# 2. piddm against piddm-exact, darcy 64² sparse inverse and forward (time per case, rel_l2);
# 3. interactive latency of an 8-member solve at 64² on the GPU;
# 4. the darcy generation bench with PIDDM-ref at 300 refinement steps.
# Needs only torch, numpy, scipy, h5py (no Qt, no network); runs from the repository root.
set -euo pipefail
OUT=${OUT:?set OUT to a results folder}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"
piddm() { python -m engine "$@"; }

if [[ -n "${QUICK:-}" ]]; then  # tiny sizes: checks that every command runs, measures nothing
    TEACHER=(--model tiny --grid 16 --steps 4 --warmup 2) BATCH=(8 16) CASES=1 STEPS=5 N=4 REFINE=3 LAT=16
else
    TEACHER=(--model base --grid 64 --steps 60 --warmup 40) BATCH=(128 512) CASES=8 STEPS=100 N=256 REFINE=300 LAT=64
fi

python tests/bench/bench_teacher.py "${TEACHER[@]}" --batch "${BATCH[0]}" --device "$DEVICE" \
    > "$OUT/teacher-eager.json"
python tests/bench/bench_teacher.py "${TEACHER[@]}" --batch "${BATCH[1]}" --device "$DEVICE" \
    --channels-last --compile > "$OUT/teacher-fast.json"

for task in inverse forward; do
    piddm bench --pde darcy --task "$task" --obs points:123 --cases "$CASES" --seeds 2 --ensemble 4 \
        --steps "$STEPS" --methods piddm piddm-exact --device "$DEVICE" -o "$OUT/exact-darcy-$task.json"
done

python tests/bench/bench_solve_latency.py "$LAT" "$DEVICE" > "$OUT/latency.txt"

piddm bench --pde darcy --task generate -n "$N" --seeds 3 --refine "$REFINE" --lambda-infer 30 \
    --device "$DEVICE" -o "$OUT/generate-darcy.json"
ls -l "$OUT"
