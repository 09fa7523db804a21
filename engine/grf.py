"""Gaussian random fields, as in DiffusionPDE / FNO.

2-D (non-periodic) recipe: DCT-II coefficients
    c_k = N · τ^(α-1) (π²|k|² + τ²)^(-α/2) · ξ_k,  ξ_k ~ N(0, 1),  c_0 = 0 (zero mean),
mapped to the n x n grid by the orthonormal inverse DCT. The factor N (grid size) makes the field's
amplitude independent of resolution; it is the scaling of the DiffusionPDE data generator.

1-D periodic recipe (Burgers' initial condition): a real Fourier series with spectrum
σ (4π²k² + τ²)^(-α/2), the FNO Burgers prior N(0, 625(-Δ + 25)^-2) for α = 2, τ = 5, σ = 25.

Per-sample seeds: sample i is drawn from ``torch.Generator().manual_seed(seeds[i])`` alone, so it is
identical whatever the batch it is drawn in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def dct_matrix(n: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(n, n) orthonormal DCT-II matrix C with C[k, i] = s_k cos(πk(2i+1)/(2n)); inverse = C^T."""
    k = torch.arange(n, dtype=dtype)[:, None]
    i = torch.arange(n, dtype=dtype)[None, :]
    c = torch.cos(math.pi * k * (2 * i + 1) / (2 * n)) * math.sqrt(2.0 / n)
    c[0] /= math.sqrt(2.0)
    return c


def _normals(seeds: Sequence[int], shape: tuple[int, ...]) -> torch.Tensor:
    out = torch.empty((len(seeds), *shape), dtype=torch.float64)
    for b, s in enumerate(seeds):
        g = torch.Generator().manual_seed(int(s))
        out[b] = torch.randn(shape, generator=g, dtype=torch.float64)
    return out


def sample_2d(seeds: Sequence[int], n: int, alpha: float = 2.0, tau: float = 3.0) -> torch.Tensor:
    """(len(seeds), n, n) float64 GRF on the n x n vertex grid (DCT recipe above)."""
    k = torch.arange(n, dtype=torch.float64)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    coef = n * tau ** (alpha - 1) * (math.pi**2 * k2 + tau**2) ** (-alpha / 2)
    coef[0, 0] = 0.0
    xi = _normals(seeds, (n, n))
    c = dct_matrix(n)
    return c.T @ (coef * xi) @ c  # inverse orthonormal DCT along both axes


def sample_periodic_1d(
    seeds: Sequence[int], n: int, alpha: float = 2.0, tau: float = 5.0, sigma: float = 25.0
) -> torch.Tensor:
    """(len(seeds), n) float64 periodic GRF at x_i = i/n, zero mean."""
    kmax = n // 2
    k = torch.arange(1, kmax + 1, dtype=torch.float64)
    amp = sigma * (4 * math.pi**2 * k**2 + tau**2) ** (-alpha / 2)
    xi = _normals(seeds, (2, kmax))  # (B, 2, kmax): cosine and sine weights
    x = torch.arange(n, dtype=torch.float64) / n
    phase = 2 * math.pi * k[:, None] * x[None, :]  # (kmax, n)
    # Karhunen–Loève expansion of the periodic covariance: √2 Σ_k amp_k (ξ cos + η sin)
    return math.sqrt(2.0) * (
        (xi[:, 0] * amp) @ torch.cos(phase) + (xi[:, 1] * amp) @ torch.sin(phase)
    )
