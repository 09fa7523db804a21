"""``piddm bench --task forward|inverse|reconstruct``: every solve method on the same held-out cases.

Cases: ``cases`` fresh reference solves drawn with ``SOLVE_SEED``, apart from training data and the
validation cases (``engine.seeding`` says how far), stored in float32 like every dataset. For each seed s in
range(seeds) the observation masks (``Observations.from_task(..., seed=s)``) and the ensemble
starts (``SolveOptions(seed=s)``) are redrawn; the cases stay the same. Every method solves all the
cases of one seed in one batched call.

Rows (default: all that apply): piddm, piddm-ref, piddm-exact (the folder's ``piddm/`` student,
with its teacher), distill (the ``distill/`` λ = 0 student), diffusionpde and teacher (the teacher
through the piddm model), dataspace (no model), classical (forward with the whole coefficient only).
A row ``METHOD@N`` is METHOD with N steps in place of ``steps`` / ``guidance_steps``, so that one run
can hold the same method at several step counts (a speed-up and the accuracy it costs, same cases).

Columns, mean ± std over seeds, computed on the ensemble mean (the answer a user gets):
- rel_l2_<ch>: ‖pred − truth‖₂ / ‖truth‖₂ over the *whole* channel, averaged over cases, for every
  channel that is not wholly observed (forward/full: u; inverse/full: the coefficient; points: both).
  Observed entries are included (they are exact for all methods except piddm-exact/classical, whose
  solution entries are S(coefficient)); this is the convention of DiffusionPDE/FunDPS's figures.
- error_rate (darcy, when its coefficient is unknown): fraction of pixels on the wrong side of 7.5.
- residual_mse, bc_mse: mean interior R² and mean boundary-condition R² of the answer, float64 from
  the float32 output.
- seconds_per_case: wall time of the batched solve / cases (after a warm-up); nfe: generator or
  denoiser evaluations per member.
- peak_memory_mb (on a GPU only): the most device memory the batched solve held (torch's allocator,
  ``max_memory_allocated``), all cases and members at once. A CPU has no per-call figure (the process's
  peak RSS only ever grows), so CPU rows have none.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.bench import layout_error, model_folders, provenance, summarise
from engine.config import check_number
from engine.data.generate import generate_fields
from engine.dist import resolve_device
from engine.errors import ConfigError
from engine.io.checkpoint import FILENAME
from engine.jobs import CancelToken, Progress, ProgressFn, check_cancel, no_progress
from engine.metrics import residual_stats, truth_errors
from engine.seeding import SOLVE_SEED
from engine.seeding import VALIDATION_SEED as VALIDATION_SEED  # re-exported: tests/bench read it here
from engine.solve import METHODS, Observations, SolveOptions, solve
from engine.solve.api import STUDENT_METHODS, default_candidates, default_residual_norm
from engine.solve.observations import TASKS


def default_methods(task: str, obs: str, have: set[str]) -> list[str]:
    """Every method that applies to the task and whose model folder exists (``have``: folder names)."""
    out = []
    for m in METHODS:
        if m == "classical" and not (task == "forward" and obs == "full"):
            continue
        if m == "distill" and "distill" not in have:
            continue
        if m in ("piddm", "piddm-ref", "piddm-exact") and "piddm" not in have:
            continue
        if m in ("diffusionpde", "teacher") and not ({"teacher", "piddm"} & have):
            continue
        out.append(m)
    return out


def split_row(row: str) -> tuple[str, int | None]:
    """"piddm@35" -> ("piddm", 35); "piddm" -> ("piddm", None). Refuses unknown methods and bad counts."""
    method, at, count = row.partition("@")
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    if not at:
        return method, None
    if not count.isdigit() or int(count) < 1:
        raise ConfigError(f"{row!r}: the steps after @ must be a whole number >= 1")
    return method, int(count)


def held_out_cases(pde_name: str, n: int, grid_n: int, params: dict[str, Any] | None = None,
                   seed: int = SOLVE_SEED) -> np.ndarray:
    """(n, C, N, N) float32 reference solves with a seed no training used."""
    return generate_fields(pde_name, n, grid_n, seed, params).astype(np.float32)


def _models(folder: Path, methods: list[str], device: str) -> dict[str, Any]:
    """{"piddm": Model, "distill": Model} as needed; the piddm model gets a teacher if one is found."""
    from engine.models import load_model

    out: dict[str, Any] = {}
    need_piddm = any(m not in ("distill", "dataspace", "classical") for m in methods)
    if need_piddm:
        if (folder / "piddm" / FILENAME).is_file():
            out["piddm"] = load_model(folder / "piddm", device)
        elif (folder / "teacher" / FILENAME).is_file():
            out["piddm"] = load_model(folder / "teacher", device)
        else:
            raise layout_error(folder, "no piddm/ or teacher/ model folder")
        if out["piddm"].teacher is None and (folder / "teacher" / FILENAME).is_file():
            out["piddm"].teacher = load_model(folder / "teacher", device).teacher
    if "distill" in methods:
        if not (folder / "distill" / FILENAME).is_file():
            raise layout_error(folder, "method distill needs a distill/ student folder")
        out["distill"] = load_model(folder / "distill", device)
    return out


def _pde_of(folder: Path, models: dict[str, Any]) -> tuple[Any, int]:
    for m in models.values():
        return m.pde, m.grid.n
    from engine.models import load_model

    for name in ("teacher", "piddm", "distill"):
        if (folder / name / FILENAME).is_file():
            m = load_model(folder / name)
            return m.pde, m.grid.n
    raise layout_error(folder, "no teacher/, piddm/ or distill/ to take the PDE and grid from")


def _steps_of(on_progress: ProgressFn, label: str) -> ProgressFn:
    """A solve's step reports, passed on as a bench's "bench-step" (without the preview)."""
    return lambda p: on_progress(Progress("bench-step", p.step, p.total, message=label))


def bench_solve(folder: str | Path, *, task: str = "forward", obs: str = "points:123", cases: int = 100,
                seeds: int = 3, methods: list[str] | None = None, ensemble: int = 8, steps: int = 200,
                guidance_steps: int | None = None, lam: float | None = None, lr: float | None = None,
                candidates: int | None = None, residual_norm: float | None = None, precision: str = "float32",
                device: str = "cpu", on_progress: ProgressFn = no_progress, cancel: CancelToken | None = None) -> dict[str, Any]:
    """Run every solve method on held-out cases of a model folder (module docstring).

    guidance_steps: Heun steps of diffusionpde/teacher (default ``steps``). lam / lr / candidates /
    residual_norm: override the student methods' defaults (None = defaults). precision: of the networks
    (``SolveOptions.precision``). Returns a dict for
    ``engine.bench.format_table``.
    """
    folder = Path(folder)
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    # solve() refuses these too, but only once the models are loaded and the cases solved for
    for name, value in (("cases", cases), ("seeds", seeds), ("ensemble", ensemble), ("steps", steps),
                        ("guidance_steps", guidance_steps), ("candidates", candidates)):
        check_number(name, value, 1)
    check_number("residual_norm", residual_norm, 0, high=2)
    check_number("lam", lam, 0)
    check_number("lr", lr, 0, above=True)
    have = {d.name for d in model_folders(folder)}
    methods = list(methods) if methods else default_methods(task, obs, have)
    split = {m: split_row(m) for m in methods}  # row name -> (method, its own step count or None)
    models = _models(folder, [base for base, _ in split.values()], device)
    pde, grid_n = _pde_of(folder, models)
    from engine import pdes

    truth = held_out_cases(pde.name, cases, grid_n, pdes.params_of(pde))
    g_steps = guidance_steps or steps
    total, done = seeds * len(methods), 0

    def options(row: str, s: int, n_steps: int | None = None) -> SolveOptions:
        m, own_steps = split[row]
        st = n_steps or own_steps or (g_steps if m in ("diffusionpde", "teacher") else steps)
        # λ for the student methods only: diffusionpde's λ is its ζ_pde, and no other method reads one
        kw: dict[str, Any] = {"lam": lam} if lam is not None and m in STUDENT_METHODS else {}
        if lr is not None:
            kw["lr"] = lr
        if candidates is not None:
            kw["candidates"] = candidates
        if residual_norm is not None:
            kw["residual_norm"] = residual_norm
        return SolveOptions(method=m, ensemble=ensemble, steps=st, seed=s, device=device, precision=precision, **kw)

    dev = resolve_device(device)
    on_gpu = dev.type == "cuda"
    rows: dict[str, list[dict[str, float]]] = {}
    settings: dict[str, dict[str, Any]] = {}  # per method, what its solves used (seed 0's)
    for s in range(seeds):
        ob = Observations.from_task(pde, truth, task, obs, seed=s)
        for m in methods:
            check_cancel(cancel)
            base = split[m][0]
            model = models.get("distill" if base == "distill" else "piddm")
            if base in ("dataspace", "classical"):
                model = None
            if s == 0 and base != "classical":  # warm-up at the full batch shape: one-time costs stay out
                solve(model, pde, ob, options(m, s, 1), cancel=cancel)
            if on_gpu:
                torch.cuda.reset_peak_memory_stats(dev)
            t0 = time.perf_counter()
            res = solve(model, pde, ob, options(m, s), cancel=cancel, on_progress=_steps_of(on_progress, f"seed {s} · {m}"))
            sec = time.perf_counter() - t0
            stats = residual_stats(pde, res.mean)
            row = {**truth_errors(pde, res.mean, truth, ob.mask),
                   "residual_mse": stats["residual_mse"], "bc_mse": stats["bc_mse"],
                   "seconds_per_case": sec / cases, "nfe": float(res.nfe)}
            if on_gpu:
                row["peak_memory_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
            rows.setdefault(m, []).append(row)
            settings.setdefault(m, res.settings)
            done += 1
            on_progress(Progress("bench", done, total, metrics={k: v for k, v in row.items()},
                                 message=f"seed {s} · {m}"))
    table = {m: summarise(r) for m, r in rows.items()}
    k = candidates if candidates is not None else default_candidates(models.get("piddm"), ob)
    sigma = residual_norm if residual_norm is not None else default_residual_norm(pde, ob)
    # "n" (the cases, as the generate task's samples) is kept beside "cases" for the files of earlier versions
    return {"task": task, **provenance(folder), "obs": obs, "pde": pde.name, "grid": grid_n, "cases": cases,
            "n": cases, "seeds": seeds,
            "ensemble": ensemble, "steps": steps, "candidates": k, "residual_norm": sigma,
            "guidance_steps": g_steps, "device": device,
            "case_seed": SOLVE_SEED, "precision": f"{precision} networks, metrics in float64",
            "rel_l2": "whole channel, every channel not wholly observed, on the ensemble mean",
            "settings": settings, "table": table}
