"""Viscous Burgers: u_t + u u_x = ν u_xx, periodic in x, t ∈ [0, 1].

One channel u, stored as u[j, i] = u(t_j, x_i) with t_j = j/(n-1) (rows, t = 0 and 1 included) and
x_i = i/n (columns; periodic, x = 1 is x = 0 and is not stored). Units: u is a velocity, x and t
dimensionless, ν a diffusivity.

Discretisation: Crank–Nicolson in time, central differences in x, conservative flux u²/2:
    F(v)_i = (v_{i+1}² - v_{i-1}²)/(4Δx) - ν (v_{i+1} - 2v_i + v_{i-1})/Δx²,
    r_j = (u_j - u_{j-1})/Δt + ½ [F(u_j) + F(u_{j-1})]     for rows j = 1 … n-1.
Row 0 (the initial condition) has no residual. The solver takes each step by Newton's method on
r_j = 0 (dense batched Jacobian) until |r_j| is at round-off, so stored fields satisfy the scheme.
Initial condition: the periodic FNO prior N(0, 625(-Δ + 25)^-2), scaled by ``ic_scale``.

Adjoint (``solve_adjoint``): with D_j = ∂r_j/∂u_j and L_j = ∂r_j/∂u_{j-1}, the system
(∂R/∂u)ᵀ λ = ∂L/∂u is block bidiagonal and is solved backward in time:
    D_jᵀ λ_j = g_j − L_{j+1}ᵀ λ_{j+1}   (j = n-1 … 1, λ_n = 0),
after which dL/du(0,·) = g_0 − L_1ᵀ λ_1 (``engine.pdes.differentiable``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch

from engine import grf
from engine.config import check_numbers
from engine.errors import ConfigError, NonFiniteError
from engine.grid import Grid


def _d1(v: torch.Tensor, dx: float) -> torch.Tensor:
    return (torch.roll(v, -1, -1) - torch.roll(v, 1, -1)) / (2 * dx)


def _d2(v: torch.Tensor, dx: float) -> torch.Tensor:
    return (torch.roll(v, -1, -1) - 2 * v + torch.roll(v, 1, -1)) / dx**2


def _difference_matrices(n: int, dx: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(I, D1, D2), (n, n) float64: D1 @ v = _d1(v), D2 @ v = _d2(v) on the periodic row."""
    eye = torch.eye(n, dtype=torch.float64)
    d1 = (torch.roll(eye, 1, 0) - torch.roll(eye, -1, 0)).T / (2 * dx)
    d2 = (torch.roll(eye, 1, 1) + torch.roll(eye, -1, 1) - 2 * eye) / dx**2
    return eye, d1, d2


