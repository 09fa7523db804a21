"""Model-free baselines: ``classical`` (the reference solver) and ``dataspace`` (optimise the field).

dataspace (the reviewers' baseline, no model): with the observed entries held at x′ (the
observations are a hard constraint, the strongest form of this baseline), minimise over the
unobserved entries of x

    L(x) = ‖R(x)‖²_{H^(−2σ)} / s   (R² averaged over the nodes),

the residual alone: SPEC's ‖(x − x′)⊙M‖² + λ‖R(x)‖² with its misfit term zero by construction. So
there is no λ to choose: a weight on the only term scales L, which moves neither its minimiser nor,
as measured, the L-BFGS path (the strong-Wolfe conditions do not depend on it): on poisson 16²
forward and darcy 16² inverse from 30 points, 30 steps, λ = 0.01, 1 and 100 gave answers 2e-16
apart (float64 rounding), bitwise equal in float32. s is the starting field's L, as in the latent solve.

The norm σ is the latent solve's (``api.default_residual_norm``: 1 for a solution solved from a
whole coefficient, ½ for darcy's a from the whole u, else 0), and for the same reason: measured
plainly, R of a wrong u is dominated by its 1/h² interior rows, the normal equations' condition
number grows like N⁴, and L-BFGS creeps; in H^(−2), (−Δ_h)^(−1)R is of the size of the error in u
itself. Forward from the whole coefficient, 200 steps, 2 cases (u's rel_l2; σ = 0 → σ = 1):
poisson 32² 0.84 → 2e-6, 64² 0.94 → 2e-3; darcy 32² 0.49 → 1e-3, 64² 0.57 → 0.05; helmholtz 64²
0.94 → 2e-3. L-BFGS's own stopping tests are off (tolerances 0): with L divided by its starting
value the gradient falls below torch's default 1e-7 long before the answer converges, and every
later step returned without moving (poisson 16² froze at rel_l2(u) 0.69 from step ~300 on).

Start: x′ where observed, else the per-channel mean of prior samples (``prior_channel_means``), so
e.g. darcy's unknown permeability starts at a plausible ~7.5 rather than 0 (where its operator is
singular). Optimiser: L-BFGS with a strong-Wolfe line search in float64 (the problem is a smooth
least-squares one). It is deterministic: one member, std 0.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.errors import ConfigError
from engine.grid import Grid
from engine.jobs import CancelToken, ProgressFn, no_progress
from engine.pdes import PDE
from engine.solve.common import (
    MethodOutput,
    ObsTensors,
    Reporter,
    case0_mean,
    interior_ms,
    prior_channel_means,
    residual_ms,
)
from engine.solve.observations import Observations


def classical(pde: PDE, obs: Observations, grid: Grid) -> MethodOutput:
    """The reference solve of the observed coefficient; every case must observe exactly the whole coefficient."""
    coef = pde.coefficient_mask(grid).numpy()
    if not (obs.mask == coef).all():
        raise ConfigError("classical needs the whole coefficient observed and nothing else "
                          "(a forward task with observation 'full'); use another method")
    x = pde.solve(pde.inputs_of(torch.as_tensor(obs.clean_values)), grid).numpy()
    return MethodOutput(members=x[:, None], nfe=0, exact_solution=True)


def dataspace(pde: PDE, obs: Observations, grid: Grid, *, steps: int, residual_norm: float = 0.0,
              device: torch.device | str = "cpu", on_progress: ProgressFn = no_progress,
              cancel: CancelToken | None = None) -> MethodOutput:
    """Optimise the unobserved entries directly (module docstring). Returns one member per case."""
    dev = torch.device(device)
    ot = ObsTensors.build(obs, 1, dev, torch.float64)
    means = torch.tensor(prior_channel_means(pde, grid.n), dtype=torch.float64, device=dev)
    z = ot.mix(means.reshape(1, -1, 1, 1).expand_as(ot.values).clone()).requires_grad_(True)
    interior = pde.interior_mask(grid).to(dev)
    with torch.no_grad():
        s = residual_ms(pde, z, grid, residual_norm).clamp_min(1e-30)
    # max_eval: the line search needs its own budget; tolerances 0: ``steps`` alone ends it (docstring)
    opt = torch.optim.LBFGS([z], lr=1.0, max_iter=1, max_eval=25, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=0.0, tolerance_change=0.0)

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = (residual_ms(pde, ot.mix(z), grid, residual_norm) / s).sum()
        loss.backward()
        return loss

    report = Reporter(on_progress, cancel, steps)
    for step in range(steps + 1):
        with torch.no_grad():
            x = ot.mix(z)
            r = pde.residual(x, grid)
        report(step, {"misfit": 0.0, "residual_mse": interior_ms(r, interior)}, case0_mean(x, 1))
        if step < steps:
            opt.step(closure)
    members = x.detach().cpu().numpy()[:, None]
    if not np.isfinite(members).all():
        raise ConfigError("dataspace diverged (non-finite field); try fewer steps")
    return MethodOutput(members=members, nfe=0, history=report.history)
