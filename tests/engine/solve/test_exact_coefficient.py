"""``exact.coefficient_of``: observed coefficient entries put in, then the PDE's own admissibility hook."""

from __future__ import annotations

import torch

from engine import pdes
from engine.grid import Grid
from engine.pdes.darcy import DARCY_FLOOR
from engine.pdes.poisson import Poisson
from engine.solve.common import ObsTensors
from engine.solve.exact import coefficient_of

GRID = Grid(8)


def _case(pde, seed=0):
    gen = torch.Generator().manual_seed(seed)
    shape = (2, len(pde.fields), GRID.n, GRID.n)
    x = torch.randn(shape, generator=gen, dtype=torch.float64)
    mask = torch.rand(shape, generator=gen) < 0.3
    ot = ObsTensors(torch.where(mask, 7.0, 0.0).double(), mask, mask.flatten(1).sum(1).clamp_min(1))
    return x, ot, pde.coefficient_mask(GRID)


class _Doubled(Poisson):
    """A stand-in whose admissible set is reached by doubling: shows which hook coefficient_of calls."""

    def admissible_inputs(self, c):
        return 2 * c


def test_coefficient_of_uses_the_pdes_admissibility_hook():
    pde = _Doubled()
    x, ot, coef_mask = _case(pde)
    plain = torch.where(ot.mask & coef_mask, ot.values, x)[:, 0]  # observed f entries put in
    assert torch.equal(coefficient_of(pde, x, ot, coef_mask), 2 * plain)


def test_coefficient_of_floors_darcy_and_passes_the_others_through():
    darcy = pdes.get("darcy", a_low=4.0)
    x, ot, coef_mask = _case(darcy)
    c = coefficient_of(darcy, x, ot, coef_mask)
    plain = torch.where(ot.mask & coef_mask, ot.values, x)[:, 0]
    assert (plain < DARCY_FLOOR * 4.0).any()
    # c + (clamp(c) − c): the clamp up to rounding (straight-through, see Darcy.admissible_inputs)
    assert torch.allclose(c, plain.clamp_min(DARCY_FLOOR * 4.0), rtol=0, atol=1e-14)
    poisson = pdes.get("poisson")
    x, ot, coef_mask = _case(poisson)
    assert torch.equal(coefficient_of(poisson, x, ot, coef_mask), torch.where(ot.mask & coef_mask, ot.values, x)[:, 0])
