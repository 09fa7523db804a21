"""What one latent step costs per member as the batch of members grows; not a test.

A latent solve optimises every member of every case in one batch (B·E members through the student,
forward and backward). On a GPU a larger batch is cheaper per member; on a CPU the per-member cost
rises once the activations outgrow the caches, which makes a bench or a ``piddm solve`` of many cases
× members slower per member than one of a few. This times one generator evaluation and its
backward pass (what a latent step costs, less the residual) at each batch size:

    python tests/bench/bench_member_batch.py --models resources/models/poisson/piddm [--device cpu]
        [--batches 8 16 32 64 128] [--repeats 3]

Prints seconds per step and milliseconds per member (the last of --repeats, after warm-up).
With --solve-cases B the whole solve (--method, default piddm) is timed instead (inverse from 123
points of the held-out bench cases, --ensemble E, --steps S), once per members-per-batch limit in
--batches (the solve's ``api.CPU_MEMBERS_PER_BATCH``; 0 = all B·E members in one batch), in the
same run:

    python tests/bench/bench_member_batch.py --solve-cases 8 --ensemble 4 --steps 30 --batches 0 16 8
        [--method piddm-exact]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from engine.models import load_model  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=str(ROOT / "resources" / "models" / "poisson" / "piddm"),
                    help="a student folder (a bundled piddm/ or distill/, or a distillation run)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batches", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--solve-cases", type=int, default=0, help="time whole solves of this many cases instead")
    ap.add_argument("--ensemble", type=int, default=4)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--method", default="piddm", help="the method of --solve-cases (a latent one)")
    args = ap.parse_args(argv)
    import torch

    if args.solve_cases:
        return time_solves(args)
    student = load_model(args.models, args.device).student
    print(f"{args.models}: {student.grid.n}², {args.device}, {torch.get_num_threads()} threads")
    for batch in args.batches:
        eps = student.noise(list(range(batch))).detach().clone().requires_grad_(True)
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            student.generate(eps).square().sum().backward()
            if eps.device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - t0
        print(f"batch {batch:4d}: {seconds:.3f} s per step, {seconds / batch * 1e3:.1f} ms per member", flush=True)
    return 0


def time_solves(args: argparse.Namespace) -> int:
    """Whole solves of the same cases, one per members-per-batch limit (module docstring)."""
    import numpy as np

    from engine.bench_solve import held_out_cases
    from engine.solve import Observations, SolveOptions, api, solve

    model = load_model(args.models, args.device)
    truth = held_out_cases(model.pde.name, args.solve_cases, model.grid.n)
    obs = Observations.from_task(model.pde, truth, "inverse", "points:123", seed=0)
    opts = SolveOptions(method=args.method, ensemble=args.ensemble, steps=args.steps)
    first = None
    for limit in args.batches:
        api.CPU_MEMBERS_PER_BATCH = limit or 10**9
        res = solve(model, model.pde, obs, opts)
        first = res.mean if first is None else first
        print(f"≤ {limit or 'all'} members per batch: {res.seconds:.1f} s, "
              f"{res.seconds / (args.steps * len(obs) * args.ensemble) * 1e3:.1f} ms per member-step; "
              f"largest difference from the first answer {float(np.abs(res.mean - first).max()):.2e}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
