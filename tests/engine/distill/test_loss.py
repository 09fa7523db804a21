"""The PIDDM objective: its value, and which entries its physics term may move."""

from __future__ import annotations

import pytest
import torch

from engine import pdes
from engine.data.dataset import Normalizer
from engine.distill.config import DistillConfig
from engine.distill.loss import piddm_loss
from engine.errors import ConfigError
from engine.grid import Grid


@pytest.mark.parametrize("name", ["darcy", "poisson", "burgers"])
def test_physics_on_solution_leaves_the_coefficient_to_the_distillation_term(name):
    """With x0 = pred the distillation term has zero gradient, so every gradient is the physics
    term's: "all" moves coefficient entries, "solution" moves only solution entries; the loss value
    is the same in both modes."""
    pde, grid = pdes.get(name), Grid(16)
    x = pde.solve(pde.sample_inputs([1, 2], grid), grid)
    x = x + 1e-3 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=x.dtype)
    norm = Normalizer(mean=x.mean(dim=(0, 2, 3)).float(), std=x.std(dim=(0, 2, 3)).float())
    target = norm.encode(x.float())
    coef = pde.coefficient_mask(grid).expand_as(x)
    grads, values = {}, {}
    for mode in ("all", "solution"):
        pred = target.clone().requires_grad_(True)
        loss, _ = piddm_loss(pred, target, 1.0, pde, grid, norm, 1.0, physics_on=mode)
        loss.backward()
        grads[mode], values[mode] = pred.grad, float(loss.detach())
    assert values["all"] == pytest.approx(values["solution"], rel=1e-6)
    assert grads["all"][coef].abs().max() > 0
    assert grads["solution"][coef].abs().max() == 0
    assert torch.equal(grads["solution"][~coef], grads["all"][~coef])


def test_physics_on_is_validated():
    with pytest.raises(ConfigError, match="physics_on"):
        DistillConfig(physics_on="coefficient")


def test_fresh_outputs_enter_the_residual_term_only():
    pde, grid = pdes.get("poisson"), Grid(16)
    x = pde.solve(pde.sample_inputs([1, 2, 3], grid), grid).float()
    norm = Normalizer(mean=x.mean(dim=(0, 2, 3)), std=x.std(dim=(0, 2, 3)))
    z = norm.encode(x)
    pred = z[:2] + 0.01
    fresh = (z[2:] + 0.3).requires_grad_(True)
    loss, parts = piddm_loss(pred, z[:2], 0.5, pde, grid, norm, 2.0, fresh=fresh)
    r2 = pde.residual(norm.decode(torch.cat([pred, fresh.detach()])), grid).pow(2).mean()
    assert float(parts["distill"]) == pytest.approx(1e-4, rel=1e-3)  # pairs only
    assert float(parts["residual"]) == pytest.approx(float(r2), rel=1e-5)  # both sets
    assert float(loss.detach()) == pytest.approx(1e-4 + 0.5 * float(r2) / 2.0, rel=1e-5)
    loss.backward()
    assert fresh.grad.abs().max() > 0
