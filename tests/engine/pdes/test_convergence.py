"""Manufactured solutions: each residual R, applied to a smooth exact solution, is the scheme's
truncation error and must fall at second order (ratio 4 when h halves).

For the Dirichlet problems the fields are u = sin(πx) sin(2πy) (zero on ∂Ω, not symmetric in x↔y)
and, for darcy, a = 1 + x/2 + xy²/4 (also asymmetric, so a transposed stencil fails). The
continuous operator is evaluated analytically; the truncation error is R(x) minus the continuous
residual on the interior nodes.

Burgers has no source term, so instead of a manufactured forcing we use an exact solution of
viscous Burgers (Cole–Hopf): with φ = c0 + c1 e^{-4π²νt} cos 2πx solving φ_t = νφ_xx,
u = -2ν φ_x/φ solves u_t + u u_x = ν u_xx exactly, is smooth and periodic. Sampled on the scheme's
nodes (t_j = j/(n-1), x_i = i/n), the Crank–Nicolson step residual is O(Δt² + Δx²). c1/c0 = 1/4 and
ν = 0.05 keep u u_x and ν u_xx of the same size, so both terms are tested.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pde_reference import cole_hopf

from engine import pdes
from engine.grid import Grid

PI = math.pi


def _nodes(n):
    t = np.arange(n) / (n - 1)
    y, x = np.meshgrid(t, t, indexing="ij")  # row = y, col = x
    return y, x


def _source_case(k2):
    def case(n):
        y, x = _nodes(n)
        u = np.sin(PI * x) * np.sin(2 * PI * y)
        f = (5 * PI**2 - k2) * u  # -Δu = 5π² u
        return np.stack([f, u])[None], np.zeros((n, n))

    return case


def _darcy_case(pde):
    def case(n):
        y, x = _nodes(n)
        a = 1 + x / 2 + x * y**2 / 4
        a_x, a_y = 0.5 + y**2 / 4, x * y / 2
        u = np.sin(PI * x) * np.sin(2 * PI * y)
        u_x = PI * np.cos(PI * x) * np.sin(2 * PI * y)
        u_y = 2 * PI * np.sin(PI * x) * np.cos(2 * PI * y)
        minus_div = -(a_x * u_x + a_y * u_y + a * (-5 * PI**2 * u))  # -∇·(a∇u)
        return np.stack([a, u])[None], minus_div - pde.forcing

    return case


def _burgers_case(pde):
    def case(n):
        return cole_hopf(pde.nu, n), np.zeros((n, n))

    return case


CASES = {
    "darcy": ({}, _darcy_case),
    "poisson": ({}, lambda pde: _source_case(0.0)),
    "helmholtz": ({"k": 2.0}, lambda pde: _source_case(pde.k**2)),
    "burgers": ({"nu": 0.05}, _burgers_case),
}


def manufactured_residual_error(name, n):
    """RMS over the interior of R_h(exact) - R(exact); also returns the max boundary residual."""
    params, make = CASES[name]
    pde = pdes.get(name, **params)
    x, continuous = make(pde)(n)
    grid = Grid(n)
    r = pde.residual(torch.from_numpy(x), grid)[0].numpy()
    interior, boundary = pde.interior_mask(grid).numpy(), pde.boundary_mask(grid).numpy()
    err = float(np.sqrt(np.mean((r - continuous)[interior] ** 2)))
    bc = float(np.abs(r[boundary]).max()) if boundary.any() else 0.0
    return err, bc


def test_every_pde_has_a_manufactured_solution():
    assert set(CASES) == set(pdes.names())


@pytest.mark.parametrize("name", pdes.names())
def test_residual_converges_second_order(name):
    (e33, bc33), (e65, bc65) = (manufactured_residual_error(name, n) for n in (33, 65))
    ratio = e33 / e65
    assert 3.5 < ratio < 4.5, f"{name}: truncation error {e33:.3e} -> {e65:.3e}, ratio {ratio:.2f}"
    assert bc33 < 1e-12 and bc65 < 1e-12  # exact solution satisfies u = 0 on ∂Ω

