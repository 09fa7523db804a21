"""The PIDDM objective (PIDDM Eq. 9):

    L(θ) = ‖G_θ(ε) − x0‖² + λ · ‖R(G_θ(ε))‖² / s,

the first term in normalised units (mean over entries), the second with R the PDE's discrete
residual in physical units (mean of r² over every node: interior equation and boundary
condition), divided by the fixed normaliser s. The residual acts on the generator's actual
samples, not on a posterior mean E[x0|xt], so there is no Jensen gap.

Optionally (``physics_on="solution"``) the residual term's gradient reaches only the solution
entries: the coefficient entries (``pde.coefficient_mask``) enter R detached, so the generated
coefficient is shaped by the distillation term alone and the physics term makes the solution
consistent with it. Why: R is as sensitive to the coefficient as to the solution (darcy:
∂R/∂a ~ |∇u|/h, ∂R/∂u ~ a/h²), and at large λ the student lowers R by bending the coefficient
away from the teacher's. Measured on darcy 32² (resources/bench/README.md): at λ = 1 this keeps the mean coefficient
(mmse_a 0.12 against 1.83 after 800 steps) but not its pixel-wise spread, which the shared
network still blurs; hence an option, not the default.
"""

from __future__ import annotations

import torch

from engine.data.dataset import Normalizer
from engine.grid import Grid


def residual_energy(pde, x_phys: torch.Tensor, grid: Grid) -> torch.Tensor:
    """(B,) mean over nodes of r² for physical fields x (B, C, N, N)."""
    return pde.residual(x_phys, grid).pow(2).mean(dim=(-2, -1))


def piddm_loss(pred: torch.Tensor, x0: torch.Tensor, lam: float, pde, grid: Grid,
               normalizer: Normalizer, residual_scale: float,
               physics_on: str = "all") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Scalar loss and its parts (detached) for a batch of student outputs ``pred`` (normalised)."""
    pred = pred.float()
    distill = (pred - x0).pow(2).mean()
    phys = pred
    if physics_on == "solution":  # the coefficient entries enter R detached
        phys = torch.where(pde.coefficient_mask(grid).to(pred.device), pred.detach(), pred)
    # The residual is evaluated in float32 (the darcy stencil amplifies rounding ~1e5 at 64²).
    res = residual_energy(pde, normalizer.decode(phys), grid).mean()
    loss = distill + lam * res / residual_scale if lam > 0 else distill
    return loss, {"distill": distill.detach(), "residual": res.detach()}
