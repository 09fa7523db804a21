"""``piddm bench --task generate``: every generation method on one footing, in one run.

Rows: held-out data (fresh reference solves) | teacher (Heun N_s) | distill (λ = 0) | piddm |
piddm-ref (k refinement steps) | any extra students of a λ sweep. Columns: residual_mse, bc_mse,
mmse/smse per channel against a reference set (fresh reference solves with another seed), time
per sample, samples/s, NFE; each as mean ± std over seeds. Costs of teacher training, pair
generation and distillation are read from the model folders. All residuals are computed in
float64 from float32 outputs (the network runs in float32 at inference).
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine import __version__
from engine.config import check_number
from engine.data.generate import generate_fields
from engine.diffusion.model import load_teacher
from engine.diffusion.sampler import nfe as heun_nfe
from engine.distill.config import REFINE_LAMBDA, REFINE_LR
from engine.distill.generator import load_student
from engine.distill.sample import check_refine, refine
from engine.errors import CheckpointError, ConfigError
from engine.io.checkpoint import FILENAME, load_checkpoint
from engine.io.rundir import RunDir
from engine.jobs import CancelToken, Progress, ProgressFn, check_cancel, no_progress
from engine.metrics import moment_errors, residual_stats
from engine.seeding import BENCH_NOISE_SEED, HELD_OUT_SEED, REFERENCE_SEED, sample_seeds


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], np.ndarray], device: torch.device) -> tuple[np.ndarray, float]:
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - t0


def provenance(models: str | Path) -> dict[str, str]:
    """What a bench result was measured on and when: the model folder (a bundled set as
    resources/models/<set>, whatever the install's location; another as given), the software version
    and the time, so that a JSON file read later says what it measured."""
    from engine.models import bundled_root

    folder, root = Path(models).resolve(), bundled_root().resolve()
    shown = f"resources/models/{folder.relative_to(root).as_posix()}" if folder.is_relative_to(root) else str(models)
    return {"models": shown, "software_version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def summarise(runs: list[dict[str, float]]) -> dict[str, Any]:
    """{metric: {"mean", "std"}} over seeds; std None (JSON null) for a single seed, where a spread over
    seeds does not exist (a 0 would read as "perfectly reproducible")."""
    keys = runs[0].keys()
    return {k: {"mean": float(np.mean([r[k] for r in runs])),
                "std": float(np.std([r[k] for r in runs])) if len(runs) > 1 else None} for k in keys}


def model_costs(folder: Path) -> dict[str, Any]:
    """Training costs recorded in a model folder: its card's "training" entry (bundled models), else
    the last metrics.jsonl line of the run (a run folder may hold a card with other entries only).
    seconds: the training loop's wall time, resumed runs included; pair_seconds (students): all teacher
    pair generation, the initial pairs (before the loop) and the refreshes (inside it)."""
    card_path = folder / "card.json"
    if card_path.is_file() and (training := json.loads(card_path.read_text()).get("training")):
        return training
    # RunDir's reader skips the half-written last line of a killed run (json.loads raised on it)
    records = RunDir(folder).read_metrics() if folder.is_dir() else []
    last = [x for x in records if "elapsed" in x]
    if last:
        cost = {"seconds": last[-1]["elapsed"], "steps": last[-1]["step"]}
        if "pair_seconds" in last[-1]:
            cost["pair_seconds"] = last[-1]["pair_seconds"]
        return cost
    return {}


# What ``--models`` must be; said in full whenever a folder is not that (the README's run names,
# runs/darcy-teacher and runs/darcy-piddm beside each other, are not a set).
LAYOUT = (f"a folder holding teacher/ and student folders such as piddm/ and distill/, each with {FILENAME} "
          "(train -o SET/teacher, distill -o SET/piddm)")
SHOWN_ENTRIES = 8  # of a folder's entries listed in a layout error


def _kind(folder: Path) -> str:
    """A model folder's kind as its card or checkpoint tells it ("" when it tells none)."""
    from engine.models import read_card

    if kind := read_card(folder).get("kind"):
        return str(kind)
    try:
        return str(load_checkpoint(folder).get("kind", ""))
    except CheckpointError:
        return "unreadable checkpoint"


def layout_error(models: Path, problem: str) -> ConfigError:
    """A one-line refusal of ``models`` stating ``LAYOUT`` and listing what the folder holds."""
    if not models.is_dir():
        return ConfigError(f"{models}: no such folder; --models takes {LAYOUT}")
    entries = sorted(models.iterdir(), key=lambda p: p.name)
    shown = []
    for p in entries[:SHOWN_ENTRIES]:
        kind = _kind(p) if (p / FILENAME).is_file() else ""
        shown.append(p.name + ("/" if p.is_dir() else "") + (f" ({kind})" if kind else ""))
    more = f" and {len(entries) - SHOWN_ENTRIES} more" if len(entries) > SHOWN_ENTRIES else ""
    holds = ", ".join(shown) + more if entries else "nothing"
    return ConfigError(f"{models}: {problem}; --models takes {LAYOUT}; it holds {holds}")


def model_folders(models: Path) -> list[Path]:
    """The folders of ``models`` that hold a checkpoint; ``layout_error`` when there are none."""
    found = sorted(p for p in models.iterdir() if (p / FILENAME).is_file()) if models.is_dir() else []
    if not found:
        raise layout_error(models, "no model folders")
    return found


def models_pde_grid(models: str | Path) -> tuple[str, int]:
    """(PDE name, grid N) of the models in a folder, from their cards (bundled) or checkpoints (runs),
    before any network is built: a bench for another PDE or grid is refused before its minutes of work.
    ConfigError when the folder holds no model, or models of different PDEs or grids."""
    from engine.models import read_card

    seen: dict[tuple[str, int], str] = {}
    for d in model_folders(Path(models)):
        card = read_card(d)
        if isinstance(card.get("pde"), str) and isinstance(card.get("grid"), int):
            key = (card["pde"], card["grid"])
        else:
            ckpt = load_checkpoint(d)
            key = (str((ckpt.get("pde") or {}).get("name", "")), int((ckpt.get("grid") or {}).get("n", -1)))
        seen.setdefault(key, d.name)
    if len(seen) > 1:
        what = ", ".join(f"{name}/ {pde} {n}²" for (pde, n), name in seen.items())
        raise ConfigError(f"{models}: models of different PDEs or grids ({what}); a bench takes one set")
    return next(iter(seen))


def student_folders(models: Path) -> list[Path]:
    """Student folders: distill, piddm, then sweep-* in name order."""
    found = []
    for d in sorted(p for p in models.iterdir() if (p / FILENAME).is_file()):
        if load_checkpoint(d).get("kind") == "student":
            found.append(d)
    order = {"distill": 0, "piddm": 1}
    return sorted(found, key=lambda d: (order.get(d.name, 2), d.name))


def student_label(name: str, cfg) -> str:
    """A sweep student's row name: its folder and the settings that make it different."""
    physics = "" if cfg.physics_on == "all" else f", physics on {cfg.physics_on}"
    return f"{name} (λ={cfg.lam:g}, warm-up {cfg.lam_warmup:g}{physics})"


def bench_generate(models: str | Path, *, n: int = 256, seeds: int = 3, sampler_steps: int = 18,
                   refine_steps: int = 10, lam_infer: float = REFINE_LAMBDA, refine_lr: float = REFINE_LR,
                   device: str = "cpu", n_reference: int = 512, student_weights: str = "ema",
                   on_progress: ProgressFn = no_progress, cancel: CancelToken | None = None) -> dict[str, Any]:
    """Run the generation benchmark on a model folder holding ``teacher/`` and student folders.

    ``student_weights="model"`` benches the students' raw last-step weights instead of their EMA.
    """
    models = Path(models)
    check_number("n", n, 2)
    check_number("seeds", seeds, 1)
    check_number("sampler_steps", sampler_steps, 1)
    check_number("n_reference", n_reference, 2)
    check_refine(refine_steps, lam_infer, refine_lr)
    if not (models / "teacher" / FILENAME).is_file():
        raise layout_error(models, f"no teacher/{FILENAME}")
    teacher = load_teacher(models / "teacher", device)
    students = {d.name: load_student(d, device, student_weights) for d in student_folders(models)}
    pde, grid = teacher.pde, teacher.grid
    params = dict(teacher.config.pde_params)
    dev = teacher.device
    total = 1 + seeds * (2 + len(students) + (1 if "piddm" in students else 0))
    done = 0

    def tick(label: str) -> None:
        nonlocal done
        done += 1
        check_cancel(cancel)
        on_progress(Progress("bench", done, total, message=label))

    reference = generate_fields(pde.name, n_reference, grid.n, REFERENCE_SEED, params).astype(np.float32)
    tick("reference")

    def metrics(fields: np.ndarray, seconds: float, nfe: int) -> dict[str, float]:
        return {**residual_stats(pde, fields), **moment_errors(fields, reference, teacher.channels),
                "seconds_per_sample": seconds / len(fields), "samples_per_s": len(fields) / seconds,
                "nfe": float(nfe)}

    rows: dict[str, list[dict[str, float]]] = {}
    for s in range(seeds):
        sd = sample_seeds(BENCH_NOISE_SEED + s, n)
        data, sec = _timed(lambda s=s: generate_fields(pde.name, n, grid.n, HELD_OUT_SEED + s, params), dev)
        rows.setdefault("held-out data", []).append(metrics(data.astype(np.float32), sec, 0))
        tick("data")
        # Warm-up once so that one-time costs (allocations, kernels) do not land in the timings.
        if s == 0:
            teacher.sample(sd[:2], 2)
        fields, sec = _timed(lambda sd=sd: teacher.sample(sd, sampler_steps).numpy(), dev)
        rows.setdefault(f"teacher (Heun {sampler_steps})", []).append(metrics(fields, sec, heun_nfe(sampler_steps)))
        tick("teacher")
        for name, st in students.items():
            eps = st.noise(sd)

            def one(st=st, eps=eps) -> np.ndarray:
                with torch.no_grad():
                    return st.generate(eps).float().cpu().numpy()

            one()  # warm-up
            fields, sec = _timed(one, dev)
            label = name if name in ("distill", "piddm") else student_label(name, st.config)
            rows.setdefault(label, []).append(metrics(fields, sec, 1))
            tick(name)
            if name == "piddm" and refine_steps:
                def ref(st=st, eps=eps) -> np.ndarray:
                    e = refine(st, eps, refine_steps, lam_infer, refine_lr, cancel=cancel)
                    with torch.no_grad():
                        return st.generate(e).float().cpu().numpy()

                fields, sec = _timed(ref, dev)
                rows.setdefault(f"piddm-ref (k={refine_steps})", []).append(metrics(fields, sec, 1 + refine_steps))
                tick("piddm-ref")
    table = {name: summarise(runs) for name, runs in rows.items()}
    teacher_row = table[f"teacher (Heun {sampler_steps})"]
    ratios = {}
    for name, row in table.items():
        ratios[name] = {"residual_vs_teacher": row["residual_mse"]["mean"] / teacher_row["residual_mse"]["mean"],
                        "speedup_vs_teacher": row["samples_per_s"]["mean"] / teacher_row["samples_per_s"]["mean"]}
    costs = {"teacher": model_costs(models / "teacher")}
    costs.update({name: model_costs(models / name) for name in students})
    return {"task": "generate", **provenance(models), "pde": pde.name, "grid": grid.n, "n": n, "seeds": seeds,
            "device": str(dev),
            "student_weights": student_weights,
            "precision": "float32 inference, residuals in float64", "table": table, "ratios": ratios,
            "costs": costs}


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table of a bench result (mean ± std over the seeds; the mean alone for one seed,
    whose std of 0 would read as a spread measured to be none)."""
    table = result["table"]
    cols = list(dict.fromkeys(c for row in table.values() for c in row if c != "nfe"))
    seeds = f"{result['seeds']} seed" + ("" if result["seeds"] == 1 else "s")
    head = f"{result['task']} · {result['pde']} {result['grid']}² · n={result['n']} × {seeds}"
    if "obs" in result:  # solve tasks
        head += (f" · obs {result['obs']} · ensemble {result['ensemble']} · steps {result['steps']}"
                 f" (guidance {result['guidance_steps']})")
        if "residual_norm" in result:  # latent methods' start screening and residual norm (older files lack them)
            head += f" · latent K {result['candidates']}, σ {result['residual_norm']:g}"
    lines = [f"{head} · {result['device']}", "method".ljust(34) + "NFE".rjust(5) + "".join(c.rjust(22) for c in cols)]
    for name, row in table.items():
        cells = "".join((("–" if c not in row else f"{row[c]['mean']:.3g}" if result["seeds"] == 1
                          else f"{row[c]['mean']:.3g} ± {row[c]['std']:.2g}")).rjust(22) for c in cols)
        lines.append(name.ljust(34) + f"{row['nfe']['mean']:.0f}".rjust(5) + cells)
    return "\n".join(lines)
