"""piddm train | sample (teacher).

``piddm train`` runs under ``torchrun --nproc_per_node=G -m engine train ...`` unchanged: the
engine joins the process group, rank 0 writes the run and prints. Ctrl-C or SIGTERM asks the run to
stop at the next step and save a checkpoint; a second one interrupts at once.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import signal
from collections.abc import Iterator
from pathlib import Path

from engine.cli.common import add_common, emit, progress_bar, seed_value, setting_flags
from engine.config import COMPILE_MODES, UNLIMITED_STEPS, TeacherConfig, load_config
from engine.distill.config import REFINE_LAMBDA, REFINE_LR
from engine.errors import ConfigError
from engine.jobs import CancelToken

TEACHER_SAMPLE_STEPS = 18  # N_s of `piddm sample` on a teacher (SPEC "Methods": default 18)
# CLI option -> TeacherConfig field, for options that may override a resumed run's config.
_OVERRIDES = {"steps": "steps", "minutes": "minutes", "device": "device", "report_every": "report_every",
              "checkpoint_minutes": "checkpoint_minutes", "checkpoint_every": "checkpoint_every",
              "preview_every": "preview_every", "channels_last": "channels_last", "compile": "compile",
              "compile_mode": "compile_mode"}
# Options that define a new run (defaults of TeacherConfig apply when absent).
_NEW_RUN = {"model": "model", "batch": "batch_size", "lr": "lr", "warmup": "warmup_steps",
            "ema_halflife": "ema_halflife_steps", "holdout": "holdout_fraction", "seed": "seed",
            "cooldown": "cooldown", "init_from": "init_from"}


@contextlib.contextmanager
def stop_signals_cancel(token: CancelToken) -> Iterator[None]:
    """The first SIGINT (Ctrl-C) or SIGTERM sets ``token``: the run stops at the next step and saves a
    checkpoint. SIGTERM is what a scheduler, `docker stop`, `kill` and torchrun's own shutdown send; it
    ended a run without one (all since the last periodic checkpoint lost). A second signal raises
    KeyboardInterrupt at once."""
    def handler(signum, frame):  # noqa: ARG001
        if token.cancelled:
            raise KeyboardInterrupt
        token.cancel()

    stops = (signal.SIGINT, signal.SIGTERM)
    try:
        old = {s: signal.signal(s, handler) for s in stops}
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def teacher_config_from_args(args: argparse.Namespace) -> TeacherConfig:
    """The run's config: config.json of RUN when resuming, else a new one from --data."""
    from engine.io.hdf5 import read_fields

    given = {k: v for k, v in vars(args).items() if v is not None}
    config_json = Path(args.output) / "config.json"
    if args.resume and config_json.is_file():
        cfg = load_config(config_json, TeacherConfig)
        if "data" in given:
            cfg = dataclasses.replace(cfg, dataset=str(args.data))
        # what defines the run, if given again, goes to train_teacher, which refuses a change
        cfg = dataclasses.replace(cfg, **{f: given[o] for o, f in _NEW_RUN.items() if o in given})
    else:
        if args.resume and args.data is None:
            raise ConfigError(f"{args.output}: no run to resume (config.json missing)")  # as piddm distill says
        if args.data is None:
            raise ConfigError("--data is required to start a run (only --resume can do without it)")
        ff = read_fields(args.data)
        cfg = TeacherConfig(pde=ff.pde, pde_params=dict(ff.pde_params), grid_n=ff.grid, dataset=str(args.data),
                            **{f: given[o] for o, f in _NEW_RUN.items() if o in given})
    overrides = {f: given[o] for o, f in _OVERRIDES.items() if o in given}
    if "steps" in given and "minutes" not in given:
        overrides["minutes"] = 0.0  # --steps alone means "run S steps", not "S steps or M minutes"
    if "minutes" in given and "steps" not in given:
        overrides["steps"] = UNLIMITED_STEPS  # --minutes alone: the clock decides
    return dataclasses.replace(cfg, **overrides)  # (TeacherConfig refuses a cooldown with no step count)


