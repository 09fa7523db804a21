"""piddm-exact: the student proposes the coefficient, the reference solver supplies the solution.

Two phases over the ``steps`` budget. First the piddm latent solve (``latent``, soft physics) runs
for (1 − EXACT_FRACTION)·steps: a generator step costs one network evaluation, and it brings ε
close to the observations. Then, from those latents, the exact phase runs for the remaining steps,
each of which also costs a reference solve and its adjoint. Its Adam runs at ``exact_lr`` and either
starts with fresh moments or continues the soft phase's (``continue_moments``): a fresh Adam's first
steps move every latent entry by about the rate whatever its gradient, which undoes part of a good
soft fit (``api.exact_phase_settings`` chooses both by the observation kind). On darcy 64²
validation cases (4 cases, ensemble 4, 100 steps, 3 % points) 80 soft + 20 exact steps were as
accurate as 100 exact steps (inverse rel_l2(a) 0.344 vs 0.363, forward rel_l2(u) 0.144 vs 0.150)
for a fifth of the solver work, which dominates on a GPU.

In the exact phase, for each member, optimise ε (Adam; from the soft phase's latents, or from
piddm's per-member seeds when ``exact_fraction`` = 1) on

    L(ε) = ‖(x̃(ε) − x′)⊙M / σ_c‖² / |M|  +  ½ ‖ε‖² / numel(ε),
    c(ε) = x′_c⊙M_c + coef(G(ε))⊙(1−M_c),   x(ε) = [c, S(c)],   x̃(ε) = [coef(G(ε)), S(c)],

with S the differentiable reference solve (``engine.pdes.differentiable``: adjoint gradients), so
observations on any channel are fitted while R(x) = 0 holds to solver tolerance at every step; there
is no physics weight λ in this phase. Burgers: c = u(0, ·), S the Crank–Nicolson march.

Before solving, c goes through ``pde.admissible_inputs``. Darcy: the generated permeability is
continuous and may be small or negative, which makes the operator indefinite, so it is clamped to
a ≥ ``darcy.DARCY_FLOOR``·a_low (0.1·a_low) with a straight-through gradient (the clamp's value, the
identity's gradient) so that members below the floor can move back; the other PDEs take c as it is.

The answer's mean is [c̄, S(c̄)] with c̄ the member mean of c — re-solved, because for the nonlinear
problems (darcy, burgers) the mean of S(c_e) is not a solution; its residual is at solver tolerance.
Observed solution entries are therefore fitted, not overwritten.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from engine.grid import Grid
from engine.jobs import CancelToken, Progress, ProgressFn, no_progress
from engine.pdes import PDE
from engine.pdes.differentiable import solve_fields
from engine.solve.common import MethodOutput, ObsTensors, Reporter, case0_mean, inverse_std, misfit
from engine.solve.latent import initial_latents, latent_solve
from engine.solve.observations import Observations

EXACT_FRACTION = 0.2  # share of the steps taken with the reference solve (the last ones)


def whole_coefficient_known(pde: PDE, obs: Observations, grid: Grid) -> np.ndarray:
    """(B,) bool: the cases whose every coefficient entry is observed (their answer is S(c) directly)."""
    coef = pde.coefficient_mask(grid).numpy()
    return obs.mask[:, coef].all(axis=1)


def coefficient_of(pde: PDE, x: torch.Tensor, ot: ObsTensors, coef_mask: torch.Tensor) -> torch.Tensor:
    """c: the coefficient of x (float64) with observed coefficient entries replaced by x′, made
    admissible for the solver (``PDE.admissible_inputs``: darcy's floor, straight-through)."""
    return pde.admissible_inputs(pde.inputs_of(torch.where(ot.mask & coef_mask, ot.values, x)))


def exact_solve(student: Any, pde: PDE, obs: Observations, *, ensemble: int, steps: int, lr: float,
                seed: int, lam: float = 1.0, exact_fraction: float = EXACT_FRACTION, exact_lr: float | None = None,
                continue_moments: bool = False, candidates: int = 1, residual_norm: float = 0.0,
                cuda_graphs: bool = True, first_case: int = 0, on_progress: ProgressFn = no_progress,
                cancel: CancelToken | None = None) -> MethodOutput:
    """piddm-exact (module docstring). members (B, E, C, N, N) and mean (B, C, N, N), float64.

    lam: λ of the soft phase; exact_fraction: share of ``steps`` in the exact phase (1 = exact only);
    exact_lr: Adam's rate in the exact phase (None = lr); continue_moments: the exact phase's Adam
        continues the soft phase's step count and moments instead of starting afresh;
    candidates, residual_norm, cuda_graphs, first_case: the soft phase's screened starts, residual norm,
        CUDA graphs and the cases' place among a solve's (``latent_solve``).
    """
    grid = student.grid
    if whole_coefficient_known(pde, obs, grid).all():  # the answer is S(c), nothing to optimise
        x = solve_fields(pde, pde.inputs_of(torch.as_tensor(obs.clean_values)), grid).numpy()
        members = np.repeat(x[:, None], ensemble, axis=1)
        return MethodOutput(members=members, nfe=0, mean=x, exact_solution=True,
                            history=[{"step": 0, "misfit": 0.0, "residual_mse": 0.0}])
    n_exact = min(steps, max(1, round(exact_fraction * steps)))
    n_soft = steps - n_exact
    start, moments, soft_history, soft_nfe = None, None, [], 0
    if n_soft:
        def soft_progress(p: Progress) -> None:
            on_progress(dataclasses.replace(p, total=steps))

        soft = latent_solve(student, pde, obs, ensemble=ensemble, steps=n_soft, lam=lam, lr=lr, seed=seed,
                            candidates=candidates, residual_norm=residual_norm, cuda_graphs=cuda_graphs,
                            first_case=first_case, on_progress=soft_progress,
                            cancel=cancel)
        start, soft_history, soft_nfe = soft.latents, soft.history[:-1], soft.nfe
        moments = soft.adam_moments if continue_moments else None

    def exact_progress(p: Progress) -> None:
        on_progress(dataclasses.replace(p, step=p.step + n_soft, total=steps))

    out = _exact_phase(student, pde, obs, ensemble=ensemble, steps=n_exact, seed=seed, first_case=first_case,
                       start=start, lr=lr if exact_lr is None else exact_lr, moments=moments,
                       on_progress=exact_progress, cancel=cancel)
    out.history = soft_history + [{**h, "step": h["step"] + n_soft} for h in out.history]
    out.nfe += soft_nfe
    return out


def _exact_phase(student: Any, pde: PDE, obs: Observations, *, ensemble: int, steps: int, lr: float,
                 seed: int, start: torch.Tensor | None, on_progress: ProgressFn,
                 cancel: CancelToken | None, moments: dict | None = None, first_case: int = 0) -> MethodOutput:
    """The exact phase from ``start`` (or the seeded latents): members, the re-solved mean and the final ε.

    moments: an Adam state of ``start`` to continue (``MethodOutput.adam_moments``), else fresh moments.
    """
    grid, b, e = student.grid, len(obs), ensemble
    eps = initial_latents(student, b, e, seed, first_case) if start is None else start.detach().clone()
    eps.requires_grad_(True)
    dev = eps.device
    ot = ObsTensors.build(obs, e, dev, torch.float64)
    coef_mask = pde.coefficient_mask(grid).to(dev)
    inv_std = inverse_std(student.normalizer, tuple(eps.shape[1:]), dev).double()
    opt = torch.optim.Adam([eps], lr=lr)
    if moments is not None:  # Adam fills an empty state on its first step; a filled one is continued
        opt.state[eps].update(step=torch.tensor(moments["step"], dtype=torch.float32),
                              exp_avg=moments["exp_avg"].to(dev, eps.dtype).clone(),
                              exp_avg_sq=moments["exp_avg_sq"].to(dev, eps.dtype).clone())
    report = Reporter(on_progress, cancel, steps)
    for step in range(steps + 1):
        with torch.set_grad_enabled(step < steps):
            x_gen = student.generate(eps).double()
            c = coefficient_of(pde, x_gen, ot, coef_mask)
            x = solve_fields(pde, c, grid)
            # Observed coefficient entries are judged on the generator's own proposal: in c they are
            # overwritten by x′, which would leave the latent no signal from them (forward tasks).
            mis = misfit(torch.where(coef_mask, x_gen, x), ot, inv_std)
            loss = mis + 0.5 * eps.square().flatten(1).mean(1)
            total_loss = loss.sum()
        report(step, {"misfit": mis.detach().mean(), "loss": loss.detach().mean()}, case0_mean(x, e))
        if step == steps:
            break
        opt.zero_grad(set_to_none=True)
        total_loss.backward()
        opt.step()
    members = x.detach().cpu().reshape((b, e) + tuple(x.shape[1:]))
    # mean answer: re-solve the mean coefficient (observed coefficient entries put back exactly)
    cbar_fields = torch.where(ot.mask[::e].cpu() & coef_mask.cpu(), ot.values[::e].cpu(), members.mean(1))
    mean = solve_fields(pde, pde.inputs_of(cbar_fields), grid)
    return MethodOutput(members=members.numpy(), nfe=steps + 1, history=report.history,
                        mean=mean.numpy(), exact_solution=True, latents=eps.detach())
