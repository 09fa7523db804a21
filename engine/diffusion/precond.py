"""EDM preconditioning (Karras et al. 2022, Eq. 7 and Table 1, "Ours").

The denoiser is D_θ(x; σ) = c_skip(σ)·x + c_out(σ)·F_θ(c_in(σ)·x; c_noise(σ)) with
    c_skip = σ_d² / (σ² + σ_d²),   c_out = σ·σ_d / √(σ² + σ_d²),
    c_in   = 1 / √(σ² + σ_d²),     c_noise = ln(σ) / 4,
so that the network's input and its training target both have unit variance for every σ.
x is in normalised units (B, C, N, N); σ_d is the data std (0.5 after the Normalizer).
"""

from __future__ import annotations

import torch
from torch import nn


def edm_coefficients(sigma: torch.Tensor, sigma_data: float = 0.5
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(c_skip, c_out, c_in, c_noise) for σ of any shape (EDM Table 1)."""
    s2, d2 = sigma**2, sigma_data**2
    c_skip = d2 / (s2 + d2)
    c_out = sigma * sigma_data / (s2 + d2).sqrt()
    c_in = 1 / (s2 + d2).sqrt()
    c_noise = sigma.log() / 4
    return c_skip, c_out, c_in, c_noise


class Denoiser(nn.Module):
    """D_θ(x; σ): the preconditioned network.

    Parameters
    ----------
    net : F_θ, a module called as ``net(x, c_noise)`` with x (B, C, N, N), c_noise (B,).
    sigma_data : σ_d, the std of the (normalised) data.

    ``forward(x, sigma)``: x (B, C, N, N) normalised units, sigma a tensor (B,) or a scalar;
    returns the denoised estimate (B, C, N, N) float32. Under autocast only F_θ runs in low
    precision; the skip path stays in float32.
    """

    def __init__(self, net: nn.Module, sigma_data: float = 0.5) -> None:
        super().__init__()
        self.net = net
        self.sigma_data = float(sigma_data)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        x = x.float()
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device).reshape(-1)
        sigma = sigma.expand(x.shape[0]).reshape(-1, 1, 1, 1)  # (B, 1, 1, 1)
        c_skip, c_out, c_in, c_noise = edm_coefficients(sigma, self.sigma_data)
        F_x = self.net(c_in * x, c_noise.reshape(-1))  # (B, C, N, N)
        return c_skip * x + c_out * F_x.float()
