#!/usr/bin/env bash
# What the open targets need a GPU for, in one run of under ten minutes; every result lands in $OUT.
#
#   OUT=out bash packaging/gpu_checks.sh                        # on a CUDA machine (DEADLINE=565 s)
#   OUT=out PARTS="latency dps2000 fast autotune" bash packaging/gpu_checks.sh
#   OUT=smoke DEVICE=cpu QUICK=1 bash packaging/gpu_checks.sh   # smoke test of the script itself
#
# PARTS (default "throughput models latency"), run in the order given:
#   throughput  teacher training throughput, base U-Net at 64²: eager bf16 at batch 128, eager
#               channels-last at batch 512, compiled channels-last and the fast path (--compile,
#               NCHW model, layout choice forced into the backward graph by the trainer) at batch
#               512, each with its FLOP/sample and the measured bf16 peak in the same run (teacher-*.json);
#   fast        the fast path alone (teacher-fast.json);
#   prewarm     starts the compiles of the layout part's teacher variants in the background
#               (CPU work, cached on disk by inductor), so that other parts run meanwhile;
#   layout      the fast path as the trainer runs it (layout choice forced into the backward graph)
#               and with TORCHINDUCTOR_FORCE_LAYOUT_OPT=0 (inductor's own choice, the trainer's
#               default before), timed one after the other (teacher-fast.json,
#               teacher-fast-unforced.json), then the profile of the faster (teacher-profile-layout.txt);
#   precision   the networks in bf16 against float32 (SolveOptions.precision) on held-out darcy 64²
#               cases: inverse from 123 points and forward from the whole a (precision-*.json);
#   autotune    the fast path with torch.compile's max-autotune-no-cudagraphs mode (teacher-autotune.json);
#   profile     the fast path's heaviest kernels over 10 steps after 20 (teacher-profile.txt);
#   exact       piddm against piddm-exact, darcy 64² inverse from 123 points (exact-darcy.json);
#   dps2000     diffusionpde with 2000 Heun steps against the PIDDM methods from 123 points, 4 cases
#               (dps2000-<pde>-<task>.json): the "as accurate, 100× faster" target; DPS_TASKS the
#               PDE:task pairs (default darcy:inverse), DPS_METHODS the rows (METHOD@N: N latent steps);
#   models      the bundled 64² set of each of PDES (default darcy) made again with the time left
#               before DEADLINE (make_models.py: 5,000 samples, teacher, PIDDM and λ = 0 students,
#               Heun-40 pairs and bench) -> <pde>.tar (the bundle, ~14 MB) and summary.json;
#               CURVE=K benches the teacher after each K-th of its training (<pde>-teacher-curve.json),
#               TEACHER_SHARE / ABLATION_SHARE / OVERHEAD change how the time left is shared out,
#               TEACHER_COMPILE=1 compiles the teacher's network (its compile inside its share);
#               TEACHER_FROM=resources/models keeps that set's teachers and distills only the PIDDM
#               students again (with TEACHER_SHARE=0 ABLATION_SHARE=0, the λ = 0 students kept too),
#               LAM=λ_train for them; the set's old PIDDM student is benched beside the new one;
#               TEACHER_INIT=resources/models trains that set's teachers further instead (warm start;
#               with TEACHER_SHARE=1 ABLATION_SHARE=0 the set's students are kept and benched beside),
#               TEACHER_STEPS=S caps each teacher at S steps, COOLDOWN=F lets its lr fall to 0 over the
#               last fraction F of them; STUDENT_INIT=1 (with TEACHER_FROM or TEACHER_INIT) distills the
#               students on from the set's own instead of from the teacher (make_models --student-init),
#               PIDDM_INIT=distill starts the PIDDM student from the set's λ = 0 student (--piddm-init);
#               TUNE=1 tunes the new students' latent solve on the GPU before packing (--tune; its
#               time comes out of OVERHEAD);
#   latency     interactive latency of an 8-member piddm solve at 64² on the GPU: CUDA graphs after one
#               and three warm-up steps, bf16, eager; bf16 with cudnn.benchmark; a forward solve from
#               the whole a (its sine transforms under capture) (latency.txt);
#   compiled    the same latency with the student's network through torch.compile, against the
#               plain graphs in the same process (latency-compiled.txt; the compile is timed apart),
#               with the bundled darcy student if present (each answer's error against the truth too).
# Small results go to results.tar, the log to log.txt (both in $OUT). Each step has a time limit
# (never past DEADLINE, seconds since the start, default 565), so one that hangs (a compile) cannot
# take the others' time; the training budgets are what is left before DEADLINE.
# The exact part uses the bundled darcy models, dps2000 the bundled models of its PDEs. Needs only torch, numpy, scipy, h5py
# (no Qt, no network); runs from the repository root.
set -uo pipefail
OUT=${OUT:?set OUT to a results folder}
DEVICE=${DEVICE:-cuda}
R="$OUT/results"  # every small result; packed into results.tar at exit (a copy-back takes few files)
mkdir -p "$R"
trap 'tar -cf "$OUT/results.tar" -C "$OUT" results && rm -r "$R"' EXIT
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}  # the GPU image has python3 only
exec > >(tee -a "$OUT/log.txt") 2>&1  # also outside the tar, in case the tar is lost
step() { echo "== $(date +%T) $*"; }
[[ "$DEVICE" == cuda* ]] && nvidia-smi --query-gpu=name,memory.total,clocks.sm,driver_version --format=csv

