"""piddm distill: physics-informed distillation of a teacher run into a one-step student."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from engine.cli.common import emit, progress_bar, seed_value, setting_flags
from engine.cli.train_cmds import stop_signals_cancel
from engine.config import UNLIMITED_STEPS, check_number, from_dict, load_config, to_dict
from engine.distill.config import PHYSICS_ON, DistillConfig
from engine.errors import ConfigError
from engine.jobs import CancelToken

# option name -> DistillConfig field
_OPTIONS = {"teacher": "teacher", "init_from": "init_from", "lam": "lam", "lam_warmup": "lam_warmup", "physics_on": "physics_on",
            "pairs": "pairs", "refresh": "refresh",
            "sampler_steps": "sampler_steps", "batch": "batch_size", "lr": "lr", "steps": "steps",
            "minutes": "minutes", "seed": "seed", "device": "device", "report_every": "report_every",
            "checkpoint_minutes": "checkpoint_minutes", "preview_every": "preview_every",
            "ema_halflife": "ema_halflife_steps"}


def _recorded_teacher(run: Path, typed: str) -> Path:
    """The teacher of a run resumed from another folder than it was started in: config.json holds the
    path as it was typed (relative to that folder), the checkpoint one relative to the run."""
    from engine.distill.generator import teacher_path_of
    from engine.io.checkpoint import load_checkpoint

    if (run / "checkpoint.pt").is_file():
        found = teacher_path_of(run, str(load_checkpoint(run).get("teacher", "")))
        if found is not None and found.exists():
            return found
    raise ConfigError(f"{run}: its teacher {typed} is not found from here; pass --teacher")


def distill_config_from_args(args: argparse.Namespace) -> DistillConfig:
    given = {field: getattr(args, opt) for opt, field in _OPTIONS.items() if getattr(args, opt) is not None}
    # DistillConfig lets the engine build a step-0 student (lr 0 leaves it there); from the command
    # line both are a run that trains nothing and reports a NaN loss, refused as `piddm train` does.
    # Checked before the config's own (lr ≥ 0), so that --lr -1 and --lr 0 hear the same bound.
    check_number("steps", given.get("steps"), 1)
    check_number("lr", given.get("lr"), 0, above=True)
    if args.resume:
        saved = Path(args.output) / "config.json"
        if not saved.is_file():
            raise ConfigError(f"{args.output}: no run to resume (config.json missing)")
        cfg = from_dict(DistillConfig, {**to_dict(load_config(saved, DistillConfig)), **given})
        if "teacher" not in given and not Path(cfg.teacher).exists():
            cfg = dataclasses.replace(cfg, teacher=str(_recorded_teacher(Path(args.output), cfg.teacher)))
    else:
        if "teacher" not in given:
            raise ConfigError("--teacher is required for a new distillation run")
        if "minutes" in given and "steps" not in given:
            given["steps"] = UNLIMITED_STEPS  # the time budget is the stopping rule
        cfg = DistillConfig(**given)
    return cfg


def cmd_distill(args: argparse.Namespace) -> int:
    from engine import dist
    from engine.distill.train import distill

    cfg = distill_config_from_args(args)
    token = CancelToken()
    main = dist.env_rank() == 0  # under torchrun, rank 0 alone draws the bar and prints the result
    on_progress, bar = progress_bar(f"distill λ={cfg.lam:g}", enabled=main, minutes=cfg.minutes)
    with bar, stop_signals_cancel(token):
        res = distill(cfg, args.output, resume=args.resume, on_progress=on_progress, cancel=token)
    if not main:
        return 0
    emit({f.name: getattr(res, f.name) for f in dataclasses.fields(res) if f.name != "ema"}, args.json,
         f"distilled to step {res.step} ({res.stopped}) in {res.seconds:.1f} s "
         f"({res.pair_seconds:.1f} s of teacher pairs); loss {res.loss:.4g}, residual {res.residual:.4g} "
         f"(teacher's {res.residual_scale:.4g}); checkpoint {res.checkpoint}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("distill", help="distill a teacher into a physics-informed one-step student")
    p.add_argument("--teacher", help="teacher run directory")
    p.add_argument("-o", "--output", required=True, help="student run directory")
    p.add_argument("--init-from", dest="init_from",
                   help="warm start: an earlier student (run or bundled folder) whose EMA weights this run "
                        "starts from; it must share the teacher's PDE, grid, U-Net size and normaliser "
                        "(a teacher trained on with piddm train --init-from keeps its students' normaliser)")
    p.add_argument("--lambda", dest="lam", type=float,
                   help="λ_train, residual weight relative to the teacher's (default 0.1; 0 = pure distillation)")
    p.add_argument("--lambda-warmup", dest="lam_warmup", type=float,
                   help="fraction of the run over which λ ramps in (default 0.5)")
    p.add_argument("--physics-on", dest="physics_on", choices=PHYSICS_ON,
                   help="entries the residual term moves: all (PIDDM Eq. 9, default) or solution "
                        "(the coefficient enters the residual detached)")
    p.add_argument("--pairs", type=int, help="K, number of (ε, x0) pairs (default 1024)")
    p.add_argument("--refresh", type=int, help="R, steps between pair refreshes (default 500, 0 = never)")
    p.add_argument("--sampler-steps", dest="sampler_steps", type=int, help="teacher Heun steps N_s (default 18)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, help="optimiser steps (default 2000)")
    budget.add_argument("--minutes", type=float, help="wall-clock budget in minutes")
    p.add_argument("--batch", type=int, help="batch size per process (default 64)")
    p.add_argument("--lr", type=float, help="learning rate (default 1e-4)")
    p.add_argument("--ema-halflife", dest="ema_halflife", type=float, help="EMA half-life in steps (default 200)")
    p.add_argument("--report-every", dest="report_every", type=int)
    p.add_argument("--checkpoint-minutes", dest="checkpoint_minutes", type=float,
                   help="minutes between checkpoints (default 5; 0 = none by the clock: only at the end and on a stop)")
    p.add_argument("--preview-every", dest="preview_every", type=int,
                   help="steps between sample previews (default 100; 0 = off)")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--resume", action="store_true", help="continue the run in -o from its checkpoint")
    p.add_argument("--seed", type=seed_value, help="random seed, 0 … 2^32 − 1 (default: the config's, 0)")
    p.add_argument("--json", action="store_true", help="print a machine-readable result on stdout")
    p.set_defaults(func=cmd_distill, setting_flags=setting_flags(p, _OPTIONS))