def cmd_train(args: argparse.Namespace) -> int:
    from engine import dist
    from engine.diffusion.train import train_teacher

    cfg = teacher_config_from_args(args)
    for h in logging.getLogger().handlers:  # the terminal shows the bar; INFO lines go to RUN/log.txt
        h.setLevel(max(h.level, logging.WARNING))
    main = dist.env_rank() == 0
    on_progress, bar = progress_bar(f"train {cfg.pde} {cfg.model}", enabled=main, minutes=cfg.minutes)
    token = CancelToken()
    with bar, stop_signals_cancel(token):
        res = train_teacher(cfg, args.output, resume=args.resume, on_progress=on_progress, cancel=token)
    if main:
        out = {k: v for k, v in dataclasses.asdict(res).items() if k not in ("ema", "model")}
        emit(out, args.json, f"trained {cfg.model} teacher to step {res.step} (stopped by {res.stopped}), "
             f"loss {res.loss:.4g}, {res.samples_per_s:.1f} samples/s; checkpoint {res.checkpoint}")
    return 0


def sample_teacher_cmd(args: argparse.Namespace) -> int:
    from engine.diffusion.model import sample_teacher

    on_progress, bar = progress_bar("sample teacher")
    with bar:
        res = sample_teacher(args.model, args.n, steps=args.steps, seed=args.seed, batch=args.batch,
                             device=args.device, output=args.output, on_progress=on_progress)
    out = {k: v for k, v in dataclasses.asdict(res).items() if k not in ("fields", "residual")}
    steps = f"{res.steps} Heun step" + ("" if res.steps == 1 else "s")
    samples = f"{res.n} teacher sample" + ("" if res.n == 1 else "s")
    emit(out, args.json, f"wrote {samples} ({steps}, NFE {res.nfe}) to "
         f"{res.path} in {res.seconds:.1f} s; residual_mse {res.residual_mse:.3g}, bc_mse {res.bc_mse:.3g}")
    return 0