# The whole script keeps to DEADLINE seconds: the models get what the throughput steps leave.
DEADLINE=${DEADLINE:-565}
PARTS=${PARTS:-throughput models latency}
PDES=${PDES:-darcy}
left() { echo $((DEADLINE - SECONDS)); }
if [[ -n "${QUICK:-}" ]]; then  # tiny sizes: checks that every command runs, measures nothing
    TEACHER=(--model tiny --grid 16 --steps 4 --warmup 2) BATCH=(8 16) LIMIT=(120 300 300) OVERHEAD=${OVERHEAD:-40}
    MODELS=(--grid 16 --model tiny --n-data 64 --pairs 32 --batch 16 --sampler-steps 4 --bench-n 8 --bench-seeds 1)
    LAT=16 SOLVE=(--cases 1 --ensemble 2 --steps 4) DPS=8 DPS_CASES=1 LAT_STEPS=(4 8)
else
    TEACHER=(--model base --grid 64 --steps 60 --warmup 40) BATCH=(128 512) LIMIT=(60 150 240) OVERHEAD=${OVERHEAD:-150}
    MODELS=(--grid 64 --model small --n-data 5000 --teacher-batch 256 --teacher-ema 300 --pairs 2048
            --refresh 500 --batch 128 --distill-lr 3e-4 --student-ema 200 --sampler-steps 40
            --bench-n 256 --bench-seeds 3)
    LAT=64 SOLVE=(--cases 8 --ensemble 4 --steps 100) DPS=2000 DPS_CASES=4 LAT_STEPS=(50 100 200)
fi

# Run a command with a time limit of min(limit, time left before DEADLINE − 5 s).
limited() { local t=$1; shift; local l=$(( $(left) - 5 )); (( l < t )) && t=$l; (( t > 0 )) && timeout "$t" "$@"; }
teacher_bench() {  # teacher_bench LIMIT BATCH OUTFILE [flags...]
    local limit=$1 batch=$2 out=$3; shift 3
    limited "$limit" "$PY" tests/bench/bench_teacher.py "${TEACHER[@]}" --batch "$batch" --device "$DEVICE" "$@" > "$R/$out"
    grep -h '"utilisation"\|"samples_per_s_median"' "$R/$out"
}

part_throughput() {
    step "teacher throughput: eager, batch ${BATCH[0]}"
    teacher_bench "${LIMIT[0]}" "${BATCH[0]}" teacher-eager.json
    step "teacher throughput: eager channels-last, batch ${BATCH[1]}"
    teacher_bench "${LIMIT[0]}" "${BATCH[1]}" teacher-eager-cl.json --channels-last
    step "teacher throughput: compiled channels-last, batch ${BATCH[1]}"
    teacher_bench "${LIMIT[1]}" "${BATCH[1]}" teacher-compiled-cl.json --channels-last --compile
    part_fast
}
part_fast() {
    step "teacher throughput: fast path, batch ${BATCH[1]}"
    teacher_bench "${LIMIT[1]}" "${BATCH[1]}" teacher-fast.json --compile
}
# The layout part's variants: "VARIABLE=value output-file" (LAYOUT=default sets nothing inductor reads).
# Every tensor NCHW (TORCHINDUCTOR_LAYOUT_OPTIMIZATION=0) was measured once, no faster than the
# unforced choice (resources/bench/teacher-layout-base-64-h200.json), and is left out.
LAYOUTS=("LAYOUT=default teacher-fast.json"
         "TORCHINDUCTOR_FORCE_LAYOUT_OPT=0 teacher-fast-unforced.json")
