"""Reference solvers: their output satisfies R = 0 to round-off (float64) and to float32 rounding
when stored as float32; R is exactly the operator the solver solves.

Relative residual (defined here): ‖R(x)‖₂ / ‖R(x₀)‖₂, with x₀ = x with every entry outside
``coefficient_mask`` set to 0 — the residual of the zero initial guess, i.e. ‖A u - b‖/‖b‖ for the
linear problems, and for burgers the size of the step equations when rows 1… are zero.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import pdes
from engine.grid import Grid
from engine.pdes import elliptic

SEEDS = [0, 1, 2]


def relative_residual(pde, x, grid):
    x0 = torch.where(pde.coefficient_mask(grid), x, torch.zeros_like(x))
    return (pde.residual(x, grid).norm() / pde.residual(x0, grid).norm()).item()


def solved(name, n, seeds=SEEDS, **params):
    pde, grid = pdes.get(name, **params), Grid(n)
    inputs = pde.sample_inputs(seeds, grid)
    x = pde.solve(inputs, grid)
    return pde, grid, inputs, x


@pytest.mark.parametrize("name", pdes.names())
def test_solver_output_has_round_off_residual(name):
    pde, grid, inputs, x = solved(name, 32)
    assert x.shape == (len(SEEDS), len(pde.fields), 32, 32) and x.dtype == torch.float64
    assert torch.isfinite(x).all()
    torch.testing.assert_close(pde.inputs_of(x), inputs.to(torch.float64), rtol=0, atol=0)
    rel = relative_residual(pde, x, grid)
    assert rel <= 1e-10, f"{name}: relative residual {rel:.2e}"
    # the solution is not trivial: the zero guess is far from it
    assert pde.residual(torch.where(pde.coefficient_mask(grid), x, 0.0), grid).abs().max() > 1e-3


def test_darcy_at_64_and_helmholtz_parameter():
    pde, grid, _, x = solved("darcy", 64, seeds=[7])
    assert relative_residual(pde, x, grid) <= 1e-10
    pde, grid, _, x = solved("helmholtz", 32, seeds=[7], k=4.0)
    assert relative_residual(pde, x, grid) <= 1e-10
    # the Helmholtz term matters: the k = 4 solution is not the Poisson one
    poisson = pdes.get("poisson").solve(pde.inputs_of(x), grid)
    assert (poisson[:, 1] - x[:, 1]).abs().max() > 0.1 * x[:, 1].abs().max()


@pytest.mark.parametrize("name", pdes.names())
def test_float32_storage_is_at_rounding_level(name):
    """R of the float32-cast solution (evaluated in float64) matches a model of float32 rounding:
    R(x + δ) - R(x) with δ uniform within ±2^-24 |x| (half an ulp, relative)."""
    pde, grid, _, x = solved(name, 32)
    r32 = pde.residual(x.float().double(), grid)
    gen = torch.Generator().manual_seed(0)
    delta = (torch.rand(x.shape, generator=gen, dtype=torch.float64) * 2 - 1) * 2.0**-24 * x.abs()
    r_model = pde.residual(x + delta, grid) - pde.residual(x, grid)
    ratio = (r32.norm() / r_model.norm()).item()
    assert 0.2 < ratio < 5, f"{name}: float32 residual {r32.norm():.2e} vs rounding model {r_model.norm():.2e}"


def test_darcy_float32_residual_mse_at_64():
    pde, grid, _, x = solved("darcy", 64, seeds=[0, 1])
    r = pde.residual(x.float().double(), grid)
    mse = float((r[:, pde.interior_mask(grid)] ** 2).mean())
    assert mse < 1e-8, f"darcy 64 float32 residual_mse {mse:.2e}"  # measured ≈ 5e-10
    assert mse > 1e-14  # it is rounding, not zero: float32 storage really happened


def test_darcy_matrix_is_the_residual_operator():
    """A u - b from the sparse assembly equals R on the interior, for arbitrary u (not only solutions)."""
    pde, n = pdes.get("darcy", forcing=1.7), 11
    rng = np.random.default_rng(3)
    a, u = rng.uniform(1, 5, (n, n)), rng.standard_normal((n, n))
    u[[0, -1]] = 0.0
    u[:, [0, -1]] = 0.0
    grid = Grid(n)
    mat = elliptic.div_a_grad_matrix(a, grid.h)
    assert (abs(mat - mat.T)).max() < 1e-9 * abs(mat).max()  # symmetric (conservative stencil)
    want = mat @ u[1:-1, 1:-1].ravel() - 1.7
    got = pde.residual(torch.from_numpy(np.stack([a, u])[None]), grid)[0, 1:-1, 1:-1].numpy().ravel()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-11 * np.abs(want).max())


def test_solvers_accept_float32_inputs():
    grid = Grid(16)
    for name in pdes.names():
        pde = pdes.get(name)
        inputs = pde.sample_inputs([5], grid)
        x = pde.solve(inputs.float(), grid)
        assert x.dtype == torch.float64 and torch.isfinite(x).all()
