"""The reference solve made differentiable: fields = S(c), gradients by the adjoint.

For every PDE whose solution is fixed by its coefficient (darcy, poisson, helmholtz; burgers by its
initial row) the discrete equation R(c, u) = 0 defines u(c). For a loss L(c, u(c)),

    dL/dc = ∂L/∂c − (∂R/∂c)ᵀ λ,    (∂R/∂u)ᵀ λ = ∂L/∂u                         (adjoint equation)

The forward pass solves in float64 on the CPU (scipy sparse LU for the elliptic problems, the
Crank–Nicolson Newton march for burgers). The backward pass solves the adjoint equation once —
one transposed linear solve per sample for the elliptic problems (their matrices are symmetric, so
the forward factorisation is reused), a backward-in-time sweep of N−1 transposed step Jacobians for
burgers — and forms (∂R/∂c)ᵀ λ with torch.autograd on ``pde.residual`` itself, so the gradient is
that of exactly the operator the residual evaluates. No solver iteration is back-propagated.

Which entries are "c" and which are "u" comes from the PDE: c = ``pde.inputs_of(x)`` (the entries of
``pde.coefficient_mask``), u = every other entry. Tensors may live on any device; the solve runs on
the CPU and results go back to the caller's device and dtype.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.sparse.linalg import SuperLU

from engine.grid import Grid
from engine.pdes.base import PDE
from engine.pdes.burgers import Burgers
from engine.pdes.darcy import Darcy
from engine.pdes.elliptic import (
    SourceProblem,
    ThreadOwnedLU,
    div_a_grad_matrix,
    embed,
    solve_many,
    source_operator_lu,
)


def solve_fields(pde: PDE, c: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Differentiable reference solve.

    Parameters
    ----------
    pde : a registry PDE (darcy, poisson, helmholtz, burgers).
    c : coefficient, (B, N, N) (darcy a, poisson/helmholtz f) or (B, N) (burgers u(0, ·)), any
        float dtype and device; may require grad.
    grid : the N x N grid.

    Returns
    -------
    (B, C, N, N) fields [c, S(c)] in c's dtype and device, at solver tolerance in float64.
    """
    if not isinstance(pde, Darcy | SourceProblem | Burgers):
        raise TypeError(f"no differentiable solver for {type(pde).__name__}")
    return _ReferenceSolve.apply(c, pde, grid)


class _ReferenceSolve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, c: torch.Tensor, pde: PDE, grid: Grid) -> torch.Tensor:  # type: ignore[override]
        c64 = c.detach().to("cpu", torch.float64)
        if isinstance(pde, Burgers):
            x, factors = pde.solve(c64, grid), None
        else:
            x, factors = _elliptic_forward(pde, c64, grid)
        if isinstance(factors, ThreadOwnedLU) and not ctx.needs_input_grad[0]:
            factors.release()  # no backward will come: free them now, not with the output's graph
        ctx.pde, ctx.grid, ctx.factors = pde, grid, factors
        ctx.save_for_backward(x)
        return x.to(c.device, c.dtype)

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        pde, grid = ctx.pde, ctx.grid
        g64 = g.detach().to("cpu", torch.float64)
        if isinstance(pde, Burgers):
            dc = _burgers_adjoint(pde, x, g64, grid)
        else:
            dc = _elliptic_adjoint(pde, x, g64, grid, ctx.factors)
        return dc.to(g.device, g.dtype), None, None


# --- elliptic problems: A(c) u_int = b(c), u = 0 on the boundary ----------------------------------


def _elliptic_forward(pde: PDE, c: torch.Tensor, grid: Grid) -> tuple[torch.Tensor, ThreadOwnedLU | SuperLU]:
    """Solve every sample, keeping the LU factors: one per sample for darcy (A depends on a), the
    cached operator of the source problems (A is the same for every f)."""
    n, m = grid.n, grid.n - 2
    if isinstance(pde, Darcy):  # one factorisation per sample, on every core
        factors = ThreadOwnedLU([div_a_grad_matrix(a, grid.h) for a in c.numpy()])
        rhs = np.full(m * m, pde.forcing)
        u = np.stack([embed(s, n) for s in factors.solve_each([rhs] * len(factors))])
    else:
        factors = source_operator_lu(n, grid.h, float(pde.k2))
        u = solve_many(factors, c[:, 1:-1, 1:-1].reshape(len(c), -1).numpy(), n)
    return torch.stack([c, torch.from_numpy(u)], dim=1), factors


