"""piddm pdes | generate | evaluate."""

from __future__ import annotations

import argparse
import dataclasses

from engine import pdes
from engine.cli.common import add_common, emit, progress_bar, then_phase
from engine.errors import ConfigError
from engine.io.hdf5 import read_fields
from engine.metrics import UndefinedMetricError, moment_errors, residual_stats, truth_errors


def parse_params(items: list[str] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        try:
            out[key] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ConfigError(f"--param expects NAME=NUMBER, got {item!r}")
    return out


def cmd_pdes(args: argparse.Namespace) -> int:
    rows, lines = [], []
    for name in pdes.names():
        pde = pdes.get(name)
        rows.append({"name": name, "title": pde.title, "channels": list(pde.fields),
                     "equation": pde.equation, "units": pde.units, "params": pdes.params_of(pde)})
        params = pdes.params_text(pde)  # what generate --param NAME=VALUE sets
        lines.append(f"{name:<10} {','.join(pde.fields):<5} {pde.equation}" + (f"  ({params})" if params else ""))
    text = "\n".join(lines) + "\n(piddm generate --param NAME=VALUE sets a parameter)"
    emit({"pdes": rows}, args.json, text)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from engine.data.generate import generate_dataset

    on_progress, bar = progress_bar(f"generate {args.pde}")
    with bar:
        steps_then = then_phase(on_progress, bar, f"writing {args.output}, then its residual")
        res = generate_dataset(args.pde, args.n, args.grid, args.seed, args.output, parse_params(args.param),
                               dtype=args.dtype, on_progress=steps_then)
    out = dataclasses.asdict(res)
    emit(out, args.json, f"wrote {res.n} {args.pde} samples ({res.grid}x{res.grid}) to {res.path} "
         f"in {res.seconds:.1f} s ({res.samples_per_s:.1f} samples/s); residual_mse {res.residual_mse:.2e}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    ff = read_fields(args.samples)
    pde = pdes.get(ff.pde, **ff.pde_params)
    out: dict[str, object] = {"file": args.samples, "pde": ff.pde, "n": len(ff), "grid": ff.grid,
                              "method": ff.method}
    out.update(residual_stats(pde, ff.fields))
    if args.reference:
        ref = read_fields(args.reference, expect_pde=ff.pde, expect_grid=ff.grid, expected_by=args.samples)
        out.update(moment_errors(ff.fields, ref.fields, pde.fields))
    if args.truth:
        truth = read_fields(args.truth, expect_pde=ff.pde, expect_grid=ff.grid, expected_by=args.samples)
        if len(truth) != len(ff):
            raise ConfigError(f"--truth has {len(truth)} samples but {args.samples} has {len(ff)}")
        try:
            out.update(truth_errors(pde, ff.fields, truth.fields, ff.mask))
        except UndefinedMetricError as exc:  # say which file holds the zero field
            raise UndefinedMetricError(f"--truth {args.truth}: {exc}") from None
    text = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in out.items())
    emit(out, args.json, text)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pdes", help="list the PDE registry")
    add_common(p)
    p.set_defaults(func=cmd_pdes)

    p = sub.add_parser("generate", help="make a dataset with the reference solver")
    p.add_argument("--pde", required=True, choices=pdes.names(), help="the PDE (piddm pdes lists them)")
    p.add_argument("--n", type=int, default=1000, help="number of samples (default 1000)")
    p.add_argument("--grid", type=int, default=64, help="grid size N, N x N nodes (default 64)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                   help="storage precision (default float32)")
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="a PDE parameter, e.g. k=2 for helmholtz; repeat for several (piddm pdes --json lists them)")
    p.add_argument("-o", "--output", required=True, help="fields file to write (.h5)")
    add_common(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("evaluate", help="metrics of a fields file")
    p.add_argument("samples", help="fields file to evaluate")
    p.add_argument("--reference", help="reference set for mmse/smse")
    p.add_argument("--truth", help="ground truth, sample by sample, for rel_l2 / error_rate")
    add_common(p)
    p.set_defaults(func=cmd_evaluate)


