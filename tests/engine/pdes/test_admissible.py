"""``PDE.admissible_inputs``: darcy's straight-through floor on a; the identity for the others."""

from __future__ import annotations

import pytest
import torch

from engine import pdes
from engine.grid import Grid
from engine.pdes.darcy import DARCY_FLOOR

GRID = Grid(8)


@pytest.mark.parametrize("name", pdes.names())
def test_prior_samples_are_admissible_as_they_are(name):
    pde = pdes.get(name)
    c = pde.sample_inputs([1, 2], GRID)
    assert torch.equal(pde.admissible_inputs(c), c)


@pytest.mark.parametrize("a_low", [3.0, 5.0])
def test_darcy_clamps_to_its_floor_with_the_identity_gradient(a_low):
    pde = pdes.get("darcy", a_low=a_low)
    floor = DARCY_FLOOR * a_low
    a = torch.tensor([[-1.0, 0.0, floor, 2 * floor, 9.0]], dtype=torch.float64, requires_grad=True)
    out = pde.admissible_inputs(a)
    assert torch.allclose(out.detach(), a.detach().clamp_min(floor), rtol=0, atol=1e-14)  # a + (clamp − a)
    w = torch.arange(1.0, 6.0, dtype=torch.float64)[None]
    (g,) = torch.autograd.grad((w * out).sum(), a)
    assert torch.equal(g, w)  # straight-through: entries below the floor still get their gradient