def sample_student_cmd(args: argparse.Namespace) -> int:
    from engine.distill.sample import sample_student

    on_progress, bar = progress_bar("sample student")
    with bar:
        res = sample_student(args.model, args.n, refine_steps=args.refine, lam_infer=args.lambda_infer,
                             refine_lr=args.refine_lr, project_solution=args.project, seed=args.seed, batch=args.batch,
                             device=args.device, output=args.output, on_progress=on_progress)
    out = {k: v for k, v in dataclasses.asdict(res).items() if k != "fields"}
    moved = "" if res.projection_distance is None else f"; projection moved the solution by {res.projection_distance:.3g} (relative L2)"
    samples = f"{res.n} one-step sample" + ("" if res.n == 1 else "s")
    emit(out, args.json, f"wrote {samples} (refine {res.refine}, NFE {res.nfe}) to {res.path} "
         f"in {res.seconds:.2f} s; residual_mse {res.residual_mse:.3g}, bc_mse {res.bc_mse:.3g}{moved}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    """Dispatch on the checkpoint's kind: a teacher (Heun sampler) or a student (one step)."""
    from engine.config import check_number
    from engine.distill.sample import check_refine
    from engine.io.checkpoint import peek_kind

    # in the flags' names, before the model loads (a negative λ_infer climbed the residual, lr 0 did nothing)
    for name, value in (("-n", args.n), ("--steps", args.steps), ("--batch", args.batch)):
        check_number(name, value, 1)
    # the student's options, None when not given (--refine 0 too: a teacher always took it)
    student_only = {"--refine": args.refine or None, "--lambda-infer": args.lambda_infer,
                    "--refine-lr": args.refine_lr, "--project": args.project or None}
    args.refine = args.refine or 0
    args.lambda_infer = REFINE_LAMBDA if args.lambda_infer is None else args.lambda_infer
    args.refine_lr = REFINE_LR if args.refine_lr is None else args.refine_lr
    check_refine(args.refine, args.lambda_infer, args.refine_lr, names=("--refine", "--lambda-infer", "--refine-lr"))
    kind = peek_kind(args.model)
    if kind == "student":
        if args.steps is not None:  # ignored without a word before
            raise ConfigError(f"--steps is the Heun steps of a teacher; {args.model} is a one-step student "
                              "(its latent refinement takes --refine K)")
        return sample_student_cmd(args)
    if kind != "teacher":
        raise ConfigError(f"{args.model}: cannot sample a {kind!r} checkpoint")
    # a teacher has no latent to refine: these would be ignored without a word
    if given := [k for k, v in student_only.items() if v is not None]:
        raise ConfigError(f"{given[0]} applies to a distilled student, not to a teacher ({args.model})")
    args.steps = TEACHER_SAMPLE_STEPS if args.steps is None else args.steps
    return sample_teacher_cmd(args)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train (or resume) an EDM teacher on a fields file")
    p.add_argument("--data", help="training fields file (.h5); optional with --resume")
    p.add_argument("-o", "--output", required=True, help="run directory")
    p.add_argument("--model", choices=["tiny", "small", "base"], help="U-Net size (default small)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, help="optimiser steps (default 20000)")
    budget.add_argument("--minutes", type=float, help="wall-clock budget in minutes (over all sessions)")
    p.add_argument("--batch", type=int, help="batch size per process (default 32)")
    p.add_argument("--lr", type=float, help="peak learning rate (default 2e-4)")
    p.add_argument("--warmup", type=int, help="warm-up steps (default 200)")
    p.add_argument("--cooldown", type=float,
                   help="fraction of --steps at the end over which the lr falls linearly to 0 (default 0: constant)")
    p.add_argument("--init-from", dest="init_from",
                   help="start from the EMA weights and normaliser of this teacher (run or checkpoint) of the "
                        "same PDE, grid and size, with a fresh optimiser: trains a bundled teacher further")
    p.add_argument("--ema-halflife", dest="ema_halflife", type=float, help="EMA half-life in steps")
    p.add_argument("--holdout", type=float, help="held-out fraction of the data (default 0.1)")
    p.add_argument("--report-every", dest="report_every", type=int, help="steps between reports")
    p.add_argument("--checkpoint-minutes", dest="checkpoint_minutes", type=float,
                   help="minutes between checkpoints (default 5; 0 = none by the clock: only at the end, "
                        "on a stop and by --checkpoint-every)")
    p.add_argument("--checkpoint-every", dest="checkpoint_every", type=int,
                   help="also checkpoint every this many steps")
    p.add_argument("--preview-every", dest="preview_every", type=int, help="steps between sample previews")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N (default auto)")
    p.add_argument("--channels-last", dest="channels_last", action="store_const", const=True,
                   help="NHWC memory layout (faster bf16 convolutions on GPUs)")
    p.add_argument("--compile", action="store_const", const=True,
                   help="torch.compile the network (needs a C compiler; pays off on long GPU runs)")
    p.add_argument("--compile-mode", dest="compile_mode", choices=COMPILE_MODES,
                   help="with --compile: torch.compile's mode (default 'default'; max-autotune compiles for minutes)")
    p.add_argument("--resume", action="store_true", help="continue the run in -o from its checkpoint")
    p.add_argument("--seed", type=seed_value, help="random seed, 0 … 2^32 − 1 (default 0)")
    p.add_argument("--json", action="store_true", help="print a machine-readable result on stdout")
    p.set_defaults(func=cmd_train, setting_flags=setting_flags(p, _NEW_RUN | _OVERRIDES))

    p = sub.add_parser("sample", help="draw samples from a trained model into a fields file")
    p.add_argument("--model", required=True, help="run directory or checkpoint.pt")
    p.add_argument("-n", "--n", type=int, required=True, help="number of samples")
    p.add_argument("--steps", type=int, help=f"teacher: Heun steps N_s (NFE 2N_s - 1; default {TEACHER_SAMPLE_STEPS})")
    # student options default to None so that one given for a teacher is refused, not ignored
    p.add_argument("--refine", type=int, help="student: PIDDM-ref latent refinement steps k ≥ 0 (default 0)")
    p.add_argument("--lambda-infer", dest="lambda_infer", type=float,
                   help=f"student: residual weight λ_infer ≥ 0 of the refinement (default {REFINE_LAMBDA:g})")
    p.add_argument("--refine-lr", dest="refine_lr", type=float,
                   help=f"student: Adam learning rate > 0 of the refinement (default {REFINE_LR:g})")
    p.add_argument("--project", action="store_true",
                   help="student: replace the solution by the reference solve of the coefficient")
    p.add_argument("--batch", type=int, default=64, help="samples per batch (default 64)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("-o", "--output", required=True, help="fields file to write (.h5)")
    add_common(p)
    p.set_defaults(func=cmd_sample)
