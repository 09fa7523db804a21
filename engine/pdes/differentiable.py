"""The reference solve made differentiable: fields = S(c), gradients by the adjoint.

For every PDE whose solution is fixed by its coefficient (darcy, poisson, helmholtz; burgers by its
initial row) the discrete equation R(c, u) = 0 defines u(c). For a loss L(c, u(c)),

    dL/dc = ∂L/∂c − (∂R/∂c)ᵀ λ,    (∂R/∂u)ᵀ λ = ∂L/∂u                         (adjoint equation)

The PDE supplies the two solves (``PDE.solve_with_state``, ``PDE.solve_adjoint``; ``has_adjoint``
says it has them): the forward solve in float64 on the CPU, keeping what its adjoint reuses (LU
factors for the elliptic problems; burgers' trajectory is the fields themselves), and λ, the
adjoint solved once per backward (transposed solves with those factors; a backward-in-time sweep for
burgers). This module forms (∂R/∂c)ᵀ λ with torch.autograd on ``pde.residual`` itself, so the
gradient is that of exactly the operator the residual evaluates. No solver iteration is
back-propagated.

Which entries are "c" and which are "u" comes from the PDE: c = ``pde.inputs_of(x)`` (the entries of
``pde.coefficient_mask``), u = every other entry. Tensors may live on any device; the solve runs on
the CPU and results go back to the caller's device and dtype.
"""

from __future__ import annotations

import torch

from engine.grid import Grid
from engine.pdes.base import PDE


def solve_fields(pde: PDE, c: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Differentiable reference solve.

    Parameters
    ----------
    pde : a PDE with ``has_adjoint`` (every registry PDE: darcy, poisson, helmholtz, burgers);
        TypeError otherwise.
    c : coefficient, (B, N, N) (darcy a, poisson/helmholtz f) or (B, N) (burgers u(0, ·)), any
        float dtype and device; may require grad.
    grid : the N x N grid.

    Returns
    -------
    (B, C, N, N) fields [c, S(c)] in c's dtype and device, at solver tolerance in float64.
    """
    if not getattr(pde, "has_adjoint", False):
        raise TypeError(f"no differentiable solver for {type(pde).__name__}")
    return _ReferenceSolve.apply(c, pde, grid)


class _ReferenceSolve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, c: torch.Tensor, pde: PDE, grid: Grid) -> torch.Tensor:  # type: ignore[override]
        c64 = c.detach().to("cpu", torch.float64)
        x, state = pde.solve_with_state(c64, grid)
        if not ctx.needs_input_grad[0]:
            state = None  # no backward will come: free the factors now, not with the output's graph
        ctx.pde, ctx.grid, ctx.state = pde, grid, state
        ctx.save_for_backward(x)
        return x.to(c.device, c.dtype)

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        pde, grid = ctx.pde, ctx.grid
        g64 = g.detach().to("cpu", torch.float64)
        # adjoint equation (∂R/∂u)ᵀ λ = ∂L/∂u, then dL/dc = ∂L/∂c − (∂R/∂c)ᵀ λ
        lam = pde.solve_adjoint(x, g64, ctx.state, grid)
        dc = pde.inputs_of(g64) - pde.inputs_of(_residual_vjp(pde, x, lam, grid))
        return dc.to(g.device, g.dtype), None, None


def _residual_vjp(pde: PDE, x: torch.Tensor, lam: torch.Tensor, grid: Grid) -> torch.Tensor:
    """(∂R/∂x)ᵀ λ, (B, C, N, N), by autograd on the full-grid residual."""
    with torch.enable_grad():
        xr = x.detach().requires_grad_(True)
        (out,) = torch.autograd.grad(pde.residual(xr, grid), xr, lam)
    return out


__all__ = ["solve_fields"]
