"""What every PDE provides (a Protocol: no base-class logic).

Conventions (see ``engine.grid``): fields are (B, C, n, n) in physical units, channels in the
order of ``fields``; the residual is returned on the full grid, (B, n, n): the discrete equation's
residual on nodes where it holds (``interior_mask``), the boundary-condition residual on boundary
nodes (``boundary_mask``), zero elsewhere (Burgers' initial row). The reference solver solves
exactly the discrete operator that ``residual`` evaluates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

import torch

from engine.grid import Grid


class PDE(Protocol):
    name: ClassVar[str]
    title: ClassVar[str]
    equation: ClassVar[str]
    fields: ClassVar[tuple[str, ...]]  # channel order everywhere
    units: ClassVar[str]
    # the residual's differential order in each channel (darcy: 1 in a, 2 in u): a solve for one
    # channel measures the residual in H^(−order), where it is as sensitive to every scale of that
    # channel's error (``smoothed_residual``, ``engine.solve.api.default_residual_norm``)
    residual_orders: ClassVar[tuple[int, ...]]
    axes: ClassVar[tuple[str, str]]  # what the rows and the columns of a field run along: ("y", "x")
    # columns x_i = i/n on a periodic [0, 1) (x = 1 is x = 0, not stored) instead of i/(n−1) on [0, 1]
    periodic_columns: ClassVar[bool]
    # the PDE provides ``solve_with_state`` and ``solve_adjoint``, so the reference solve is
    # differentiable (``engine.pdes.differentiable.solve_fields``); False: solve_fields raises TypeError
    has_adjoint: ClassVar[bool]
    # the channel whose prior takes two values (darcy's a: 3 or 12), scored by SPEC's error_rate at
    # ``phase_threshold`` (the value between them); None for a PDE without one
    two_phase_channel: ClassVar[str | None]
    phase_threshold: float

    def sample_inputs(self, seeds: Sequence[int], grid: Grid) -> torch.Tensor:
        """Random coefficients (or Burgers initial conditions), float64, one per seed."""
        ...

    def solve(self, inputs: torch.Tensor, grid: Grid) -> torch.Tensor:
        """Reference solve: inputs -> full fields (B, C, n, n), float64, at solver tolerance."""
        ...

    def inputs_of(self, x: torch.Tensor) -> torch.Tensor:
        """The coefficient part of fields x (what ``solve`` takes)."""
        ...

    def admissible_inputs(self, c: torch.Tensor) -> torch.Tensor:
        """c, shaped as ``inputs_of`` returns it, moved into the set ``solve`` is defined on.

        For a proposed (generated) coefficient before a reference solve (piddm-exact). Same shape,
        dtype and device as c; differentiable, with the identity's gradient wherever it changes c
        (a straight-through projection), so an optimiser can move a clamped entry back. Darcy:
        a ≥ ``DARCY_FLOOR``·a_low (a ≤ 0 makes −∇·(a∇u) singular or indefinite); c itself for a
        PDE whose solve takes every finite c.
        """
        ...

    def solve_with_state(self, inputs: torch.Tensor, grid: Grid) -> tuple[torch.Tensor, Any]:
        """Reference solve that also returns what ``solve_adjoint`` needs (only if ``has_adjoint``).

        inputs: float64 CPU coefficients, shaped as ``inputs_of`` returns them. Returns the fields
        (B, C, n, n), float64 CPU, equal to ``solve``'s to solver tolerance, and an opaque state
        (LU factors of the system matrices; None when the fields themselves suffice, as for
        Burgers' trajectory). Dropping the state frees it.
        """
        ...

    def solve_adjoint(self, x: torch.Tensor, g: torch.Tensor, state: Any, grid: Grid) -> torch.Tensor:
        """The adjoint λ of the discrete equation R(c, u) = 0 at its solution (only if ``has_adjoint``).

        Solves (∂R/∂u)ᵀ λ = ∂L/∂u, with u every entry of x outside ``coefficient_mask``.
        x: fields (B, C, n, n) from ``solve_with_state``, with its ``state``; g = ∂L/∂x (B, C, n, n);
        both float64 CPU. Returns λ (B, n, n), float64 CPU, laid out as ``residual``'s output, so
        that dL/dc = ∂L/∂c − (∂R/∂c)ᵀ λ. Entries of λ on residual rows that do not involve c (the
        Dirichlet rows R = u) may be left 0: they never reach dL/dc.
        """
        ...

    def residual(self, x: torch.Tensor, grid: Grid) -> torch.Tensor:
        """Full-grid residual (B, n, n) of fields x (B, C, n, n); differentiable."""
        ...

    def smoothed_residual(self, r: torch.Tensor, grid: Grid, s: float) -> torch.Tensor:
        """The residual r (B, n, n) made ready for the H^(−2s) norm: ‖out‖₂ = ‖r‖_{H^(−2s)}.

        The equation's part becomes (−Δ_h)^(−s) r (−Δ_h with the problem's boundary conditions),
        boundary rows stay as they are; s = 0 returns r. ConfigError for an s the PDE has no
        operator for. Differentiable.
        """
        ...

    def interior_mask(self, grid: Grid) -> torch.Tensor:
        """(n, n) bool: nodes where the discrete PDE holds."""
        ...

    def boundary_mask(self, grid: Grid) -> torch.Tensor:
        """(n, n) bool: nodes carrying a boundary-condition residual."""
        ...

    def coefficient_mask(self, grid: Grid) -> torch.Tensor:
        """(C, n, n) bool: the entries that determine the solution (forward-task observations)."""
        ...

    def solution_mask(self, grid: Grid) -> torch.Tensor:
        """(C, n, n) bool: the entries observed by the inverse task."""
        ...
