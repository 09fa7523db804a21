"""piddm observe: an observation file for `piddm solve --obs` (and its truth) from cases of a fields file.

The mask is the task's, drawn by ``Observations.from_task`` as `piddm bench` draws it for the same
seed. Unobserved values are written as NaN, which `solve` reads as unobserved (SPEC "Files") and
every data reader refuses, so no unobserved value can reach a solve or pass for training data.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

import numpy as np

from engine.cli.common import add_common, check_output_file, emit, progress_bar, show_phase
from engine.errors import ConfigError
from engine.io.hdf5 import FieldsFile, write_fields
from engine.jobs import Progress


def write_observation_file(path: str | os.PathLike[str], ff: FieldsFile, *, dtype: str) -> Path:
    """Write ``ff`` (with ``mask``) atomically, its unobserved values NaN: nothing unobserved can pass
    for data (``write_fields`` takes NaN where the mask is 0, and ``solve`` ignores those entries)."""
    return write_fields(path, dataclasses.replace(ff, fields=np.where(ff.mask, ff.fields, np.nan)), dtype=dtype,
                        unobserved_nan=True)


def check_cases(first: int, cases: int | None, total: int, path: str) -> int:
    """The number of cases taken from ``first`` on (all that are left when ``cases`` is None);
    ConfigError naming the flag when the range is not inside the file's ``total`` cases."""
    held = f"{path} holds {total} case{'' if total == 1 else 's'} (0 … {total - 1})"
    if not 0 <= first < total:
        raise ConfigError(f"--first {first} is out of range: {held}")
    if cases is None:
        return total - first
    if cases < 1:
        raise ConfigError(f"--cases must be at least 1, got {cases}")
    if first + cases > total:
        raise ConfigError(f"--cases {cases} from --first {first} runs past the last case: {held}")
    return cases


def cmd_observe(args: argparse.Namespace) -> int:
    from engine import pdes
    from engine.grid import Grid
    from engine.io.hdf5 import read_fields
    from engine.solve.observations import TASKS, Observations

    if args.task not in TASKS:  # checked before the file is read, in the one-line style of the others
        raise ConfigError(f"unknown task {args.task!r}; known: {', '.join(TASKS)}")
    check_output_file(args.truth_output, [args.data], flag="--truth")
    if args.truth_output and Path(args.truth_output).resolve() == Path(args.output).resolve():
        raise ConfigError(f"--truth {args.truth_output} is also -o: the observations and the truth need two files")
    phases = [f"reading {args.data}", f"drawing {args.task} masks", f"writing {args.output}"]
    phases += [f"writing {args.truth_output}"] if args.truth_output else []
    on_progress, bar = progress_bar(f"observe {args.task}")

    def phase(i: int) -> None:
        on_progress(Progress("observe", i, len(phases)))
        show_phase(bar, phases[i])

    with bar:
        phase(0)
        # observations=True: a file with a mask may hold NaN where unobserved; refused just below
        src = read_fields(args.data, observations=True)
        if src.mask is not None:
            raise ConfigError(f"{args.data} already has a mask (an observation file or a solve's answer): "
                              "observe a file of whole samples, as piddm generate or piddm sample writes")
        n = check_cases(args.first, args.cases, len(src), args.data)
        take = slice(args.first, args.first + n)
        pde = pdes.get(src.pde, **src.pde_params)
        phase(1)
        # drawn for cases 0 … first+n−1 and cut: case i of DATA gets the mask seeded by (seed, i)
        # whatever --first selects, as bench's case i does, and files of parts add up to the whole
        obs = Observations.from_task(pde, src.fields[: take.stop], args.task, args.spec, seed=args.seed).cases(take)
        obs.validate(pde, Grid(src.grid))  # what solve refuses (a case observing everything) is refused here
        dtype = src.fields.dtype.name if src.fields.dtype.name in ("float32", "float64") else "float32"
        phase(2)
        write_observation_file(args.output, FieldsFile(
            fields=obs.values, pde=src.pde, channels=src.channels, pde_params=src.pde_params,
            method="observations", seed=args.seed, mask=obs.mask,
            extra={"task": args.task, "obs": args.spec, "source": str(args.data), "first": args.first}), dtype=dtype)
        if args.truth_output:
            phase(3)
            write_fields(args.truth_output, dataclasses.replace(
                src, fields=src.fields[take], std=None, residual=None, created="",
                extra={**src.extra, "source": str(args.data), "first": args.first}), dtype=dtype)
    per_case = obs.mask[0].size
    observed = int(obs.mask[0].sum())  # every case observes as many values (full, points:K, fraction:F)
    out = {"output": str(args.output), "truth": args.truth_output, "source": str(args.data), "pde": src.pde,
           "task": args.task, "obs": args.spec, "seed": args.seed, "first": args.first, "cases": n,
           "grid": src.grid, "observed_per_case": observed, "values_per_case": per_case}
    truth = f"; their truth to {args.truth_output}" if args.truth_output else ""
    emit(out, args.json, f"wrote {n} {args.task} case{'' if n == 1 else 's'} ({args.spec}: {observed} of "
         f"{per_case} values each, the rest NaN) of {args.data} cases {args.first} … {args.first + n - 1} "
         f"to {args.output}{truth}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("observe", help="make an observation file for piddm solve from cases of a fields file")
    p.add_argument("data", metavar="DATA", help="fields file of whole samples (.h5), e.g. from piddm generate")
    p.add_argument("--task", required=True, help="forward | inverse | reconstruct: which entries are observed")
    p.add_argument("--obs", dest="spec", required=True, metavar="SPEC",
                   help="full (the task's whole channel; not for reconstruct) | points:K (K random nodes per "
                        "case, drawn with --seed) | fraction:F (that fraction of the task's nodes)")
    p.add_argument("--cases", type=int, help="number of cases to take (default: all from --first on)")
    p.add_argument("--first", type=int, default=0, help="index of the first case taken (default 0)")
    p.add_argument("-o", "--output", required=True, help="observation fields file to write (.h5), with a mask")
    p.add_argument("--truth", dest="truth_output", metavar="TRUTH",
                   help="also write the same cases whole: the ground truth for piddm evaluate --truth")
    add_common(p)
    p.set_defaults(func=cmd_observe)
