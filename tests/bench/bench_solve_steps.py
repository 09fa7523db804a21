"""How many latent steps a piddm solve needs, per learning rate and start screening: error against steps; not a test.

One constant-learning-rate Adam solve of S steps passes through exactly the states of the shorter
solves, so one run per learning rate gives the whole curve: the ensemble mean is taken after each
of the marked step counts (``latent_solve(trace=...)``) and scored against the true fields. The
cases are validation cases (``engine.bench_solve.VALIDATION_SEED``), never the bench's.
``--candidates`` compares starts screened from K prior draws per member (``screened_latents``),
``--residual-norms`` the physics term in H^(−2σ) (``latent`` module docstring; default: the solve's).

    python tests/bench/bench_solve_steps.py --models resources/models/darcy --task inverse \\
        --obs points:123 --lrs 0.05 0.1 0.2 --candidates 1 32 [--residual-norms 0 0.5 1] --steps 200 \\
        --cases 8 --ensemble 4 [--device cuda] [-o out.json]

Prints one table per metric (rows: learning rate, K and σ, columns: steps) and the seconds per step
(the screening's seconds apart).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from engine import pdes  # noqa: E402
from engine.bench_solve import VALIDATION_SEED, held_out_cases  # noqa: E402
from engine.grid import Grid  # noqa: E402
from engine.models import load_model  # noqa: E402
from engine.solve import Observations, api  # noqa: E402
from engine.solve.tuning import latent_curve  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=str(ROOT / "resources" / "models" / "darcy"),
                    help="a folder with piddm/ (as piddm bench --models takes)")
    ap.add_argument("--task", default="inverse", choices=("forward", "inverse", "reconstruct"))
    ap.add_argument("--obs", default="points:123")
    ap.add_argument("--lrs", type=float, nargs="+", default=[0.05, 0.1, 0.2])
    ap.add_argument("--candidates", type=int, nargs="+", default=[1])
    ap.add_argument("--residual-norms", dest="sigmas", type=float, nargs="+", default=None,
                    help="σ of the physics term's H^-2σ norm (default: the solve's for these observations)")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--marks", type=int, nargs="+", default=[25, 50, 70, 100, 150, 200])
    ap.add_argument("--cases", type=int, default=8)
    ap.add_argument("--ensemble", type=int, default=4)
    ap.add_argument("--lam", type=float, default=None, help="physics weight (default: piddm's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("-o", "--output", help="also write the JSON here")
    args = ap.parse_args(argv)

    model = load_model(Path(args.models) / "piddm", args.device)
    pde, n = model.pde, model.grid.n
    marks = sorted({k for k in args.marks if 0 <= k <= args.steps} | {args.steps})
    truth = held_out_cases(pde.name, args.cases, n, pdes.params_of(pde), seed=VALIDATION_SEED)
    obs = Observations.from_task(pde, truth, args.task, args.obs, seed=args.seed)
    obs.validate(pde, Grid(n))
    lam = args.lam if args.lam is not None else api.default_lambda("piddm", pde, obs, model)
    sigmas = args.sigmas if args.sigmas is not None else [api.default_residual_norm(pde, obs)]
    # one short solve first: one-time allocations and kernel choices stay out of the timing
    latent_curve(model.student, pde, obs, truth, lr=args.lrs[0], candidates=max(args.candidates),
                 residual_norm=sigmas[0], steps=2, marks=[], ensemble=args.ensemble, lam=lam, seed=args.seed)

    rows = {}
    for lr in args.lrs:
        for k in args.candidates:
            for sigma in sigmas:
                c = latent_curve(model.student, pde, obs, truth, lr=lr, candidates=k, residual_norm=sigma,
                                 steps=args.steps, marks=marks, ensemble=args.ensemble, lam=lam, seed=args.seed)
                rows[f"lr {lr:g} K {k} σ {sigma:g}"] = {
                    "lr": lr, "candidates": k, "residual_norm": sigma, "errors": c.errors,
                    "seconds_per_step": c.seconds_per_step, "seconds_to_first_step": c.seconds_to_first_step}
    print(f"{pde.name} {n}², {args.task} from {args.obs}, {args.cases} validation cases × ensemble "
          f"{args.ensemble}, λ = {lam:g}, {args.device}")
    for metric in next(iter(rows.values()))["errors"][marks[0]]:
        print(f"\n{metric:>20} | " + " | ".join(f"{k:>6}" for k in marks))
        for name, row in rows.items():
            print(f"{name:>20} | " + " | ".join(f"{row['errors'][k][metric]:6.4f}" for k in marks))
    print("\nseconds to the first step / per step: "
          + ", ".join(f"{name} {r['seconds_to_first_step']:.3f} / {r['seconds_per_step']:.4f}" for name, r in rows.items()))
    if args.output:
        record = {"pde": pde.name, "grid": n, "task": args.task, "obs": args.obs, "cases": args.cases,
                  "ensemble": args.ensemble, "lam": lam, "device": args.device, "case_seed": VALIDATION_SEED,
                  "marks": marks, "rows": rows}
        Path(args.output).write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
