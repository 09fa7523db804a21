"""Teacher-based baselines: ``diffusionpde`` (observation + PDE guidance) and ``teacher`` (observation only).

Sampler: the EDM deterministic Heun sampler (Karras et al. 2022, Alg. 1 without churn) on the
σ schedule σ_i = (σ_max^(1/ρ) + i/(N−1)(σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ, σ_N = 0. After each Heun
step from x_i, DiffusionPDE's guidance is applied through the posterior mean D(x_i; σ_i) = E[x0|x_i]:

    x_{i+1} ← x_{i+1} − ζ_obs ∇_{x_i} ‖(D(x_i; σ_i) − x′)⊙M‖ − ζ_pde ∇_{x_i} ‖R(decode(D(x_i; σ_i)))‖,

norms (not squares) as in DiffusionPDE; the observation term lives in normalised units, the residual
in physical units. ``teacher`` is the same with ζ_pde = 0. NFE = 2N − 1 network evaluations
(plus N backward passes for the guidance gradients).

ζ weights: ``tune_guidance`` grid-searches them on a validation split (cases with ground truth) and
the result is stored in the model card under card["guidance"][task] (whole-channel observations
under "<task>/full"); ``solve`` reads it from there and rescales it to its own step count
(``weights_for_steps``).
Without stored weights the defaults below apply: ζ_obs = 1 moves the observed entries by about one
unit (normalised) per step in total; ζ_pde = 1e-2·h² takes out the 1/h² of the elliptic operators.
They are untuned and conservative — run ``tune_guidance`` for benchmark numbers.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import torch

from engine.diffusion.sampler import noise_from_seeds
from engine.grid import Grid
from engine.jobs import CancelToken, ProgressFn, no_progress
from engine.metrics import truth_errors
from engine.pdes import PDE
from engine.seeding import member_seeds, validation_mask_seed
from engine.solve.common import (
    MethodOutput,
    ObsTensors,
    Reporter,
    case0_mean,
    device_of,
    interior_ms,
)
from engine.solve.observations import Observations


def default_guidance(grid: Grid) -> dict[str, float]:
    return {"zeta_obs": 1.0, "zeta_pde": 1e-2 * grid.h**2}


def weights_for_steps(weights: dict[str, float], steps: int) -> dict[str, float]:
    """ζ for ``steps`` Heun steps from weights tuned at weights["steps"] (as stored by ``tune_guidance``).

    Each step moves x by ζ times the gradient of a norm (a unit-size direction), so over N steps the
    guidance moves x by about N·ζ; keeping N·ζ fixed keeps the balance the tuning found. Without
    it ζ tuned at 30 steps pulls 67× as hard over 2000 steps and the sample collapses onto the
    observations (darcy 64², 3 % points: coefficient rel_l2 0.996). Weights without "steps" are
    returned unchanged.
    """
    tuned = weights.get("steps")
    if not tuned:
        return dict(weights)
    f = float(tuned) / steps
    return {**weights, "zeta_obs": weights["zeta_obs"] * f, "zeta_pde": weights["zeta_pde"] * f, "steps": steps}


def edm_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float) -> list[float]:
    """The EDM schedule σ_0 = σ_max > … > σ_{N−1} = σ_min, σ_N = 0 (EDM Eq. 5).

    Not ``sampler.sigma_steps``: that one raises to ρ with torch's pow, this one with numpy's, and
    from 14 steps on some σ_i differ in the last bits (σ_max = 80, ρ = 7: at 2,982 of the step counts
    1–3000, by up to 1.4e-14), which would change the guided samples the cards' ζ were tuned on.
    """
    if steps == 1:
        return [sigma_max, 0.0]
    i = np.arange(steps)
    t = (sigma_max ** (1 / rho) + i / (steps - 1) * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return [float(v) for v in t] + [0.0]


def guided_sample(teacher: Any, pde: PDE, obs: Observations, *, ensemble: int, steps: int,
                  zeta_obs: float, zeta_pde: float, seed: int, first_case: int = 0,
                  on_progress: ProgressFn = no_progress, cancel: CancelToken | None = None) -> MethodOutput:
    """Heun sampling with DiffusionPDE guidance (module docstring); members (B, E, C, N, N) float64.
    first_case: the place of these cases among those of one solve (their members' seeds)."""
    grid, b, e = teacher.grid, len(obs), ensemble
    dev, norm = device_of(teacher), teacher.normalizer
    shape = (len(pde.fields), grid.n, grid.n)
    eps = noise_from_seeds(member_seeds(seed, b, e, first_case), shape, dev)  # per-member seeds, as the sampler's
    ot = ObsTensors.build(obs, e, dev)
    y = norm.encode(ot.values)  # x′ in normalised units (masked below)
    interior = pde.interior_mask(grid).to(dev)
    sig = edm_sigmas(steps, teacher.sigma_min, teacher.sigma_max, teacher.rho)

    def denoise(x: torch.Tensor, s: float) -> torch.Tensor:
        return teacher.denoiser(x, torch.full((len(x),), s, device=dev, dtype=x.dtype))

    report = Reporter(on_progress, cancel, steps)
    x = eps * sig[0]
    for i in range(steps):
        t, tn = sig[i], sig[i + 1]
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            d0 = denoise(x, t)  # E[x0 | x_i]
            x0 = norm.decode(d0)
            l_obs = torch.where(ot.mask, d0 - y, 0.0).flatten(1).norm(dim=1)
            r = pde.residual(x0, grid)
            l_pde = r.flatten(1).norm(dim=1)
            guide = zeta_obs * l_obs + zeta_pde * l_pde
            grad = torch.autograd.grad(guide.sum(), x)[0] if guide.requires_grad else torch.zeros_like(x)
        with torch.no_grad():
            d = (x - d0) / t
            x_next = x + (tn - t) * d
            if tn > 0:  # Heun's second-order correction
                d2 = (x_next - denoise(x_next, tn)) / tn
                x_next = x + (tn - t) * 0.5 * (d + d2)
            x = (x_next - grad).detach()
        report(i + 1, {"misfit": l_obs.detach().square().mean() / ot.count.float().mean(),
                       "residual_mse": interior_ms(r, interior)},
               case0_mean(ot.mix(x0.detach()), e))
    members = norm.decode(x).detach().to("cpu", torch.float64).reshape((b, e) + shape).numpy()
    return MethodOutput(members=members, nfe=2 * steps - 1, history=report.history)


def tune_guidance(model: Any, pde: PDE, cases: np.ndarray, task: str, *, spec: str = "fraction:0.03",
                  steps: int = 50, zetas_obs: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0),
                  pde_factors: tuple[float, ...] = (0.0, 1e-3, 1e-2, 1e-1, 1.0), seed: int = 0,
                  cancel: CancelToken | None = None) -> dict[str, Any]:
    """Grid-search ζ on validation cases (B, C, N, N ground truth) for ``task``.

    ζ_pde is searched as factor·h² (the scale of ``default_guidance``). Score: the mean rel_l2 over
    the task's unknown channels of a one-member guided sample with ``steps`` Heun steps. Returns
    {"zeta_obs", "zeta_pde", "rel_l2", "steps", "spec", "cases"}, ready for card["guidance"][task].
    """
    teacher = getattr(model, "teacher", model)
    grid = teacher.grid
    obs = Observations.from_task(pde, cases, task, spec, seed=validation_mask_seed(seed))  # not the bench's masks
    best: dict[str, Any] = {}
    for zo, fp in itertools.product(zetas_obs, pde_factors):
        zp = fp * grid.h**2
        out = guided_sample(teacher, pde, obs, ensemble=1, steps=steps, zeta_obs=zo, zeta_pde=zp,
                            seed=seed, cancel=cancel)
        pred = np.where(obs.mask, obs.clean_values, out.members[:, 0])
        errs = [v for k, v in truth_errors(pde, pred, cases, obs.mask).items() if k.startswith("rel_l2")]
        score = float(np.mean(errs)) if errs else float("inf")
        if not np.isfinite(score):
            continue
        if not best or score < best["rel_l2"]:
            best = {"zeta_obs": zo, "zeta_pde": zp, "rel_l2": score}
    if not best:
        best = {**default_guidance(grid), "rel_l2": float("nan")}
    return {**best, "steps": steps, "spec": spec, "cases": int(len(cases))}
