"""Deterministic Heun sampler of the probability-flow ODE (Karras et al. 2022, Algorithm 1).

Time steps (EDM Eq. 5): σ_i = (σ_max^(1/ρ) + i/(N−1)·(σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ for
i = 0..N−1 and σ_N = 0. With σ(t) = t the ODE is dx/dσ = (x − D(x; σ))/σ; each step takes an
Euler step and, unless σ_{i+1} = 0, a second-order (trapezoidal) correction, so the number of
denoiser evaluations is NFE = 2N − 1. Noise is drawn per sample from its own seed on the CPU, so
sample i is the same whatever the batch it is drawn in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

SIGMA_MIN, SIGMA_MAX, RHO = 0.002, 80.0, 7.0

Callback = Callable[[int, int, torch.Tensor], None]  # (step, total, D(x; σ_i)) after each step


def sigma_steps(num_steps: int, sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX,
                rho: float = RHO) -> torch.Tensor:
    """(N + 1,) float64: σ_0 = σ_max > ... > σ_{N−1} = σ_min, σ_N = 0 (EDM Eq. 5)."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, got {num_steps}")
    i = torch.arange(num_steps, dtype=torch.float64)
    frac = i / max(num_steps - 1, 1)
    t = (sigma_max ** (1 / rho) + frac * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.cat([t, torch.zeros(1, dtype=torch.float64)])


def nfe(num_steps: int) -> int:
    """Denoiser evaluations of ``heun_sample``: 2N − 1."""
    return 2 * num_steps - 1


def noise_from_seeds(seeds: Sequence[int], shape: Sequence[int], device: str | torch.device = "cpu",
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, *shape) standard-normal noise; row b from ``torch.Generator().manual_seed(seeds[b])`` on CPU."""
    rows = [torch.randn(tuple(shape), generator=torch.Generator().manual_seed(int(s))) for s in seeds]
    out = torch.stack(rows) if rows else torch.empty(0, *shape)
    return out.to(device=device, dtype=dtype)


@torch.no_grad()
def heun_sample(denoiser: nn.Module, noise: torch.Tensor, *, num_steps: int = 18,
                sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX, rho: float = RHO,
                callback: Callback | None = None) -> torch.Tensor:
    """Integrate the PF-ODE from σ_max to 0 (EDM Algorithm 1, deterministic: S_churn = 0).

    Parameters
    ----------
    denoiser : D(x; σ), x (B, C, N, N) normalised units, σ (B,).
    noise : (B, C, N, N) standard normal; x_0 = σ_0 · noise.
    callback : called after each step with (step, num_steps, D(x_i; σ_i)).

    Returns
    -------
    (B, C, N, N) float32 samples in normalised units.
    """
    t = sigma_steps(num_steps, sigma_min, sigma_max, rho)
    x = noise.to(torch.float64) * t[0]  # x_0 ~ N(0, σ_0² I)
    B = x.shape[0]

    def D(x_: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        sigma = torch.full((B,), float(s), device=x_.device, dtype=torch.float32)
        return denoiser(x_.float(), sigma).to(torch.float64)

    for i in range(num_steps):
        t_cur, t_next = t[i], t[i + 1]
        # Euler step: d_i = (x_i − D(x_i; t_i)) / t_i
        D_cur = D(x, t_cur)
        d_cur = (x - D_cur) / t_cur
        x_next = x + (t_next - t_cur) * d_cur
        # Heun correction (Algorithm 1, lines 9–11), skipped at the last step where t_{i+1} = 0
        if t_next > 0:
            d_next = (x_next - D(x_next, t_next)) / t_next
            x_next = x + (t_next - t_cur) * (0.5 * d_cur + 0.5 * d_next)
        x = x_next
        if callback is not None:
            callback(i + 1, num_steps, D_cur.float())
    return x.float()
