"""Interactive latency of a piddm solve (what the app feels like); not a test.

An untrained `small` U-Net student costs exactly what a trained one does, so no model is needed
(its zero-initialised layers are drawn at random, so that every layer shapes the answer the variants
are compared on); ``--models FOLDER`` times a trained student instead (a distillation run or a bundled
piddm folder; --grid is then its grid) and adds each answer's error against the truth:

    python tests/bench/bench_solve_latency.py [--grid 32] [--device cpu]   # darcy inverse from 3% of u, ensemble 8
    python tests/bench/bench_solve_latency.py --grid 64 --device cuda        # the "64² on a GPU" figure
    python tests/bench/bench_solve_latency.py --grid 64 --device cuda --task forward --obs full --steps 100
    python tests/bench/bench_solve_latency.py --models resources/models/darcy/piddm --device cuda --variants graphs compiled

Steps default to 25 50 70 100 200; how many a solve needs to converge: tests/bench/bench_solve_steps.py.

Variants, timed one after the other at each step count in the same run (on a GPU by default all
four, on the CPU "graphs", which there is the plain solve):
    graphs          each latent step replayed as one CUDA graph after one eager warm-up step (the default solve);
    graphs-warmup3  the same after three warm-up steps (the default before WARMUP_STEPS was 1);
    bf16            graphs with the network under bf16 autocast (SolveOptions.precision="bf16");
    eager           kernels launched one by one, float32;
    compiled        graphs with the student's network through torch.compile (SolveOptions.compile_network,
                    `piddm solve --compile`: inductor fuses its elementwise kernels; the compile, once
                    per shape, happens in the warm-up solve and is reported apart). Not in the default
                    set: ask for it with --variants.
Each line after the first variant says how far its answer is from the first one's. ``--cudnn-benchmark``
lets cuDNN time its convolution algorithms (a process-wide switch, so a separate run). Warnings
(a failed graph capture) are printed where they happen.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine" / "solve"))

from solve_standins import untrained_darcy_student  # noqa: E402

from engine import pdes  # noqa: E402
from engine.data.generate import generate_fields  # noqa: E402
from engine.distill.generator import Student, load_student  # noqa: E402
from engine.metrics import truth_errors  # noqa: E402
from engine.solve import Observations, SolveOptions, graphs, solve  # noqa: E402

VARIANTS = {  # name: (SolveOptions fields, warm-up steps before the capture)
    "graphs": (dict(precision="float32", cuda_graphs=True), 1),
    "graphs-warmup3": (dict(precision="float32", cuda_graphs=True), 3),
    "bf16": (dict(precision="bf16", cuda_graphs=True), 1),
    "eager": (dict(precision="float32", cuda_graphs=False), 1),
    "compiled": (dict(precision="float32", cuda_graphs=True, compile_network=True), 1),
}


def timed_solve(student: Student, obs: Observations, steps: int, variant: str) -> tuple[float, float, np.ndarray]:
    """(seconds to the first live preview, seconds to the end, mean) of an 8-member piddm solve."""
    fields, warmup = VARIANTS[variant]
    graphs.WARMUP_STEPS = warmup
    t0 = time.perf_counter()
    first: list[float] = []

    def on_progress(p) -> None:
        if p.preview is not None and not first:
            first.append(time.perf_counter() - t0)

    res = solve(student, student.pde, obs, SolveOptions(method="piddm", ensemble=8, steps=steps, **fields),
                on_progress=on_progress)
    return first[0], time.perf_counter() - t0, res.mean


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--grid", type=int, default=32)
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, nargs="+", default=[25, 50, 70, 100, 200])
    p.add_argument("--task", default="inverse", choices=["forward", "inverse", "reconstruct"])
    p.add_argument("--obs", default="fraction:0.03", help="full | points:K | fraction:F")
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=None)
    p.add_argument("--cudnn-benchmark", action="store_true", help="torch.backends.cudnn.benchmark = True")
    p.add_argument("--models", help="a trained darcy student's folder (default: an untrained one at --grid)")
    args = p.parse_args()
    warnings.simplefilter("always")
    warnings.simplefilter("ignore", DeprecationWarning)  # torch.compile's own imports; not about the solve
    warnings.showwarning = lambda msg, cat, *a, **k: print(f"  warning: {cat.__name__}: {msg}")
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    cuda = args.device.startswith("cuda")
    variants = args.variants or ([v for v in VARIANTS if v != "compiled"] if cuda else ["graphs"])
    if args.models:
        plain = load_student(args.models, args.device)
        if plain.pde.name != "darcy":
            p.error(f"{args.models} is a {plain.pde.name} student; the latency bench solves darcy")
        args.grid = plain.grid.n
    else:
        plain = untrained_darcy_student(args.grid, "small", args.device)
    truth = generate_fields("darcy", 1, args.grid, 5, pdes.params_of(plain.pde))
    obs = Observations.from_task(plain.pde, truth, args.task, args.obs, seed=0)
    for v in variants:
        t0 = time.perf_counter()
        timed_solve(plain, obs, 5, v)  # warm-up: one-time allocations, kernel selection, cuFFT plans
        if v == "compiled":
            print(f"compiled variant: warm-up solve with the compile took {time.perf_counter() - t0:.1f} s")
    where = f"{args.grid}², {args.device}{', cudnn.benchmark' if args.cudnn_benchmark else ''}"
    print(f"darcy {args.task} from {args.obs}, ensemble 8, {where}")
    for steps in args.steps:
        reference = None  # the first variant's answer
        for v in variants:
            first, done, mean = timed_solve(plain, obs, steps, v)
            gap = ""
            if reference is None:
                reference = mean
            else:
                gap = f", answer {np.abs(mean - reference).max() / np.abs(reference).max():.1e} of the field's max " \
                      f"from {variants[0]}'s"
            if args.models:  # a trained student: how good the answer is, not only how far from the first
                errors = truth_errors(plain.pde, mean, truth.astype(np.float32), obs.mask)
                gap += ", " + ", ".join(f"{k} {e:.3f}" for k, e in errors.items())
            print(f"{steps:4d} steps, {v:15s}: first preview {first:.2f} s, done {done:.3f} s{gap}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
