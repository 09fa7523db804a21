"""Choose a student's latent-solve settings (Adam's rate on ε, the physics weight λ) on validation cases.

Why per student and per task: how far one Adam step on ε moves G(ε) depends on the student. On the
bundled poisson 64² PIDDM student (4 validation cases, ensemble 4, inverse from 123 points of u,
λ = 0.01), rel_l2 of f after 100 steps was 0.32 at lr 0.02, 0.62 at 0.05, 0.72 at 0.1 and 1.08 at
0.2 (early on the source blows up while u is being fitted: 1.14 after 50 steps at lr 0.1), while
the forward solve of the same student from 123 points of f hardly cared (f 0.183 / 0.177 at lr
0.02 / 0.05) and the darcy 64² student was flat over 0.05–0.2 (resources/bench/README.md, "Latent steps, rate and starts").
So the rate and λ are measured per student, task and observation kind, and stored in the student's
card as card["solve"]["<task>/<kind>"] = {"lr", "lam"} (``api.default_lr``, ``api.default_lambda``).

Search (coordinate, affordable on a CPU): λ over ``lams`` at the default rate, then the rate over
``lrs`` at the best λ; the defaults are always among the candidates, so the record compares the
choice with the untuned solve. Score: the mean rel_l2 over the task's unknown channels of the
ensemble mean after ``steps`` steps. One constant-rate solve passes through the states of every
shorter one (``latent_solve(trace=...)``), so each candidate also records its error at the ``marks``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from engine.jobs import CancelToken, check_cancel
from engine.metrics import truth_errors
from engine.pdes import PDE
from engine.seeding import validation_mask_seed
from engine.solve import api, latent
from engine.solve.observations import Observations


@dataclass
class LatentCurve:
    errors: dict[int, dict[str, float]]  # {k: truth_errors of the ensemble mean after k steps}
    seconds_to_first_step: float  # start screening and the starting samples
    seconds_per_step: float


def latent_curve(student: Any, pde: PDE, obs: Observations, truth: np.ndarray, *, lr: float, lam: float,
                 steps: int, marks: list[int], ensemble: int, seed: int, candidates: int = 1,
                 residual_norm: float = 0.0) -> LatentCurve:
    """The errors of one constant-rate latent solve after each step count in ``marks`` (≤ steps)."""
    kept: dict[int, torch.Tensor] = {}
    t_first: list[float] = []

    def trace(k: int, x_mix: torch.Tensor) -> None:
        if k == 0:
            t_first.append(time.perf_counter())
        if k in marks:
            kept[k] = x_mix.clone()

    t0 = time.perf_counter()
    with torch.no_grad():
        latent.latent_solve(student, pde, obs, ensemble=ensemble, steps=steps, lam=lam, lr=lr, seed=seed,
                            candidates=candidates, residual_norm=residual_norm, trace=trace)
    start = t_first[0] - t0
    per_step = (time.perf_counter() - t0 - start) / steps
    b = len(obs)
    errors = {}
    for k, x in sorted(kept.items()):
        members = x.to("cpu", torch.float64).numpy().reshape((b, ensemble) + tuple(x.shape[1:]))
        mean = np.where(obs.mask, obs.clean_values, members.mean(1))  # observed entries as the answer has them
        errors[k] = truth_errors(pde, mean, truth, obs.mask)
    return LatentCurve(errors, start, per_step)


def score(errors: dict[str, float]) -> float:
    """Mean rel_l2 over the unknown channels (NaN when a channel diverged)."""
    vals = [v for k, v in errors.items() if k.startswith("rel_l2")]
    return float(np.mean(vals)) if vals else float("nan")


def tune_latent(student: Any, pde: PDE, cases: np.ndarray, task: str, *, spec: str, method: str = "piddm",
                steps: int = 100, lrs: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1),
                lams: tuple[float, ...] = (0.01, 0.1, 1.0), ensemble: int = 4, seed: int = 0,
                marks: tuple[int, ...] = (25, 50, 100), cancel: CancelToken | None = None,
                on_score: Callable[[float, float, float], None] | None = None,
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(card["solve"]["<task>/<kind>"], card["solve_tuning"]["<task>/<kind>"]) for one student.

    cases: (B, C, N, N) validation ground truth; masks drawn with ``seeding.validation_mask_seed(seed)``
    (as the guidance tuning's, never the bench's). ``method``'s default λ (``api.DEFAULT_LAMBDA``) and
    ``api.DEFAULT_LR`` join the candidates. The residual norm is the solve's default for the observation
    kind; the starts are unscreened (K = 1), as every bundled 64² student's are. on_score(lr, λ, score)
    after each candidate.
    """
    obs = Observations.from_task(pde, cases, task, spec, seed=validation_mask_seed(seed))
    sigma = api.default_residual_norm(pde, obs)
    marks_all = sorted({m for m in marks if m <= steps} | {steps})
    lam0, lr0 = api.DEFAULT_LAMBDA.get(method, 1.0), api.DEFAULT_LR
    t0 = time.perf_counter()
    curves: dict[tuple[float, float], dict[int, dict[str, float]]] = {}

    def run(lr: float, lam: float) -> float:
        if (lr, lam) not in curves:
            check_cancel(cancel)
            curves[(lr, lam)] = latent_curve(student, pde, obs, cases, lr=lr, lam=lam, steps=steps, marks=marks_all,
                                             ensemble=ensemble, seed=seed, residual_norm=sigma).errors
            if on_score is not None:
                on_score(lr, lam, score(curves[(lr, lam)][steps]))
        return score(curves[(lr, lam)][steps])

    def best(scores: dict[tuple[float, float], float]) -> tuple[float, float]:
        finite = {k: v for k, v in scores.items() if math.isfinite(v)}
        return min(finite, key=finite.get) if finite else (lr0, lam0)

    by_lam = {(lr0, lam): run(lr0, lam) for lam in sorted(set(lams) | {lam0})}
    lam_best = best(by_lam)[1]
    by_lr = {(lr, lam_best): run(lr, lam_best) for lr in sorted(set(lrs) | {lr0})}
    lr_best, lam_best = best(by_lam | by_lr)
    chosen = score(curves[(lr_best, lam_best)][steps])
    settings = {"lr": lr_best, "lam": lam_best, "rel_l2": chosen}
    record = {"key": api.settings_key(pde, obs), "method": method, "spec": spec, "cases": int(len(cases)), "ensemble": ensemble, "steps": steps,
              "grid": int(cases.shape[-1]), "mask_seed": validation_mask_seed(seed), "residual_norm": sigma,
              "seconds": round(time.perf_counter() - t0, 1),
              "default": {"lr": lr0, "lam": lam0, "rel_l2": score(curves[(lr0, lam0)][steps])},
              "scores": [{"lr": lr, "lam": lam, "rel_l2_after": {str(k): score(e) for k, e in curve.items()},
                          "errors": curve[steps]} for (lr, lam), curve in curves.items()]}
    return settings, record


__all__ = ["LatentCurve", "latent_curve", "score", "tune_latent"]
