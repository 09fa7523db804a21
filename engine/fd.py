"""Finite differences on the vertex grid (batched, differentiable, any float dtype/device).

All operators act on (..., n, n) tensors and return the interior (..., n-2, n-2) values.
Second order: halving h divides the truncation error by 4 (tests check the rate).
"""

from __future__ import annotations

import torch


def laplacian(u: torch.Tensor, h: float) -> torch.Tensor:
    """5-point Laplacian on interior nodes: (u_E + u_W + u_N + u_S - 4 u_C) / h^2."""
    c = u[..., 1:-1, 1:-1]
    return (u[..., 1:-1, 2:] + u[..., 1:-1, :-2] + u[..., 2:, 1:-1] + u[..., :-2, 1:-1] - 4 * c) / h**2


def div_a_grad(a: torch.Tensor, u: torch.Tensor, h: float) -> torch.Tensor:
    """Conservative ∇·(a∇u) on interior nodes, face coefficient = arithmetic mean of the two nodes.

    [a_{i+½}(u_{i+1}-u_i) - a_{i-½}(u_i-u_{i-1})]/h^2 + (same in y), a_{i+½} = (a_i + a_{i+1})/2.
    """
    ax = 0.5 * (a[..., :, 1:] + a[..., :, :-1])  # (..., n, n-1) x-faces
    ay = 0.5 * (a[..., 1:, :] + a[..., :-1, :])  # (..., n-1, n) y-faces
    fx = ax * (u[..., :, 1:] - u[..., :, :-1])  # flux through x-faces (times h)
    fy = ay * (u[..., 1:, :] - u[..., :-1, :])
    div_x = fx[..., 1:-1, 1:] - fx[..., 1:-1, :-1]  # (..., n-2, n-2)
    div_y = fy[..., 1:, 1:-1] - fy[..., :-1, 1:-1]
    return (div_x + div_y) / h**2


def embed_interior(r_int: torch.Tensor, boundary: torch.Tensor) -> torch.Tensor:
    """Full (..., n, n) field: r_int on the interior, ``boundary`` values on the boundary nodes."""
    out = boundary.clone()
    out[..., 1:-1, 1:-1] = r_int
    return out