def _elliptic_adjoint(pde: PDE, x: torch.Tensor, g: torch.Tensor, grid: Grid,
                      factors: ThreadOwnedLU | SuperLU) -> torch.Tensor:
    """dL/dc for elliptic problems; x = [c, u] (B, 2, N, N), g = dL/dx (B, 2, N, N)."""
    # Adjoint on the interior rows: Aᵀ λ_int = (∂L/∂u)_int (A symmetric: reuse the LU factors). The
    # boundary rows of R are u itself, so their λ never reaches c and is not needed here.
    g_int = g[:, 1, 1:-1, 1:-1].reshape(len(g), -1).numpy()
    if isinstance(factors, ThreadOwnedLU):
        lam = torch.from_numpy(np.stack([embed(s, grid.n) for s in factors.solve_each(list(g_int), trans="T")]))
    else:
        lam = torch.from_numpy(solve_many(factors, g_int, grid.n, trans="T"))
    return pde.inputs_of(g) - pde.inputs_of(_residual_vjp(pde, x, lam, grid))


# --- burgers: the Crank–Nicolson march from u(0, ·) ----------------------------------------------


def _burgers_adjoint(pde: Burgers, x: torch.Tensor, g: torch.Tensor, grid: Grid) -> torch.Tensor:
    """dL/du0 for burgers by a backward-in-time sweep; x, g (B, 1, N, N), rows = time.

    With r_j(u_{j-1}, u_j) the step equation of row j (j = 1 … N−1), D_j = ∂r_j/∂u_j and
    L_j = ∂r_j/∂u_{j-1}, the adjoint system (∂R/∂u)ᵀ λ = ∂L/∂u is block bidiagonal:
        D_jᵀ λ_j = g_j − L_{j+1}ᵀ λ_{j+1}  (λ_N = 0),   dL/du0 = g_0 − L_1ᵀ λ_1.
    """
    n = grid.n
    u, gu = x[:, 0], g[:, 0]
    dt, dx = 1.0 / (n - 1), 1.0 / n
    eye = torch.eye(n, dtype=torch.float64)
    d1 = (torch.roll(eye, 1, 0) - torch.roll(eye, -1, 0)).T / (2 * dx)  # d1 @ v = central ∂x v
    d2 = (torch.roll(eye, 1, 1) + torch.roll(eye, -1, 1) - 2 * eye) / dx**2
    carry = torch.zeros_like(u[:, 0])  # L_{j+1}ᵀ λ_{j+1}
    for j in range(n - 1, 0, -1):
        # D_j = I/Δt + ½ (D1 diag(u_j) − ν D2): the Jacobian the forward Newton iteration uses.
        dj = eye / dt + 0.5 * (d1 @ torch.diag_embed(u[:, j]) - pde.nu * d2)
        lam_j = torch.linalg.solve(dj.transpose(-1, -2), (gu[:, j] - carry).unsqueeze(-1)).squeeze(-1)
        carry = _step_vjp_prev(pde, u[:, j - 1], u[:, j], lam_j, grid)
    return gu[:, 0] - carry


def _step_vjp_prev(pde: Burgers, prev: torch.Tensor, nxt: torch.Tensor, lam: torch.Tensor,
                   grid: Grid) -> torch.Tensor:
    """L_jᵀ λ = (∂r_j/∂u_{j-1})ᵀ λ by autograd on the step equation."""
    with torch.enable_grad():
        p = prev.detach().requires_grad_(True)
        (out,) = torch.autograd.grad(pde.step_residual(p, nxt.detach(), grid), p, lam)
    return out


def _residual_vjp(pde: PDE, x: torch.Tensor, lam: torch.Tensor, grid: Grid) -> torch.Tensor:
    """(∂R/∂x)ᵀ λ, (B, C, N, N), by autograd on the full-grid residual."""
    with torch.enable_grad():
        xr = x.detach().requires_grad_(True)
        (out,) = torch.autograd.grad(pde.residual(xr, grid), xr, lam)
    return out


__all__ = ["solve_fields"]
