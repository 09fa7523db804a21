"""Tune the ``diffusionpde`` guidance weights ζ of the bundled models and store them in their cards.

For each PDE folder under resources/models/ (or those named), or the one folder given with --models
(a folder with piddm/ and distill/, as ``piddm bench --models`` takes), loads <folder>/piddm (it brings
its teacher), draws validation cases with ``engine.seeding.VALIDATION_SEED`` (never the bench cases),
and runs ``engine.solve.guidance.tune_guidance`` for the forward and inverse tasks. The result goes to
card["guidance"][task] of <pde>/teacher/card.json, <pde>/piddm/card.json and <pde>/distill/card.json
(the weights are the teacher's; every member carries them, so that a solve reads the same weights
whichever of the set's folders --model names), with the search record under card["guidance_tuning"][task]. With ``--spec full`` the key is
"<task>/full": a whole observed channel pulls through every entry and has weights of its own.

Each candidate is scored by its own ``tune_guidance`` call (one-element grids), so every score is
recorded. Search "coord" (default, affordable on a CPU): ζ_obs over --zetas-obs at the default ζ_pde
factor, then the ζ_pde factor over --pde-factors at the best ζ_obs. Search "grid": the full product.
The default weights (``default_guidance``: ζ_obs = 1, ζ_pde = 1e-2·h²) are always among the candidates,
so the stored score can be compared with the untuned one.

    .venv/bin/python packaging/tune_guidance.py [--pdes darcy poisson | --models FOLDER] [--cases 4] [--steps 30]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import pdes  # noqa: E402
from engine.data.generate import generate_fields  # noqa: E402
from engine.io.atomic import write_text  # noqa: E402
from engine.models import load_model  # noqa: E402
from engine.seeding import MASK_SEED_OFFSET, VALIDATION_SEED, validation_mask_seed  # noqa: E402
from engine.solve.guidance import tune_guidance  # noqa: E402

MODELS = ROOT / "resources" / "models"
DEFAULT_ZETA_OBS, DEFAULT_PDE_FACTOR = 1.0, 1e-2  # default_guidance, as a factor of h²
# burgers' task rows hold only N nodes (< 123): observe the whole initial / final row there.
SPEC_OVERRIDE = {"burgers": "full"}


def _score(model: Any, pde: Any, cases: Any, task: str, spec: str, steps: int, zo: float, fp: float,
           seed: int) -> float:
    r = tune_guidance(model, pde, cases, task, spec=spec, steps=steps, zetas_obs=(zo,), pde_factors=(fp,),
                      seed=seed)
    return float(r["rel_l2"])  # NaN when the candidate diverged


def tune_task(model: Any, pde: Any, cases: Any, task: str, *, spec: str, steps: int, search: str,
              zetas_obs: list[float], pde_factors: list[float], seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(card["guidance"][task], card["guidance_tuning"][task])."""
    h2 = model.teacher.grid.h ** 2
    t0 = time.perf_counter()
    scores: dict[tuple[float, float], float] = {}

    def run(zo: float, fp: float) -> None:
        if (zo, fp) not in scores:
            scores[(zo, fp)] = _score(model, pde, cases, task, spec, steps, zo, fp, seed)
            print(f"  {pde.name} {task} ζ_obs={zo:g} ζ_pde={fp:g}·h² rel_l2={scores[(zo, fp)]:.4f}", flush=True)

    zos = sorted(set(zetas_obs) | {DEFAULT_ZETA_OBS})
    fps = sorted(set(pde_factors) | {DEFAULT_PDE_FACTOR})
    if search == "grid":
        for zo, fp in itertools.product(zos, fps):
            run(zo, fp)
    else:
        for zo in zos:
            run(zo, DEFAULT_PDE_FACTOR)
        finite = {k: v for k, v in scores.items() if math.isfinite(v)}
        zo_best = min(finite, key=finite.get)[0] if finite else DEFAULT_ZETA_OBS
        for fp in fps:
            run(zo_best, fp)
    finite = {k: v for k, v in scores.items() if math.isfinite(v)}
    zo, fp = min(finite, key=finite.get) if finite else (DEFAULT_ZETA_OBS, DEFAULT_PDE_FACTOR)
    seconds = time.perf_counter() - t0
    weights = {"zeta_obs": zo, "zeta_pde": fp * h2, "rel_l2": scores.get((zo, fp), float("nan")),
               "steps": steps, "spec": spec, "cases": int(len(cases))}
    record = {"cases": int(len(cases)), "steps": steps, "grid": model.teacher.grid.n, "spec": spec,
              "seed": VALIDATION_SEED, "mask_seed": validation_mask_seed(seed), "search": search,
              "seconds": round(seconds, 1),
              "default": {"zeta_obs": DEFAULT_ZETA_OBS, "zeta_pde_factor": DEFAULT_PDE_FACTOR,
                          "rel_l2": scores.get((DEFAULT_ZETA_OBS, DEFAULT_PDE_FACTOR))},
              "scores": [{"zeta_obs": a, "zeta_pde_factor": b, "rel_l2": (s if math.isfinite(s) else None)}
                         for (a, b), s in scores.items()]}
    return weights, record


