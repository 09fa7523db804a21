"""The PIDDM latent solve (SPEC "Downstream tasks"): fit the student's latent ε to observations.

For each case, E latent starts ε_e ~ N(0, I) (per-member seeds) are optimised by Adam on

    L(ε) = ‖(G(ε) − x′)⊙M / σ_c‖² / |M|  +  λ ‖R(x_mix)‖² / s  +  ½ ‖ε‖² / numel(ε),
    x_mix = x′⊙M + G(ε)⊙(1−M),

- the misfit is in the normaliser's units (σ_c = std_c/σ_data, the slope of its encode) and
  averaged over the observed entries, so it is O(1) for a random sample whatever the channel's physical scale or |M|;
- R is the full-grid residual in physical units (boundary residual included), averaged over nodes,
  measured in the H^(−2σ) norm with σ = ``residual_norm`` (below);
  s is the mean R(x_mix)² of the case's E starting samples (fixed, no gradient), so λ is
  dimensionless and means the same for every PDE and model: λ = 1 weighs "remove all the starting
  residual" like "move every observed entry by one std";
- the last term is the Gaussian prior on ε (−log N(ε; 0, I) per latent entry), which keeps ε from
  drifting far off the distribution the student was trained on.

Residual norm: with σ > 0 the equation's residual is replaced by (−Δ_h)^(−σ) R before squaring
(``PDE.smoothed_residual``). The plain residual of darcy is dominated by its finest scales — a
second-order operator amplifies an error in u at wavenumber k by k² — so its gradient moves the
smooth part of an unknown u very slowly (the condition number of −Δ_h is O(n²)). When one channel
is observed whole, the solve is a PDE solve for the other within the student's range, and σ = half
the residual's order in that channel (u: 1, darcy's a: ½) makes every scale of its error count
alike: on the darcy 32² student (validation, 100 steps) the forward error fell from 18 % to 4 %
and the inverse coefficient's error rate from 24 % to 5 %. From scattered points both channels
are mostly free and the plain residual, which polices the finest scales of the generated pair,
did better (``api.default_residual_norm``).

Starts: with ``candidates`` K > 1 each member starts from the best of K prior draws — the case's
E·K draws are scored by L(ε) (one generator evaluation each, no gradient) and the E lowest kept.
Selecting draws by their objective is a crude importance resampling towards the posterior: the
optimiser starts nearer the observations and needs fewer steps, but the kept members are more
alike. Whether it pays depends on the student and the observations (``api.default_candidates``).

piddm-ref adds a refinement phase with λ raised (see ``refine``): the first phase matches the
observations, the second pulls the sample onto the physics with the observations already in place.
Members are returned as x_mix; each member's optimisation is independent of the others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from engine.jobs import CancelToken, ProgressFn, no_progress
from engine.pdes import PDE
from engine.solve.common import (
    MethodOutput,
    ObsTensors,
    Reporter,
    case0_mean,
    interior_ms,
    inverse_std,
    member_seeds,
    misfit,
    residual_ms,
)
from engine.solve.graphs import CapturedStep
from engine.solve.observations import Observations

REFINE_FRACTION = 0.5  # piddm-ref: refinement steps = this × steps, after the main phase
REFINE_LAMBDA_FACTOR = 10.0  # ... with λ multiplied by this
REFINE_LR_FACTOR = 0.5  # ... and the learning rate multiplied by this (smaller steps near the optimum)
SCREEN_CHUNK = 256  # generator evaluations per batch while screening start candidates (memory only)


def initial_latents(student: Any, cases: int, ensemble: int, seed: int, first_case: int = 0) -> torch.Tensor:
    """(B·E, C, N, N) starting ε, member e of case b drawn from its own seed (``member_seeds``)."""
    return student.noise(member_seeds(seed, cases, ensemble, first_case)).detach().clone()


def latent_loss(mis: torch.Tensor, r_ms: torch.Tensor, s: torch.Tensor, eps: torch.Tensor,
                lam: float) -> torch.Tensor:
    """(B·E,) L(ε) of the module docstring from its parts: misfit, mean R(x_mix)², its scale s, ε."""
    return mis + lam * r_ms / s + 0.5 * eps.square().flatten(1).mean(1)


def screened_latents(student: Any, pde: PDE, obs: Observations, *, ensemble: int, candidates: int, lam: float,
                     seed: int, residual_norm: float = 0.0, first_case: int = 0) -> torch.Tensor:
    """(B·E, C, N, N) starting ε: for each case the E draws with the lowest L(ε) among E·K.

    Draw k of case b is ``initial_latents(student, B, E·K, seed)``'s row b·E·K + k, so K = 1 gives
    ``initial_latents`` itself. L is the module docstring's, with s = the mean residual of the
    case's draws; kept draws come best first.
    """
    b, k = len(obs), ensemble * candidates
    eps = initial_latents(student, b, k, seed, first_case)
    if candidates <= 1:
        return eps
    grid, dev = student.grid, eps.device
    ot = ObsTensors.build(obs, k, dev)
    inv_std = inverse_std(student.normalizer, tuple(eps.shape[1:]), dev)
    mis, res = [], []
    with torch.no_grad():
        for i in range(0, len(eps), SCREEN_CHUNK):
            x, part = student.generate(eps[i:i + SCREEN_CHUNK]), ot.rows(i, i + SCREEN_CHUNK)
            mis.append(misfit(x, part, inv_std))
            res.append(residual_ms(pde, part.mix(x), grid, residual_norm))
    r = torch.cat(res)
    s = r.reshape(b, k).mean(1).clamp_min(1e-12).repeat_interleave(k)  # per case, over its draws
    score = latent_loss(torch.cat(mis), r, s, eps, lam).reshape(b, k)
    best = score.argsort(dim=1, stable=True)[:, :ensemble]  # (B, E) indices into each case's draws
    per_case = eps.reshape((b, k) + tuple(eps.shape[1:]))
    return per_case[torch.arange(b, device=dev)[:, None], best].flatten(0, 1).clone()


def latent_solve(student: Any, pde: PDE, obs: Observations, *, ensemble: int, steps: int, lam: float,
                 lr: float, seed: int, candidates: int = 1, residual_norm: float = 0.0, refine: bool = False,
                 cuda_graphs: bool = True, first_case: int = 0,
                 on_progress: ProgressFn = no_progress, cancel: CancelToken | None = None,
                 trace: Callable[[int, torch.Tensor], None] | None = None) -> MethodOutput:
    """piddm / distill (refine=False) and piddm-ref (refine=True); see the module docstring.

    Returns members (B, E, C, N, N) float64 physical x_mix; nfe = generator evaluations per member:
    the one that fixes s, one per step, the final one, and the K screened draws when K > 1.
    candidates: K, each member starts from the best of K prior draws (``screened_latents``).
    residual_norm: σ, the physics term measures the residual in H^(−2σ) (module docstring); the
        reported residual_mse is the plain one whatever σ.
    cuda_graphs: on a GPU, replay each step as a CUDA graph (``engine.solve.graphs``; same steps).
    first_case: the place of these cases among those of one solve (their members' seeds, ``member_seeds``).
    trace: called as trace(k, x_mix) with every member's x_mix (B·E, C, N, N) after k steps, k = 0…total
        (``tests/bench/bench_solve_steps.py`` reads the whole trajectory of one solve this way).
    """
    grid, b, e = student.grid, len(obs), ensemble
    eps = screened_latents(student, pde, obs, ensemble=e, candidates=candidates, lam=lam, seed=seed,
                           residual_norm=residual_norm, first_case=first_case)
    dev = eps.device
    ot = ObsTensors.build(obs, e, dev)
    inv_std = inverse_std(student.normalizer, tuple(eps.shape[1:]), dev)
    interior = pde.interior_mask(grid).to(dev)
    n_refine = int(round(REFINE_FRACTION * steps)) if refine else 0
    total = steps + n_refine
    report = Reporter(on_progress, cancel, total)

    with torch.no_grad():  # s: mean starting residual² per case (the E members share it)
        r0 = residual_ms(pde, ot.mix(student.generate(eps)), grid, residual_norm)
        s = r0.reshape(b, e).mean(1, keepdim=True).expand(b, e).reshape(-1).clamp_min(1e-12)

    eps.requires_grad_(True)
    graphed = cuda_graphs and dev.type == "cuda"
    opt = torch.optim.Adam([eps], lr=lr, capturable=graphed)  # captured steps keep Adam's state on the device

    def objective(lam_now: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(B·E,) L(ε) at physics weight lam_now, and the metrics and x_mix of the current ε."""
        x = student.generate(eps)
        xm = ot.mix(x)
        r = pde.residual(xm, grid)
        mis = misfit(x, ot, inv_std)
        r_norm = pde.smoothed_residual(r, grid, residual_norm).square().flatten(1).mean(1)
        loss = latent_loss(mis, r_norm, s, eps, lam_now)
        return loss, {"misfit": mis.detach().mean(), "residual_mse": interior_ms(r, interior),
                      "loss": loss.detach().mean(), "x": xm.detach()}

    def phase(lam_now: float) -> CapturedStep:
        """One Adam step at physics weight lam_now, returning what ``objective`` saw before it."""
        def step_fn() -> dict[str, torch.Tensor]:
            opt.zero_grad(set_to_none=True)
            with torch.enable_grad():  # callers may run under no_grad
                loss, seen = objective(lam_now)
                total_loss = loss.sum()  # members are independent: the sum gives each its own gradient
            total_loss.backward()
            opt.step()
            return seen
        return CapturedStep(step_fn, dev, enabled=graphed)

    step_once = phase(lam)
    for step in range(total + 1):
        if step == steps and n_refine:  # piddm-ref: the refinement phase (new λ and lr: a new capture)
            for group in opt.param_groups:
                group["lr"] = lr * REFINE_LR_FACTOR
            step_once = phase(lam * REFINE_LAMBDA_FACTOR)
        if step < total:
            seen = step_once()
        else:  # the final latents' field, no step
            with torch.no_grad():
                seen = objective(lam * (REFINE_LAMBDA_FACTOR if n_refine else 1.0))[1]
        xm = seen.pop("x")
        if trace is not None:
            trace(step, xm)
        report(step, seen, case0_mean(xm, e))
    members = xm.detach().to("cpu", torch.float64).reshape((b, e) + tuple(xm.shape[1:])).numpy()
    nfe = 1 + total + 1 + (candidates if candidates > 1 else 0)  # s, the steps, the final field, screening
    state = opt.state[eps]
    moments = {"step": float(state["step"]), "exp_avg": state["exp_avg"].detach().clone(),
               "exp_avg_sq": state["exp_avg_sq"].detach().clone()}
    return MethodOutput(members=members, nfe=nfe, history=report.history, latents=eps.detach(),
                        adam_moments=moments)


__all__ = ["initial_latents", "latent_solve", "screened_latents"]
