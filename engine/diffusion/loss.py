"""The EDM training loss (Karras et al. 2022, Eq. 2, 8 and Table 1).

    ln σ ~ N(P_mean, P_std²),   y = x₀ + σ·n,  n ~ N(0, I),
    L = λ(σ) · ‖D_θ(y; σ) − x₀‖²,   λ(σ) = (σ² + σ_d²) / (σ·σ_d)²,
the weight that makes the effective target of F_θ unit-variance (EDM §5). All random draws are
arguments, so the caller's generator fixes them (exact resume, DDP slicing).
"""

from __future__ import annotations

import torch
from torch import nn


def sigma_from_normal(xi: torch.Tensor, P_mean: float = -1.2, P_std: float = 1.2) -> torch.Tensor:
    """σ = exp(P_mean + P_std·ξ) for standard-normal ξ (B,)."""
    return (P_mean + P_std * xi).exp()


def loss_weight(sigma: torch.Tensor, sigma_data: float = 0.5) -> torch.Tensor:
    """λ(σ) = (σ² + σ_d²) / (σ·σ_d)²."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def edm_loss(denoiser: nn.Module, x0: torch.Tensor, n: torch.Tensor, xi: torch.Tensor, *,
             P_mean: float = -1.2, P_std: float = 1.2, sigma_data: float = 0.5) -> torch.Tensor:
    """Per-sample weighted denoising loss (B,), averaged over channels and nodes.

    Parameters
    ----------
    denoiser : D_θ, called as ``denoiser(y, sigma)``.
    x0 : (B, C, N, N) clean data, normalised units.
    n : (B, C, N, N) standard-normal noise.
    xi : (B,) standard-normal draws that set σ.
    """
    sigma = sigma_from_normal(xi, P_mean, P_std)  # (B,)
    y = x0 + sigma.view(-1, 1, 1, 1) * n  # noisy input
    D_y = denoiser(y, sigma)  # (B, C, N, N)
    w = loss_weight(sigma, sigma_data)  # (B,)
    return w * ((D_y - x0) ** 2).mean(dim=(1, 2, 3))
