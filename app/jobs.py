"""Job functions the app runs on its worker thread (Qt-free; engine imported lazily)."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from app.state import SolveOutcome
from engine.errors import EngineError
from engine.jobs import CancelToken, ProgressFn, check_cancel, no_progress
from engine.solve.api import MODEL_FREE, STUDENT_METHODS

log = logging.getLogger(__name__)


def task_mask(pde, n: int, task: str, rng: np.random.Generator, fraction: float = 0.03,
              current: np.ndarray | None = None) -> np.ndarray:
    """(C, N, N) observation mask for a task: forward = the coefficient; inverse = ~3 % of the
    solution nodes (a whole row/column set if the PDE's solution mask is thin); reconstruct =
    ~3 % of every channel. Existing inverse points in ``current`` are kept."""
    from engine.grid import Grid

    grid = Grid(n)
    if task == "forward":
        return pde.coefficient_mask(grid).numpy().copy()
    if task == "inverse":
        allowed = pde.solution_mask(grid).numpy()
        if current is not None and (current & allowed).any() and not (current & ~allowed).any():
            return current.copy()
        if allowed.sum() <= 2 * n:  # a row (burgers' final time): observe all of it
            return allowed.copy()
        return allowed & (rng.random(allowed.shape) < fraction)
    return rng.random((len(pde.fields), n, n)) < fraction


def make_demo(pde_name: str, pde_params: dict, n: int, seed: int, task: str = "inverse", *,
              on_progress: ProgressFn = no_progress, cancel: CancelToken | None = None) -> dict[str, Any]:
    """A held-out sample (sample_inputs + reference solve) and a task mask on it."""
    from engine import pdes
    from engine.grid import Grid
    from engine.seeding import demo_seed

    pde = pdes.get(pde_name, **pde_params)
    grid = Grid(n)
    truth = pde.solve(pde.sample_inputs([demo_seed(seed)], grid), grid)[0].numpy()  # (C, N, N)
    check_cancel(cancel)
    mask = task_mask(pde, n, task, np.random.default_rng(seed))
    return {"values": truth.copy(), "mask": mask, "truth": truth}


# The methods whose final misfit (SolveResult.misfit) says whether the answer fits its observations: the
# latent solves, whose misfit is the answer's own. Guidance's is its last denoised estimate's, which jumps
# at the end of sampling (darcy-32 teacher, inverse task, 50 steps: 0.011 at step 25, 30 at step 50);
# dataspace holds the observations exactly.
FITTED_MISFIT_METHODS = STUDENT_METHODS


def _classical(pde, fields: np.ndarray) -> np.ndarray:
    """Reference solve of the coefficient in ``fields`` (C, N, N) -> (C, N, N)."""
    import torch

    from engine.grid import Grid

    x = torch.as_tensor(fields[None], dtype=torch.float64)
    return pde.solve(pde.inputs_of(x), Grid(fields.shape[-1]))[0].numpy()


def _engine_solve(model, pde, values, mask, opts: dict, on_progress, cancel):
    from engine.solve import Observations, SolveOptions, solve

    obs = Observations(values=values[None].astype(np.float32), mask=mask[None])
    return solve(model, pde, obs, SolveOptions(**opts), on_progress=on_progress, cancel=cancel)


def run_solve(model, pde_name: str, pde_params: dict, values: np.ndarray, mask: np.ndarray, opts: dict,
              truth: np.ndarray | None = None, *, solve_fn=None, on_progress: ProgressFn = no_progress,
              cancel: CancelToken | None = None) -> SolveOutcome:
    """Solve one task; add the classical comparison and metrics. ``solve_fn`` replaces engine.solve."""
    from engine import pdes
    from engine.grid import Grid
    from engine.metrics import UndefinedMetricError, residual_map, truth_errors

    pde = pdes.get(pde_name, **pde_params)
    n = values.shape[-1]
    coeff = pde.coefficient_mask(Grid(n)).numpy()
    coeff_known = bool(mask[coeff].all())
    method = opts["method"]
    if method not in MODEL_FREE and model is None:
        raise EngineError(f"method {method!r} needs a model: open a bundled model or a run directory")
    t0 = time.perf_counter()
    r = (solve_fn or _engine_solve)(model, pde, values, mask, opts, on_progress, cancel)
    mean, std = np.asarray(r.mean)[0], None if r.std is None else np.asarray(r.std)[0]
    res = None if r.residual is None else np.asarray(r.residual)[0]
    nfe = int(getattr(r, "nfe", 0) or 0)
    settings = dict(getattr(r, "settings", {}) or {})
    misfit = getattr(r, "misfit", None)
    seconds = time.perf_counter() - t0
    check_cancel(cancel)
    if res is None:
        res = residual_map(pde, mean[None])[0]
    # Classical comparison: the reference solve of the observed (forward) or predicted coefficient.
    try:
        classical = _classical(pde, values if coeff_known else mean)
    except Exception:  # a generated coefficient the solver cannot take (a singular LU): no comparison
        log.warning("no classical comparison for this %s answer", method, exc_info=True)
        classical = None
    interior = pde.interior_mask(Grid(n)).numpy()
    metrics = {"residual_mse": float((res[interior] ** 2).mean()), "seconds": seconds}
    if method in FITTED_MISFIT_METHODS and misfit is not None:
        metrics["misfit"] = float(misfit)
    ref = classical if coeff_known else truth
    if method == "classical" and coeff_known:
        metrics["rel_l2_vs"] = "reference"  # the others are scored against this very solve
    elif ref is not None:
        # per unknown channel, rel_l2_<ch> (and darcy's coefficient's error_rate): a mean over the
        # channels was read as the coefficient's error
        try:
            errors = truth_errors(pde, mean[None], ref[None], mask[None])
        except UndefinedMetricError as e:  # an all-zero truth (a zero source erased in): no relative error
            log.info("no error figures for this %s answer: %s", method, e)
            errors = {}
        if errors:
            metrics.update(errors, rel_l2_vs="classical" if coeff_known else "truth")
    return SolveOutcome(method, mean.astype(np.float32), None if std is None else std.astype(np.float32),
                        res.astype(np.float32), seconds, nfe, classical, metrics, mask.copy(), settings)