def write_cards(pde_dir: Path, task: str, weights: dict[str, Any], record: dict[str, Any]) -> None:
    for name in ("teacher", "piddm", "distill"):
        folder = pde_dir / name
        if not folder.is_dir():
            continue
        path = folder / "card.json"  # a run folder has none yet: the weights start one
        card = json.loads(path.read_text()) if path.is_file() else {}
        card.setdefault("guidance", {})[task] = weights
        card.setdefault("guidance_tuning", {})[task] = record
        write_text(path, json.dumps(card, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pdes", nargs="+", default=sorted(p.name for p in MODELS.iterdir() if (p / "piddm").is_dir()))
    ap.add_argument("--models", type=Path, help="one folder with piddm/ (and distill/) instead of the bundled ones")
    ap.add_argument("--tasks", nargs="+", default=["forward", "inverse"])
    ap.add_argument("--spec", default="points:123", help="observation spec (burgers: full)")
    ap.add_argument("--cases", type=int, default=4)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--search", choices=["coord", "grid"], default="coord")
    ap.add_argument("--zetas-obs", type=float, nargs="+", default=[0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0])
    ap.add_argument("--pde-factors", type=float, nargs="+", default=[0.0, 1e-2, 1e-1, 1.0, 10.0, 100.0])
    ap.add_argument("--seed", type=int, default=0, help=f"sampler seed (masks use seed + {MASK_SEED_OFFSET})")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    for pde_dir in [args.models] if args.models else [MODELS / name for name in args.pdes]:
        model = load_model(pde_dir / "piddm")
        if model.teacher is None:
            print(f"{pde_dir}: piddm has no teacher, skipped", flush=True)
            continue
        pde = model.pde
        cases = generate_fields(pde.name, args.cases, model.teacher.grid.n, VALIDATION_SEED,
                                pdes.params_of(pde)).astype("float32")
        spec = SPEC_OVERRIDE.get(pde.name, args.spec)
        for task in args.tasks:
            weights, record = tune_task(model, pde, cases, task, spec=spec, steps=args.steps, search=args.search,
                                        zetas_obs=args.zetas_obs, pde_factors=args.pde_factors, seed=args.seed)
            # A whole channel (--spec full) has weights of its own, card["guidance"]["<task>/full"];
            # burgers' standard task is already a whole row, kept under the task's name.
            key = f"{task}/full" if args.spec == "full" and pde.name not in SPEC_OVERRIDE else task
            write_cards(pde_dir, key, weights, record)
            print(f"{pde.name} {key}: {weights} (default rel_l2 {record['default']['rel_l2']}, "
                  f"{record['seconds']} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
