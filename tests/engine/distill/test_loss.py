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



def test_student_ema_forgets_the_start_of_a_short_run():
    from engine.distill.train import ema_decay

    plain = 0.5 ** (1 / 200)
    assert ema_decay(0, 200) == pytest.approx(0.1)
    assert all(ema_decay(s, 200) <= ema_decay(s + 1, 200) <= plain for s in range(0, 5000, 7))
    assert ema_decay(10_000, 200) == plain
    # weight left on the initial weights after 800 steps: the plain EMA keeps 6 %, the capped one ~1e-21
    left = float(torch.tensor([ema_decay(s, 200) for s in range(800)], dtype=torch.float64).prod())
    assert left < 1e-6 < plain**800
