"""piddm solve: forward / inverse / reconstruction from an observation file (SPEC "Command line")."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from engine import pdes
from engine.cli.common import add_common, emit, progress_bar, setting_flags, show_phase, then_phase
from engine.io.hdf5 import FieldsFile, read_fields, write_fields
from engine.metrics import residual_stats


def check_student_kind(method: str, model, path: str) -> None:
    """``piddm`` is the latent solve of a student distilled with physics (λ > 0), ``distill`` that of
    the λ = 0 student (SPEC "Methods"): the same algorithm, so the label is all that tells them apart,
    and it must be true to the student."""
    from engine.errors import ConfigError

    config = getattr(getattr(model, "student", None), "config", None)
    if config is None or method not in ("piddm", "distill"):
        return
    lam = float(config.lam)
    if method == "distill" and lam != 0:
        raise ConfigError(f"method distill is the latent solve of a student distilled with λ = 0; {path} was "
                          f"distilled with λ = {lam:g} (use --method piddm, or its set's distill/ student)")
    if method == "piddm" and lam == 0:
        raise ConfigError(f"method piddm needs a student distilled with physics (λ > 0); {path} was distilled "
                          "with λ = 0: use --method distill")


DEST_OF = {"compile_network": "compile"}  # SolveOptions field -> its option's dest, where they differ


def solve_defaults() -> dict[str, Any]:
    """{dest: default} of the options some method reads (``api.OPTIONS_READ``), in SolveOptions' field
    order: SolveOptions' own defaults, so that they are written down in one place."""
    from engine.solve.api import OPTIONS_READ, SolveOptions

    read = set().union(*OPTIONS_READ.values())
    return {DEST_OF.get(f.name, f.name): f.default for f in dataclasses.fields(SolveOptions) if f.name in read}


def method_options(args: argparse.Namespace, flags: dict[str, str]) -> None:
    """Refuse an option the method does not read (``api.OPTIONS_READ``: classical with --lambda,
    diffusionpde with --lr, dataspace with --ensemble 4, one deterministic answer), as `piddm sample`
    refuses a student's options for a teacher: the run would ignore it without a word. Then fill in
    the defaults."""
    from engine.errors import ConfigError
    from engine.solve.api import OPTIONS_READ

    defaults = solve_defaults()
    reads = [DEST_OF.get(k, k) for k in OPTIONS_READ[args.method]]
    given = [k for k in defaults if getattr(args, k) not in (None, False)]
    if unread := [k for k in given if k not in reads]:
        named = ", ".join(flags[k] for k in reads) or "none of the solve options"
        raise ConfigError(f"method {args.method} does not use {flags[unread[0]]} (it reads {named})")
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)


def cmd_solve(args: argparse.Namespace) -> int:
    from engine.solve import Observations, SolveOptions, solve
    from engine.solve.api import METHODS, MODEL_FREE

    if args.method not in METHODS:  # argparse choices would list them; keep the one-line error style
        from engine.errors import ConfigError

        raise ConfigError(f"unknown method {args.method!r}; known: {', '.join(METHODS)}")
    method_options(args, args.setting_flags)
    model = None
    if args.model:
        from engine.models import load_model  # late: the model layer is optional for model-free methods

        model = load_model(args.model, device=args.device or "cpu")
        check_student_kind(args.method, model, args.model)
        ff = read_fields(args.obs, expect_pde=model.pde.name, expect_grid=model.grid.n, require_mask=True, observations=True)
        # the file's PDE parameters (helmholtz's k): the solve refuses a model made for other ones
        pde = pdes.get(ff.pde, **ff.pde_params)
    elif args.method in MODEL_FREE:
        ff = read_fields(args.obs, require_mask=True, observations=True)
        pde = pdes.get(ff.pde, **ff.pde_params)
    else:
        from engine.errors import ConfigError

        raise ConfigError(f"method {args.method} needs --model RUN (only {', '.join(MODEL_FREE)} run without one)")
    obs = Observations.from_fields_file(ff)
    opts = SolveOptions(method=args.method, ensemble=args.ensemble, steps=args.steps, lam=args.lam, lr=args.lr,
                        candidates=args.candidates, residual_norm=args.residual_norm, seed=args.seed,
                        device=args.device, precision=args.precision, compile_network=args.compile)
    on_progress, bar = progress_bar(f"solve {args.method}")
    # the bar stays up, naming each step after the last optimiser step, until the file is written
    with bar:
        steps_then = then_phase(on_progress, bar, "ensemble mean, spread and residual")
        res = solve(model, pde, obs, opts, on_progress=steps_then)
        show_phase(bar, "residual_mse of the answer")
        stats = residual_stats(pde, res.mean)
        out = {"output": args.output, "pde": pde.name, "method": res.method, "cases": len(obs),
               "ensemble": 0 if res.members is None else int(res.members.shape[1]), "seconds": res.seconds,
               "nfe": res.nfe, "misfit": res.misfit, **stats}
        show_phase(bar, f"writing {args.output}")
        write_fields(args.output, FieldsFile(
            fields=res.mean, pde=pde.name, channels=pde.fields, pde_params=pdes.params_of(pde), method=res.method,
            seed=args.seed, mask=obs.mask, std=res.std, residual=res.residual,
            extra={"solve": json.dumps({k: out[k] for k in ("ensemble", "seconds", "nfe", "misfit")} | res.settings)}))
    misfit = "" if res.misfit is None else f", misfit {res.misfit:.3e}"
    emit(out, args.json, f"{res.method}: {len(obs)} case(s) in {res.seconds:.2f} s, residual_mse "
         f"{stats['residual_mse']:.3e}{misfit}; wrote {args.output}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("solve", help="forward / inverse / reconstruction from observations")
    p.add_argument("--model", help="run directory of the model (not needed for classical, dataspace)")
    p.add_argument("--obs", required=True, help="observation fields file (with a mask dataset)")
    p.add_argument("--method", default="piddm",
                   help="piddm | piddm-ref | piddm-exact | distill | diffusionpde | teacher | dataspace | classical")
    p.add_argument("--ensemble", type=int, help="latent starts or samples per case (default 8)")
    p.add_argument("--steps", type=int, help="optimiser / sampler steps (default 200)")
    p.add_argument("--lambda", dest="lam", type=float, default=None, help="physics weight (default: the model card's tuned λ for the task, else per method; engine.solve.api)")
    p.add_argument("--lr", type=float, default=None,
                   help="latent learning rate (default: the model card's tuned rate for the task, else 0.05)")
    p.add_argument("--candidates", type=int, default=None,
                   help="latent methods: each member starts from the best of K prior draws "
                        "(default: the model card's choice for the observation kind, else 1)")
    p.add_argument("--residual-norm", dest="residual_norm", type=float, default=None, metavar="SIGMA",
                   help="latent methods and dataspace: measure the physics term in H^-2·SIGMA, 0 = plain residual (default: "
                        "half the residual's order in the channel solved for when a channel is observed whole, "
                        "else 0)")
    p.add_argument("--precision", choices=["float32", "bf16"],
                   help="the networks' arithmetic (default float32; bf16 runs them under autocast, as they were "
                        "trained on CUDA: as accurate, not faster at 64² on an H200)")
    p.add_argument("--compile", action="store_true",
                   help="latent methods: torch.compile the student's network first (about a minute, then each "
                        "step about 0.75x as long on a GPU: worth it for many cases)")
    p.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda")
    p.add_argument("-o", "--output", required=True, help="solution fields file to write (.h5)")
    add_common(p)
    p.set_defaults(func=cmd_solve, setting_flags=setting_flags(p))
