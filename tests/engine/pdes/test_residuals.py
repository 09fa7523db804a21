"""Every registered PDE's residual R: independent NumPy re-implementation, dtypes, batching, gradients.

The reference residuals in ``pde_reference`` are written from the SPEC formulas with loops; they share
no code with ``engine.fd``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pde_reference import RESIDUALS

from engine import pdes
from engine.errors import ConfigError
from engine.grid import Grid

# Non-default parameters too, so that a residual ignoring its parameter fails.
PARAMS = {"darcy": [{}, {"forcing": 2.5}], "poisson": [{}], "helmholtz": [{}, {"k": 3.0}],
          "burgers": [{}, {"nu": 0.07}]}


def random_fields(pde, n: int, batch: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, len(pde.fields), n, n))
    if pde.name == "darcy":
        x[:, 0] = rng.uniform(0.5, 12.0, (batch, n, n))  # a positive permeability
    return x


def test_every_pde_has_a_reference_residual():
    assert set(pdes.names()) == set(RESIDUALS) == set(PARAMS)


@pytest.mark.parametrize("name", pdes.names())
def test_residual_matches_independent_numpy(name):
    for params in PARAMS[name]:
        pde = pdes.get(name, **params)
        for n in (6, 9):
            x = random_fields(pde, n, batch=3, seed=n)
            want = RESIDUALS[name](pde, x)
            got = pde.residual(torch.from_numpy(x), Grid(n)).numpy()
            assert got.shape == (3, n, n)
            scale = np.abs(want).max()
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * scale)


@pytest.mark.parametrize("name", pdes.names())
def test_residual_float32_float64_and_batched(name):
    pde, n = pdes.get(name), 9
    x64 = torch.from_numpy(random_fields(pde, n, batch=4))
    r64 = pde.residual(x64, Grid(n))
    r32 = pde.residual(x64.float(), Grid(n))
    assert r64.dtype == torch.float64 and r32.dtype == torch.float32
    assert torch.allclose(r32.double(), r64, rtol=0, atol=1e-5 * r64.abs().max().item())
    # batched = one by one
    for b in range(4):
        torch.testing.assert_close(pde.residual(x64[b : b + 1], Grid(n))[0], r64[b], rtol=0, atol=0)


@pytest.mark.parametrize("name", pdes.names())
def test_residual_is_differentiable(name):
    pde, n = pdes.get(name), 5
    x = torch.from_numpy(random_fields(pde, n, batch=2)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: pde.residual(x, Grid(n)), (x,), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", pdes.names())
def test_masks_partition_the_grid(name):
    pde, grid = pdes.get(name), Grid(8)
    interior, boundary = pde.interior_mask(grid), pde.boundary_mask(grid)
    assert interior.shape == boundary.shape == (8, 8)
    assert not (interior & boundary).any()
    # nodes in neither mask carry a zero residual (burgers' initial row)
    x = torch.from_numpy(random_fields(pde, 8, batch=2))
    r = pde.residual(x, grid)
    assert (r[:, ~(interior | boundary)] == 0).all()
    c = len(pde.fields)
    assert pde.coefficient_mask(grid).shape == pde.solution_mask(grid).shape == (c, 8, 8)
    assert pde.coefficient_mask(grid).any() and pde.solution_mask(grid).any()


def test_registry_rejects_unknown_names_and_parameters():
    with pytest.raises(ConfigError, match="unknown PDE 'nope'"):
        pdes.get("nope")
    with pytest.raises(ConfigError, match="unknown parameters"):
        pdes.get("darcy", k=1.0)
    with pytest.raises(ConfigError, match="helmholtz k"):
        pdes.get("helmholtz", k=5.0)  # k² above the first Dirichlet eigenvalue 2π²
    with pytest.raises(ConfigError, match="nu"):
        pdes.get("burgers", nu=0.0)
    assert pdes.params_of(pdes.get("helmholtz", k=2.0)) == {"k": 2.0}


@pytest.mark.parametrize("name", ["darcy", "poisson", "helmholtz"])
def test_residual_orders_are_the_response_to_finer_perturbations(name):
    # residual_orders[c]: a perturbation of channel c at wavenumber j changes the residual by ~ j^order
    # (what default_residual_norm relies on); measured on a smooth state with modes j = 6 and 12
    pde, grid = pdes.get(name), Grid(65)
    y, x = grid.coords()
    base = torch.stack([5 + torch.sin(torch.pi * x) * torch.sin(torch.pi * y),
                        torch.sin(torch.pi * x) * torch.sin(2 * torch.pi * y)])[None]
    for c, order in enumerate(pde.residual_orders):
        change = []
        for j in (6, 12):
            dx = torch.zeros_like(base)
            dx[:, c] = 1e-3 * torch.sin(j * torch.pi * x) * torch.sin(j * torch.pi * y)
            dr = (pde.residual(base + dx, grid) - pde.residual(base, grid))[:, 1:-1, 1:-1]
            change.append(float(dr.norm()))
        assert round(math.log2(change[1] / change[0])) == order, (name, c, change)


@pytest.mark.parametrize("name", pdes.names())
def test_smoothed_residual_applies_the_inverse_laplacian_power_inside(name):
    pde, grid = pdes.get(name), Grid(12)
    assert len(pde.residual_orders) == len(pde.fields)
    r = pde.residual(torch.from_numpy(random_fields(pde, 12, batch=2)), grid)
    torch.testing.assert_close(pde.smoothed_residual(r, grid, 0.0), r)
    if name == "burgers":
        with pytest.raises(ConfigError, match="residual norm"):
            pde.smoothed_residual(r, grid, 1.0)
        return
    from engine.pdes.elliptic import laplacian_matrix

    w = pde.smoothed_residual(r, grid, 1.0)
    torch.testing.assert_close(w[:, grid.boundary_mask()], r[:, grid.boundary_mask()])  # boundary rows kept
    lap = laplacian_matrix(10, grid.h)
    np.testing.assert_allclose(lap @ w[0, 1:-1, 1:-1].numpy().ravel(), r[0, 1:-1, 1:-1].numpy().ravel(), atol=1e-9)
