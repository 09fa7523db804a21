"""Tune the latent solve's rate and physics weight λ of the bundled students and store them in their cards.

For each PDE folder under resources/models/ (or those named), or the one folder given with --models
(a folder with piddm/ and distill/, as ``piddm bench --models`` takes), loads each student named by
--students, draws validation cases with ``engine.seeding.VALIDATION_SEED`` (never the bench
cases), and runs ``engine.solve.tuning.tune_latent`` for each task and observation spec. The result
goes to card["solve"]["<task>/<kind>"] of that student's card (kind: "full" when a channel is
observed whole, else "points"; burgers' whole row is "points"), the search record to
card["solve_tuning"]["<task>/<kind>"]. ``piddm solve``, ``piddm bench`` and the app then use them
unless --lr / --lambda are given (``engine.solve.api.default_lr``, ``default_lambda``).

    .venv/bin/python packaging/tune_solve.py [--pdes poisson helmholtz | --models FOLDER] [--students piddm]
        [--specs points:123 full] [--cases 4] [--steps 100] [--device cuda]

``tune_set`` is what ``make_models.py --tune`` calls on a set it has just made.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import pdes  # noqa: E402
from engine.data.generate import generate_fields  # noqa: E402
from engine.io.atomic import write_text  # noqa: E402
from engine.models import load_model  # noqa: E402
from engine.seeding import MASK_SEED_OFFSET, VALIDATION_SEED  # noqa: E402
from engine.solve.tuning import tune_latent  # noqa: E402

MODELS = ROOT / "resources" / "models"
# burgers' task rows hold only N nodes (< 123): its tasks observe the whole initial / final row.
SPECS_OVERRIDE = {"burgers": ["full"]}


def write_card(folder: Path, key: str, settings: dict, record: dict) -> None:
    path = folder / "card.json"  # a run folder has none yet: the settings start one
    card = json.loads(path.read_text()) if path.is_file() else {}
    card.setdefault("solve", {})[key] = settings
    card.setdefault("solve_tuning", {})[key] = record
    write_text(path, json.dumps(card, indent=2) + "\n")


def tune_set(pde_dir: Path, students: list[str], *, tasks: list[str], specs: list[str], cases: int = 4,
             ensemble: int = 4, steps: int = 100, lrs: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1),
             lams: tuple[float, ...] = (0.01, 0.1, 1.0), seed: int = 0, device: str = "cpu") -> None:
    """Tune each of ``students`` in one set folder and write the result into its card (module docstring)."""
    for name in students:
        folder = pde_dir / name
        if not folder.is_dir():
            print(f"{folder}: not there, skipped", flush=True)
            continue
        model = load_model(folder, device)
        pde, n = model.pde, model.grid.n
        truth = generate_fields(pde.name, cases, n, VALIDATION_SEED, pdes.params_of(pde)).astype("float32")
        for spec in SPECS_OVERRIDE.get(pde.name, specs):
            for task in tasks:
                tag = f"{pde.name} {name} {task} from {spec}"
                settings, record = tune_latent(model.student, pde, truth, task, spec=spec, method=name,
                                               steps=steps, lrs=lrs, lams=lams, ensemble=ensemble, seed=seed,
                                               on_score=lambda lr, lam, sc, tag=tag:
                                               print(f"  {tag} lr={lr:g} λ={lam:g} rel_l2={sc:.4f}", flush=True))
                key = record["key"]
                write_card(folder, key, settings, {**record, "device": device})
                print(f"{pde.name} {name} {key}: lr {settings['lr']:g}, λ {settings['lam']:g}, rel_l2 "
                      f"{settings['rel_l2']:.4f} (default lr {record['default']['lr']:g}, λ "
                      f"{record['default']['lam']:g}: {record['default']['rel_l2']:.4f}; {record['seconds']} s)",
                      flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pdes", nargs="+", default=sorted(p.name for p in MODELS.iterdir() if (p / "piddm").is_dir()))
    ap.add_argument("--models", type=Path, help="one folder with piddm/ (and distill/) instead of the bundled ones")
    ap.add_argument("--students", nargs="+", default=["piddm"], choices=["piddm", "distill"])
    ap.add_argument("--tasks", nargs="+", default=["forward", "inverse"])
    ap.add_argument("--specs", nargs="+", default=["points:123", "full"], help="observation specs (burgers: full)")
    ap.add_argument("--cases", type=int, default=4)
    ap.add_argument("--ensemble", type=int, default=4)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--lrs", type=float, nargs="+", default=[0.01, 0.02, 0.05, 0.1])
    ap.add_argument("--lams", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    ap.add_argument("--seed", type=int, default=0, help=f"latent seed (masks use seed + {MASK_SEED_OFFSET})")
    ap.add_argument("--device", default="cpu", help="where the students run (cpu, cuda)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    for pde_dir in [args.models] if args.models else [MODELS / name for name in args.pdes]:
        tune_set(pde_dir, args.students, tasks=args.tasks, specs=args.specs, cases=args.cases, ensemble=args.ensemble,
                 steps=args.steps, lrs=tuple(args.lrs), lams=tuple(args.lams), seed=args.seed, device=args.device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
