"""piddm bench: every method on one task set, in one run (generation, or a solve task)."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine import pdes
from engine.cli.common import emit, json_text, progress_bar, seed_value
from engine.distill.config import REFINE_LAMBDA, REFINE_LR
from engine.errors import ConfigError
from engine.io.atomic import write_text


def check_pde(name: str) -> None:
    """Refuse a PDE the registry lacks before anything else (a bench ran for minutes, then said so)."""
    if name in pdes.names():
        return
    base, dash, grid = name.partition("-")
    hint = f" ({name} is a bundled model set: --pde {base} --grid {grid})" if dash and base in pdes.names() else ""
    raise ConfigError(f"unknown PDE {name!r}; known: {', '.join(pdes.names())}{hint}")


def check_grid(grid: int | None) -> None:
    """A grid the engine's models can have: a multiple of 8 (TeacherConfig.grid_n: three U-Net halvings)."""
    if grid is not None and (grid < 8 or grid % 8):
        raise ConfigError(f"--grid {grid}: the engine's models are on grids that are multiples of 8 (16, 32, 64, …)")


def bundled_set(pde: str, grid: int | None) -> Path:
    """The bundled models of ``pde``: resources/models/<pde>, or with --grid the set on that grid
    (resources/models/<pde>-<grid> for the further sets)."""
    from engine.bench import models_pde_grid
    from engine.models import bundled_root

    root = bundled_root()
    sets = [f for f in (root / pde, *sorted(root.glob(f"{pde}-*"))) if f.is_dir()]
    if not sets:
        raise ConfigError(f"no bundled models for {pde}; pass --models DIR (with teacher/ and student folders)")
    if grid is None:
        return sets[0]
    grids = {f: models_pde_grid(f)[1] for f in sets}
    if found := [f for f, n in grids.items() if n == grid]:
        return found[0]
    have = ", ".join(f"{n}² ({f.name})" for f, n in grids.items())
    raise ConfigError(f"no bundled {pde} models on a {grid}² grid; bundled: {have}; pass --models DIR for {grid}² models")


def models_folder(args: argparse.Namespace) -> Path:
    """--models, else the bundled models of --pde (on --grid); refused, before any work, when they are
    not --pde's or not on --grid (a bench always runs on its models' grid)."""
    from engine.bench import models_pde_grid

    folder = Path(args.models) if args.models else bundled_set(args.pde, args.grid)
    pde, grid = models_pde_grid(folder)
    if pde != args.pde:
        raise ConfigError(f"{folder} holds {pde} models, not {args.pde}")
    if args.grid is not None and args.grid != grid:
        raise ConfigError(f"--grid {args.grid}: the models in {folder} are on a {grid}² grid, and a bench runs on "
                          f"its models' grid (leave out --grid, or give --models with {args.grid}² models)")
    return folder


# The numeric options and the least each may be (steps and counts ≥ 1, ...): checked in the flags'
# own names before the models load. The engine functions check their arguments again for other callers.
AT_LEAST = {"cases": 1, "ensemble": 1, "steps": 1, "candidates": 1, "guidance_steps": 1, "n": 2, "seeds": 1,
            "sampler_steps": 1, "refine": 0, "lambda_infer": 0}


def check_number_options(args: argparse.Namespace) -> None:
    from engine.config import check_number

    for name, low in AT_LEAST.items():
        check_number(f"--{name.replace('_', '-')}", getattr(args, name), low)
    check_number("--refine-lr", args.refine_lr, 0, above=True)
    check_number("--residual-norm", args.residual_norm, 0, high=2)


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

    # every refusal before the minutes of work: a wrong PDE was only noticed after the whole bench
    check_pde(args.pde)
    check_grid(args.grid)
    task_options(args)
    check_number_options(args)
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
    if args.output:
        write_text(args.output, json_text(result) + "\n")  # a text file ends with a newline
    emit(result, args.json, format_table(result))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="compare every method on one task set in one run")
    p.add_argument("--pde", required=True, metavar="PDE",
                   help=f"the models' PDE: {' | '.join(pdes.names())} (refused when --models holds another's)")
    p.add_argument("--task", default="generate", choices=["generate", "forward", "inverse", "reconstruct"],
                   help="generate (default): sample quality of every model; the others: solves from observations")
    p.add_argument("--models", metavar="SET",
                   help="a folder holding teacher/ and student folders such as piddm/ and distill/ "
                        "(train -o SET/teacher, distill -o SET/piddm; default: the bundled models of --pde)")
    p.add_argument("--grid", type=int, metavar="N",
                   help="the models' grid: picks the bundled set on N² (e.g. darcy 32: resources/models/darcy-32); "
                        "with --models, refused unless their grid is N (default: the models' grid)")
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
                   help="latent methods and dataspace: physics term in H^-2·SIGMA (default: by observation, as piddm solve)")
    p.add_argument("--precision", choices=["float32", "bf16"],
                   help="the networks' arithmetic in solve tasks (default float32; bf16 runs them under autocast)")
    p.add_argument("--guidance-steps", dest="guidance_steps", type=int,
                   help="Heun steps of diffusionpde and teacher (solve tasks; default: --steps)")
    p.add_argument("-n", "--n", type=int, help="samples per seed (generate; default 256)")
    p.add_argument("--seeds", type=int, default=3,
                   help="repeats, each with its own fixed draws (masks, starts, samples); figures are mean ± std "
                        "over them (default 3)")
    p.add_argument("--sampler-steps", dest="sampler_steps", type=int, help="teacher Heun steps (generate; default 18)")
    p.add_argument("--refine", type=int, help="PIDDM-ref refinement steps (generate; default 10)")
    p.add_argument("--lambda-infer", dest="lambda_infer", type=float,
                   help=f"PIDDM-ref residual weight (generate; default {REFINE_LAMBDA:g})")
    p.add_argument("--refine-lr", dest="refine_lr", type=float,
                   help=f"PIDDM-ref Adam learning rate (generate; default {REFINE_LR:g})")
    p.add_argument("--device", default="cpu", help="cpu (default) | cuda | cuda:N")
    p.add_argument("--student-weights", dest="student_weights", choices=["ema", "model"],
                   help="generate: the students' EMA weights (default) or their raw last-step weights (run folders only)")
    p.add_argument("-o", "--output", metavar="FILE", help="also write the JSON result to FILE (e.g. bench.json)")
    p.add_argument("--seed", type=seed_value, default=0,
                   help="not used: a bench's draws are fixed per --seeds repeat, so that runs compare "
                        "(taken, as by every command)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.set_defaults(func=cmd_bench)