@dataclass(frozen=True)
class Burgers:
    name: ClassVar[str] = "burgers"
    title: ClassVar[str] = "Viscous Burgers equation"
    equation: ClassVar[str] = "u_t + u u_x = ν u_xx, periodic in x; rows = time t ∈ [0, 1]"
    fields: ClassVar[tuple[str, ...]] = ("u",)
    units: ClassVar[str] = "u: velocity; rows t ∈ [0,1], columns x ∈ [0,1) periodic"
    residual_orders: ClassVar[tuple[int, ...]] = (2,)  # ν u_xx
    axes: ClassVar[tuple[str, str]] = ("t", "x")
    periodic_columns: ClassVar[bool] = True
    has_adjoint: ClassVar[bool] = True
    two_phase_channel: ClassVar[str | None] = None

    nu: float = 0.01  # viscosity ν
    ic_scale: float = 1.0  # multiplies the initial-condition GRF

    def __post_init__(self) -> None:
        # ν ≤ 0 or NaN: Newton's iteration fails to converge, far from the parameter that made it
        check_numbers(self, positive=("nu",), finite=("ic_scale",), what="burgers ")
        if self.ic_scale == 0:  # u(0,·) = 0 stays 0: a dataset with nothing to learn
            raise ConfigError("burgers ic_scale must not be 0: every solution would be u = 0")

    # -- the scheme -----------------------------------------------------------------------------
    def flux_terms(self, v: torch.Tensor, dx: float) -> torch.Tensor:
        """F(v) = (v²/2)_x - ν v_xx with central differences, along the last axis."""
        return _d1(0.5 * v * v, dx) - self.nu * _d2(v, dx)

    def step_residual(self, prev: torch.Tensor, nxt: torch.Tensor, grid: Grid) -> torch.Tensor:
        """Crank–Nicolson step equation from row ``prev`` to row ``nxt`` (same shapes)."""
        dt, dx = 1.0 / (grid.n - 1), 1.0 / grid.n
        return (nxt - prev) / dt + 0.5 * (self.flux_terms(nxt, dx) + self.flux_terms(prev, dx))

    def residual(self, x: torch.Tensor, grid: Grid) -> torch.Tensor:
        u = x[:, 0]  # (B, n, n): rows t, cols x
        r_rows = self.step_residual(u[:, :-1], u[:, 1:], grid)
        return torch.cat([torch.zeros_like(u[:, :1]), r_rows], dim=1)

    def step_jacobian(self, nxt: torch.Tensor, mats: tuple[torch.Tensor, ...], dt: float) -> torch.Tensor:
        """D = ∂r_j/∂u_j = I/Δt + ½ (D1 diag(u_j) − ν D2), (B, n, n); mats = ``_difference_matrices``."""
        eye, d1, d2 = mats
        return eye / dt + 0.5 * (d1 @ torch.diag_embed(nxt) - self.nu * d2)

    def smoothed_residual(self, r: torch.Tensor, grid: Grid, s: float) -> torch.Tensor:
        # one channel: no task observes a whole channel and solves for another, so nothing needs it
        if s != 0:
            raise ConfigError(f"burgers measures its residual plainly (residual norm 0), got {s:g}")
        return r

    # -- data -----------------------------------------------------------------------------------
    def sample_inputs(self, seeds: Sequence[int], grid: Grid) -> torch.Tensor:
        return self.ic_scale * grf.sample_periodic_1d(seeds, grid.n)  # (B, n)

    def solve(self, inputs: torch.Tensor, grid: Grid, tol: float = 1e-13) -> torch.Tensor:
        """March u(0,·) (B, n) through n-1 Crank–Nicolson steps; returns (B, 1, n, n) float64."""
        n = grid.n
        dt, dx = 1.0 / (n - 1), 1.0 / n
        u = inputs.detach().to("cpu", torch.float64)
        rows = [u]
        mats = _difference_matrices(n, dx)
        for _ in range(n - 1):
            prev, v = rows[-1], rows[-1].clone()
            scale = 1.0 + prev.abs().amax(dim=-1, keepdim=True) / dt
            for _newton in range(50):
                g = self.step_residual(prev, v, grid)
                if bool((g.abs() <= tol * scale).all()):
                    break
                v = v - torch.linalg.solve(self.step_jacobian(v, mats, dt), g.unsqueeze(-1)).squeeze(-1)
            else:
                raise NonFiniteError(f"burgers Newton iteration did not converge (max |r| {g.abs().max():.3e})")
            if not torch.isfinite(v).all():
                raise NonFiniteError("burgers solve produced non-finite values")
            rows.append(v)
        return torch.stack(rows, dim=1).unsqueeze(1)

    def inputs_of(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0, 0]

    def admissible_inputs(self, c: torch.Tensor) -> torch.Tensor:
        return c  # the march takes any finite initial row

    # -- adjoint --------------------------------------------------------------------------------
    def solve_with_state(self, inputs: torch.Tensor, grid: Grid) -> tuple[torch.Tensor, None]:
        """``solve``; the adjoint needs only the trajectory (the fields), so no state."""
        return self.solve(inputs, grid), None

    def solve_adjoint(self, x: torch.Tensor, g: torch.Tensor, state: None, grid: Grid) -> torch.Tensor:
        # the backward-in-time sweep of the module docstring; row 0 carries no equation: λ_0 = 0
        n = grid.n
        u, gu = x[:, 0], g[:, 0]  # (B, n, n): rows t
        dt, mats = 1.0 / (n - 1), _difference_matrices(n, 1.0 / n)
        lam = torch.zeros_like(u)
        carry = torch.zeros_like(u[:, 0])  # L_{j+1}ᵀ λ_{j+1}
        for j in range(n - 1, 0, -1):
            dj = self.step_jacobian(u[:, j], mats, dt)  # the Jacobian the forward Newton iteration used
            lam[:, j] = torch.linalg.solve(dj.transpose(-1, -2), (gu[:, j] - carry).unsqueeze(-1)).squeeze(-1)
            if j > 1:  # L_1ᵀ λ_1 is the caller's (∂R/∂c)ᵀ λ
                carry = self._step_vjp_prev(u[:, j - 1], u[:, j], lam[:, j], grid)
        return lam

    def _step_vjp_prev(self, prev: torch.Tensor, nxt: torch.Tensor, lam: torch.Tensor, grid: Grid) -> torch.Tensor:
        """L_jᵀ λ = (∂r_j/∂u_{j-1})ᵀ λ by autograd on the step equation."""
        with torch.enable_grad():
            p = prev.detach().requires_grad_(True)
            (out,) = torch.autograd.grad(self.step_residual(p, nxt.detach(), grid), p, lam)
        return out

    # -- masks ----------------------------------------------------------------------------------
    def interior_mask(self, grid: Grid) -> torch.Tensor:
        m = torch.ones(grid.n, grid.n, dtype=torch.bool)
        m[0] = False
        return m

    def boundary_mask(self, grid: Grid) -> torch.Tensor:
        return torch.zeros(grid.n, grid.n, dtype=torch.bool)  # periodicity is built into the scheme

    def coefficient_mask(self, grid: Grid) -> torch.Tensor:
        m = torch.zeros(1, grid.n, grid.n, dtype=torch.bool)
        m[0, 0] = True  # the initial condition u(0, ·)
        return m

    def solution_mask(self, grid: Grid) -> torch.Tensor:
        m = torch.zeros(1, grid.n, grid.n, dtype=torch.bool)
        m[0, -1] = True  # the final state u(1, ·)
        return m
