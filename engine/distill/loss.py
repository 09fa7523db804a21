"""The PIDDM objective (PIDDM Eq. 9):

    L(θ) = ‖G_θ(ε) − x0‖² + λ · ‖R(G_θ(ε))‖² / s,

the first term in normalised units (mean over entries), the second with R the PDE's discrete
residual in physical units (mean of r² over every node: interior equation and boundary
condition), divided by the fixed normaliser s. The residual acts on the generator's actual
samples, not on a posterior mean E[x0|xt], so there is no Jensen gap.
"""

from __future__ import annotations

import torch

from engine.data.dataset import Normalizer
from engine.grid import Grid


def residual_energy(pde, x_phys: torch.Tensor, grid: Grid) -> torch.Tensor:
    """(B,) mean over nodes of r² for physical fields x (B, C, N, N)."""
    return pde.residual(x_phys, grid).pow(2).mean(dim=(-2, -1))


def piddm_loss(pred: torch.Tensor, x0: torch.Tensor, lam: float, pde, grid: Grid,
               normalizer: Normalizer, residual_scale: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Scalar loss and its parts (detached) for a batch of student outputs ``pred`` (normalised)."""
    distill = (pred.float() - x0).pow(2).mean()
    # The residual is evaluated in float32 (the darcy stencil amplifies rounding ~1e5 at 64²).
    res = residual_energy(pde, normalizer.decode(pred.float()), grid).mean()
    loss = distill + lam * res / residual_scale if lam > 0 else distill
    return loss, {"distill": distill.detach(), "residual": res.detach()}