PREWARM_PIDS=()
part_prewarm() {
    # Compiling is CPU work and inductor caches it on disk: the three variants compile side by side
    # now (one training step each), and the layout part's timed runs find their kernels compiled.
    step "teacher compiles for the layout part, in the background"
    local v
    for v in "${LAYOUTS[@]}"; do
        read -r var out <<< "$v"
        limited "${LIMIT[2]}" env "$var" "$PY" tests/bench/bench_teacher.py "${TEACHER[@]}" --steps 1 --warmup 1 \
            --batch "${BATCH[1]}" --device "$DEVICE" --compile > "$R/prewarm-$out" 2>&1 &
        PREWARM_PIDS+=($!)
    done
}
quiet() {  # wait for the background compiles: the timed parts need the machine to themselves
    if (( ${#PREWARM_PIDS[@]} )); then
        step "waiting for the background compiles"
        wait "${PREWARM_PIDS[@]}"
        PREWARM_PIDS=()
        tail -n 3 "$R"/prewarm-*
    fi
}
part_layout() {
    # A compiled backward graph holds no forward convolution, so inductor on its own leaves its
    # layout choice off there and convolution_backward copies every channels-last activation it is
    # given; the trainer forces the choice (engine.diffusion.train.force_layout_optimization).
    quiet
    local v best="" best_rate=0
    for v in "${LAYOUTS[@]}"; do
        read -r var out <<< "$v"
        step "teacher throughput: fast path, $var, batch ${BATCH[1]}"
        (export "$var"; teacher_bench "${LIMIT[1]}" "${BATCH[1]}" "$out" --compile)
        rate=$(grep -ho '"samples_per_s_median": [0-9.]*' "$R/$out" | grep -o '[0-9.]*$')
        if [[ -n "$rate" ]] && awk -v a="$rate" -v b="$best_rate" 'BEGIN { exit !(a > b) }'; then
            best=$var best_rate=$rate
        fi
    done
    if [[ -n "$best" ]]; then
        step "teacher profile: fast path, $best"
        (export "$best"; profile_fast teacher-profile-layout.txt)
    fi
}
part_precision() {
    step "bf16 against float32 networks in the latent solve, held-out darcy cases"
    local task obs p
    for task_obs in "inverse points:123" "forward full"; do
        read -r task obs <<< "$task_obs"
        for p in float32 bf16; do
            limited 120 "$PY" -m engine bench --pde darcy --task "$task" --obs "$obs" --seeds 1 "${SOLVE[@]}" \
                --methods piddm piddm-exact --precision "$p" --device "$DEVICE" \
                -o "$R/precision-$task-${obs%%:*}-$p.json" | tail -4
        done
    done
}
part_autotune() {
    step "teacher throughput: fast path, max-autotune-no-cudagraphs, batch ${BATCH[1]}"
    teacher_bench "${LIMIT[2]}" "${BATCH[1]}" teacher-autotune.json --compile \
        --compile-mode max-autotune-no-cudagraphs
}
profile_fast() {  # profile_fast OUTFILE: the fast path's heaviest ops over 10 steps after 20
    limited "${LIMIT[1]}" "$PY" tests/bench/bench_teacher.py "${TEACHER[@]}" --batch "${BATCH[1]}" \
        --device "$DEVICE" --compile --profile 10 2> "$R/$1" >/dev/null
    head -40 "$R/$1"
}
part_profile() {
    step "teacher profile: fast path, batch ${BATCH[1]}"
    profile_fast teacher-profile.txt
}
part_exact() {
    step "piddm against piddm-exact"
    limited 150 "$PY" -m engine bench --pde darcy --task inverse --obs points:123 --seeds 1 "${SOLVE[@]}" \
        --methods piddm piddm-exact --device "$DEVICE" -o "$R/exact-darcy.json"
}
part_dps2000() {
    quiet
    local pde_task pde task
    for pde_task in ${DPS_TASKS:-darcy:inverse}; do
        IFS=: read -r pde task <<< "$pde_task"
        step "diffusionpde with $DPS Heun steps against the PIDDM methods, $pde $task"
        limited 330 "$PY" -m engine bench --pde "$pde" --task "$task" --obs points:123 --seeds 1 "${SOLVE[@]}" \
            --cases "$DPS_CASES" --guidance-steps "$DPS" --methods ${DPS_METHODS:-piddm piddm-ref piddm-exact diffusionpde} \
            --device "$DEVICE" -o "$R/dps2000-$pde-$task.json"
    done
}
part_models() {
    # Training minutes from the time left (data, pairs, bench and latency take about OVERHEAD s per
    # set): teacher TEACHER_SHARE (default 48 %), λ = 0 student ABLATION_SHARE (8 %), PIDDM student
    # the rest. CURVE=K benches the teacher after each K-th of its budget (<pde>-teacher-curve.json).
    local teacher_share=${TEACHER_SHARE:-0.48} ablation_share=${ABLATION_SHARE:-0.08}
    local distill_share extra=()  # --teacher-curve, --teacher-compile
    distill_share=$(awk -v t="$teacher_share" -v a="$ablation_share" 'BEGIN { print 1 - t - a }')
    [[ -n "${CURVE:-}" ]] && extra=(--teacher-curve "$CURVE")
    [[ -n "${TEACHER_COMPILE:-}" ]] && extra+=(--teacher-compile)
    [[ -n "${TEACHER_FROM:-}" ]] && extra+=(--teacher-from "$TEACHER_FROM")
    [[ -n "${TEACHER_INIT:-}" ]] && extra+=(--teacher-init "$TEACHER_INIT")
    [[ -n "${TEACHER_STEPS:-}" ]] && extra+=(--teacher-steps "$TEACHER_STEPS" --teacher-cooldown "${COOLDOWN:-0}")
    [[ -n "${LAM:-}" ]] && extra+=(--lam "$LAM")
    [[ -n "${STUDENT_INIT:-}" ]] && extra+=(--student-init)
    [[ -n "${PIDDM_INIT:-}" ]] && extra+=(--piddm-init "$PIDDM_INIT")
    [[ -n "${TUNE:-}" ]] && extra+=(--tune)
    read -ra SETS <<< "$PDES"
    TRAIN=$(( ($(left) - OVERHEAD * ${#SETS[@]}) / ${#SETS[@]} ))
    if (( TRAIN < 30 )); then
        step "models skipped: $(left) s left"
        return
    fi
    minutes() { awk -v s="$TRAIN" -v f="$1" 'BEGIN { printf "%.2f", s * f / 60 }'; }
    step "models of $PDES: $TRAIN s of training each"
    "$PY" packaging/make_models.py --pdes "${SETS[@]}" --sweep --device "$DEVICE" "${MODELS[@]}" "${extra[@]}" \
        --teacher-minutes "$(minutes "$teacher_share")" --distill-minutes "$(minutes "$distill_share")" \
        --ablation-minutes "$(minutes "$ablation_share")" --work runs/gpu/work --out runs/gpu/models --tar "$OUT"
}
part_latency() {
    quiet
    step "latency"
    local lat=(tests/bench/bench_solve_latency.py --grid "$LAT" --device "$DEVICE")
    { limited 90 "$PY" "${lat[@]}" --steps "${LAT_STEPS[@]}"
      limited 40 "$PY" "${lat[@]}" --steps "${LAT_STEPS[@]}" --variants graphs bf16 --cudnn-benchmark
      limited 40 "$PY" "${lat[@]}" --steps "${LAT_STEPS[1]}" --task forward --obs full --variants graphs bf16 eager
    } > "$R/latency.txt" 2>&1
    cat "$R/latency.txt"
}
part_compiled() {
    # The bundled darcy student when it is there (its answers are then scored against the truth too).
    quiet
    step "latency, compiled student"
    local student=(--grid "$LAT")
    [[ -z "${QUICK:-}" && -d resources/models/darcy/piddm ]] && student=(--models resources/models/darcy/piddm)
    limited 300 "$PY" tests/bench/bench_solve_latency.py "${student[@]}" --device "$DEVICE" \
        --steps "${LAT_STEPS[@]}" --variants graphs compiled > "$R/latency-compiled.txt" 2>&1
    cat "$R/latency-compiled.txt"
}

for part in $PARTS; do
    if declare -F "part_$part" > /dev/null; then "part_$part"; else step "unknown part $part (skipped)"; fi
done
step "done, $(left) s before the deadline"
ls -l "$OUT" "$R"
