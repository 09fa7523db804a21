"""piddm bench: every method on one task set, in one run (generation, or a solve task)."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli.common import emit, json_text, progress_bar
from engine.distill.config import REFINE_LAMBDA, REFINE_LR
from engine.errors import ConfigError
from engine.io.atomic import write_text


def models_folder(args: argparse.Namespace) -> Path:
    """--models, else the bundled models of --pde."""
    if args.models:
        return Path(args.models)
    from engine.models import bundled_root

    folder = bundled_root() / args.pde
    if not folder.is_dir():
        raise ConfigError(f"no bundled models for {args.pde}; pass --models DIR (with teacher/ and student folders)")
    return folder


# Options of one kind of task, with their defaults. They default to None in the parser so that one
# given for the other kind is refused (a solve option with the default --task generate would
# otherwise be ignored while a generation bench runs for many minutes).
SOLVE_OPTIONS = {"obs": "points:123", "cases": 100, "methods": None, "ensemble": 8, "steps": 200,
                 "candidates": None, "residual_norm": None, "precision": "float32", "guidance_steps": None}
GENERATE_OPTIONS = {"n": 256, "sampler_steps": 18, "refine": 10, "lambda_infer": REFINE_LAMBDA,
                    "refine_lr": REFINE_LR, "student_weights": "ema"}


def task_options(args: argparse.Namespace) -> None:
    """Refuse the other kind of task's options; fill in this kind's defaults."""
    own, other = (GENERATE_OPTIONS, SOLVE_OPTIONS) if args.task == "generate" else (SOLVE_OPTIONS, GENERATE_OPTIONS)
    if given := [k for k in other if getattr(args, k) is not None]:
        kinds = "the solve tasks (forward, inverse, reconstruct)" if args.task == "generate" else "--task generate"
        raise ConfigError(f"--{given[0].replace('_', '-')} applies to {kinds}, not to --task {args.task}")
    for k, v in own.items():
        if getattr(args, k) is None:
            setattr(args, k, v)


def cmd_bench(args: argparse.Namespace) -> int:
    from engine.bench import bench_generate, format_table

    task_options(args)
    folder = models_folder(args)
    on_progress, bar = progress_bar(f"bench {args.pde} {args.task}")
    with bar:
        if args.task == "generate":
            result = bench_generate(folder, n=args.n, seeds=args.seeds, sampler_steps=args.sampler_steps,
                                    refine_steps=args.refine, lam_infer=args.lambda_infer, refine_lr=args.refine_lr,
                                    device=args.device, student_weights=args.student_weights,
                                    on_progress=on_progress)
        else:
            from engine.bench_solve import bench_solve

            result = bench_solve(folder, task=args.task, obs=args.obs, cases=args.cases, seeds=args.seeds,
                                 methods=args.methods, ensemble=args.ensemble, steps=args.steps,
                                 guidance_steps=args.guidance_steps, candidates=args.candidates,
                                 residual_norm=args.residual_norm, precision=args.precision,
                                 device=args.device, on_progress=on_progress)
    if result["pde"] != args.pde:
        raise ConfigError(f"{folder} holds {result['pde']} models, not {args.pde}")
    if args.output:
        write_text(args.output, json_text(result))
    emit(result, args.json, format_table(result))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="compare every method on one task set in one run")
    p.add_argument("--pde", required=True)
    p.add_argument("--task", default="generate", choices=["generate", "forward", "inverse", "reconstruct"],
                   help="generate (default): sample quality of every model; the others: solves from observations")
    p.add_argument("--models", help="folder with teacher/, piddm/, distill/ (default: the bundled models)")
    p.add_argument("--grid", type=int, help="accepted for compatibility; the grid is the models' grid")
    p.add_argument("--obs", help="full | points:K | fraction:F (solve tasks; default points:123)")
    p.add_argument("--cases", type=int, help="held-out cases (solve tasks; default 100)")
    p.add_argument("--methods", nargs="+",
                   help="solve methods to compare (default: all that apply); METHOD@N runs METHOD with N steps")
    p.add_argument("--ensemble", type=int, help="members per case (solve tasks; default 8)")
    p.add_argument("--steps", type=int, help="optimiser / sampler steps of the solve methods (default 200)")
    p.add_argument("--candidates", type=int,
                   help="latent methods: each member starts from the best of K prior draws "
                        "(default: the model card's choice for the observation kind, else 1)")
    p.add_argument("--residual-norm", dest="residual_norm", type=float, metavar="SIGMA",
                   help="latent methods: physics term in H^-2·SIGMA (default: by observation, as piddm solve)")
    p.add_argument("--precision", choices=["float32", "bf16"],
                   help="the networks' arithmetic in solve tasks (default float32; bf16 runs them under autocast)")
    p.add_argument("--guidance-steps", dest="guidance_steps", type=int,
                   help="Heun steps of diffusionpde and teacher (solve tasks; default: --steps)")
    p.add_argument("-n", "--n", type=int, help="samples per seed (generate; default 256)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--sampler-steps", dest="sampler_steps", type=int, help="teacher Heun steps (generate; default 18)")
    p.add_argument("--refine", type=int, help="PIDDM-ref refinement steps (generate; default 10)")
    p.add_argument("--lambda-infer", dest="lambda_infer", type=float,
                   help=f"PIDDM-ref residual weight (generate; default {REFINE_LAMBDA:g})")
    p.add_argument("--refine-lr", dest="refine_lr", type=float,
                   help=f"PIDDM-ref Adam learning rate (generate; default {REFINE_LR:g})")
    p.add_argument("--device", default="cpu")
    p.add_argument("--student-weights", dest="student_weights", choices=["ema", "model"],
                   help="generate: the students' EMA weights (default) or their raw last-step weights (run folders only)")
    p.add_argument("-o", "--output", help="also write the JSON result here")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)
