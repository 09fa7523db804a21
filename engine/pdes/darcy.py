"""Darcy flow: -∇·(a∇u) = f on (0,1)^2, u = 0 on ∂Ω (the FNO/DiffusionPDE benchmark).

Channels (a, u): permeability a (dimensionless) and pressure u. Discretisation: conservative
5-point stencil, face coefficient a_{i+½,j} = (a_ij + a_{i+1,j})/2 (arithmetic mean: stays regular
where a generated, continuous a nears 0), interior residual
    r_ij = -[a_{i+½,j}(u_{i+1,j}-u_ij) - a_{i-½,j}(u_ij-u_{i-1,j}) + (same in y)]/h² - f,
boundary residual u. Coefficient prior: a = a_high where GRF(α=2, τ=3) ≥ 0, else a_low.

Adjoint (``solve_adjoint``): A(a) is symmetric (the same face coefficient on both sides of a face),
so Aᵀ λ = ∂L/∂u reuses the forward solve's LU factors, one per sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from engine import fd, grf
from engine.config import check_numbers
from engine.errors import ConfigError
from engine.grid import Grid
from engine.pdes import elliptic

# × a_low: the smallest permeability handed to the solver. A generated a is continuous and may be
# small or negative, where −∇·(a∇u) is singular or indefinite (``admissible_inputs``).
DARCY_FLOOR = 0.1


@dataclass(frozen=True)
class Darcy:
    name: ClassVar[str] = "darcy"
    title: ClassVar[str] = "Darcy flow"
    equation: ClassVar[str] = "-∇·(a∇u) = f, u = 0 on the boundary"
    fields: ClassVar[tuple[str, ...]] = ("a", "u")
    units: ClassVar[str] = "a: permeability, u: pressure (units of f·L²/a)"
    residual_orders: ClassVar[tuple[int, ...]] = (1, 2)  # ∇·(a∇u) = ∇a·∇u + aΔu
    axes: ClassVar[tuple[str, str]] = ("y", "x")
    periodic_columns: ClassVar[bool] = False
    has_adjoint: ClassVar[bool] = True
    two_phase_channel: ClassVar[str | None] = "a"

    forcing: float = 1.0  # f, constant source
    a_low: float = 3.0  # permeability where the GRF < 0
    a_high: float = 12.0  # permeability where the GRF >= 0

    def __post_init__(self) -> None:
        # a ≤ 0 makes -∇·(a∇u) singular or indefinite (the reference LU failed: "Factor is exactly
        # singular"), a_low ≥ a_high swaps or merges the prior's two phases, and a NaN or inf in a or
        # f reaches every field
        check_numbers(self, finite=("forcing",), positive=("a_low", "a_high"), what="darcy ")
        if not self.a_low < self.a_high:
            raise ConfigError(f"darcy needs a_low < a_high, got a_low {self.a_low}, a_high {self.a_high}")
        if self.forcing == 0:  # u = 0 for every a: a dataset with nothing to learn (and a zero-spread channel)
            raise ConfigError("darcy forcing must not be 0: every solution would be u = 0")

    @property
    def phase_threshold(self) -> float:
        """The value between the prior's two phases (7.5 for 3 and 12) that SPEC's error_rate thresholds at."""
        return (self.a_low + self.a_high) / 2

    def sample_inputs(self, seeds: Sequence[int], grid: Grid) -> torch.Tensor:
        g = grf.sample_2d(seeds, grid.n, alpha=2.0, tau=3.0)
        return torch.where(g >= 0, self.a_high, self.a_low).to(torch.float64)  # (B, n, n)

    def solve(self, inputs: torch.Tensor, grid: Grid) -> torch.Tensor:
        a_all = inputs.detach().to("cpu", torch.float64).numpy()
        rhs = np.full((grid.n - 2) ** 2, self.forcing)

        def one(a: np.ndarray) -> np.ndarray:
            return elliptic.embed(elliptic.lu_solve(elliptic.div_a_grad_matrix(a, grid.h), rhs), grid.n)

        solved = elliptic.thread_map(one, list(a_all))  # one sparse LU per sample, on every core
        u = torch.from_numpy(np.stack(solved)) if solved else torch.zeros(0, grid.n, grid.n, dtype=torch.float64)
        return torch.stack([inputs.detach().cpu().to(torch.float64), u], dim=1)

    def inputs_of(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0]

    def admissible_inputs(self, c: torch.Tensor) -> torch.Tensor:
        """a clamped to a ≥ DARCY_FLOOR·a_low, straight-through: the clamp's value, the identity's
        gradient, so that entries below the floor can move back."""
        floor = DARCY_FLOOR * self.a_low
        return c + (c.clamp_min(floor) - c).detach()

    def solve_with_state(self, inputs: torch.Tensor, grid: Grid) -> tuple[torch.Tensor, elliptic.ThreadOwnedLU]:
        """``solve``, keeping the LU factors of A(a), one per sample (A depends on a), for the adjoint."""
        n, m = grid.n, grid.n - 2
        factors = elliptic.ThreadOwnedLU([elliptic.div_a_grad_matrix(a, grid.h) for a in inputs.numpy()])
        rhs = np.full(m * m, self.forcing)
        u = np.stack([elliptic.embed(s, n) for s in factors.solve_each([rhs] * len(factors))])
        return torch.stack([inputs, torch.from_numpy(u)], dim=1), factors

    def solve_adjoint(self, x: torch.Tensor, g: torch.Tensor, state: elliptic.ThreadOwnedLU,
                      grid: Grid) -> torch.Tensor:
        # Aᵀ λ_int = (∂L/∂u)_int on the interior rows (A symmetric: transposed solves with the same
        # factors); the boundary rows R = u never reach a, so their λ stays 0.
        rhs = list(elliptic.adjoint_rhs(g))
        return torch.from_numpy(np.stack([elliptic.embed(s, grid.n) for s in state.solve_each(rhs, trans="T")]))

    def residual(self, x: torch.Tensor, grid: Grid) -> torch.Tensor:
        a, u = x[:, 0], x[:, 1]
        r_int = -fd.div_a_grad(a, u, grid.h) - self.forcing
        return elliptic.full_residual(r_int, u)

    def smoothed_residual(self, r: torch.Tensor, grid: Grid, s: float) -> torch.Tensor:
        return elliptic.smoothed_residual(r, grid, s)

    def interior_mask(self, grid: Grid) -> torch.Tensor:
        return elliptic.interior_mask(grid)

    def boundary_mask(self, grid: Grid) -> torch.Tensor:
        return grid.boundary_mask()

    def coefficient_mask(self, grid: Grid) -> torch.Tensor:
        return elliptic.channel_mask(grid, 2, 0)

    def solution_mask(self, grid: Grid) -> torch.Tensor:
        return elliptic.channel_mask(grid, 2, 1)
