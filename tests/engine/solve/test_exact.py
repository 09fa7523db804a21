"""piddm-exact: outputs at solver tolerance, and no worse on the observations than piddm from the same ε."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from solve_standins import make_case, make_model

from engine.solve import Observations, SolveOptions, solve
from engine.solve.exact import _exact_phase, exact_solve
from engine.solve.latent import latent_solve


def _relative_residual(pde, x, grid):
    """max |R(x)| over the scale of the equation's terms (forcing / source / u/Δt)."""
    x = torch.as_tensor(x, dtype=torch.float64)
    r = pde.residual(x, grid).abs().amax()
    scale = {"darcy": 1.0, "burgers": x.abs().amax() * (grid.n - 1)}.get(pde.name, x[:, 0].abs().amax())
    return float(r / scale)


@pytest.mark.parametrize("name, task, spec", [
    ("darcy", "inverse", "points:30"),
    ("poisson", "reconstruct", "points:20"),
    ("helmholtz", "inverse", "full"),
    ("burgers", "inverse", "points:8"),
])
def test_exact_outputs_satisfy_the_pde_and_fit_no_worse_than_piddm(name, task, spec):
    model = make_model(name)
    pde, grid, truth = make_case(name, count=1 if name == "burgers" else 2)  # burgers' march is the slow one
    obs = Observations.from_task(pde, truth.numpy(), task, spec, seed=2)
    kw = dict(ensemble=2, steps=8 if name == "burgers" else 12, lr=0.05, seed=0)
    ex = exact_solve(model.student, pde, obs, exact_fraction=1.0, **kw)  # the exact objective alone
    for member in ex.members.reshape((-1,) + ex.members.shape[2:]):
        assert _relative_residual(pde, member[None], grid) <= 1e-10
    assert _relative_residual(pde, ex.mean, grid) <= 1e-10
    pid = latent_solve(model.student, pde, obs, lam=1.0, **kw)
    assert ex.history[-1]["misfit"] <= pid.history[-1]["misfit"]


def test_soft_then_exact_phases_hand_over_and_fit_no_worse_than_piddm():
    """The default: piddm's soft phase, then the exact phase from its latents (one step count, one
    progress bar); the answer is at solver tolerance and fits no worse than piddm with the same steps."""
    model = make_model("darcy")
    pde, grid, truth = make_case("darcy")
    obs = Observations.from_task(pde, truth.numpy(), "inverse", "points:30", seed=2)
    seen = []
    kw = dict(ensemble=2, steps=20, lr=0.05, seed=0)
    ex = exact_solve(model.student, pde, obs, exact_fraction=0.25, on_progress=seen.append, **kw)
    assert [h["step"] for h in ex.history] == list(range(21))  # 15 soft + 5 exact steps, + the final state
    assert "residual_mse" in ex.history[14] and "residual_mse" not in ex.history[15]  # the hand-over
    assert {p.total for p in seen} == {20} and [p.step for p in seen] == sorted(p.step for p in seen)
    assert seen[-1].step == 20 and ex.nfe == 16 + 6
    assert _relative_residual(pde, ex.mean, grid) <= 1e-10
    pid = latent_solve(model.student, pde, obs, lam=1.0, **kw)
    assert ex.history[-1]["misfit"] <= pid.history[-1]["misfit"]
    soft = latent_solve(model.student, pde, obs, lam=1.0, **{**kw, "steps": 15})
    by_hand = _exact_phase(model.student, pde, obs, ensemble=2, steps=5, lr=0.05, seed=0, start=soft.latents,
                           on_progress=lambda p: None, cancel=None)
    assert np.array_equal(ex.members, by_hand.members)  # the exact phase continues the soft one's latents


def test_exact_through_solve_keeps_coefficients_and_exact_residual():
    model = make_model("darcy")
    pde, grid, truth = make_case("darcy")
    obs = Observations.from_task(pde, truth.numpy(), "reconstruct", "points:25", seed=0)
    res = solve(model, pde, obs, SolveOptions(method="piddm-exact", ensemble=2, steps=5))
    coef = obs.mask & pde.coefficient_mask(grid).numpy()[None]
    assert np.array_equal(res.mean[coef], obs.values[coef].astype(np.float32))
    assert np.abs(res.residual).max() <= 1e-10  # residual of the float64 answer, forcing f = 1
    assert (res.mean[:, 0] >= 0.1 * pde.a_low).all()  # the clamped permeability the solver saw


def test_exact_learns_from_observed_coefficient_points():
    """Forward task from coefficient points: those entries must steer the latent (they are overwritten
    in the solver's input, so the misfit is taken on the generator's own proposal)."""
    model = make_model("poisson")
    pde, grid, truth = make_case("poisson")
    obs = Observations.from_task(pde, truth.numpy(), "forward", "points:30", seed=1)
    ex = exact_solve(model.student, pde, obs, ensemble=2, steps=12, lr=0.05, seed=0)
    first, last = ex.history[0]["misfit"], ex.history[-1]["misfit"]
    assert first > 0
    assert last < 0.8 * first


def test_exact_phase_rate_depends_on_the_observation_kind(monkeypatch):
    """Through ``solve``: a whole observed channel gets the lowered exact-phase rate, points the full one,
    and that rate is what the exact phase's Adam runs at (a different rate, a different answer)."""
    from engine.solve import api, exact

    model = make_model("darcy")
    pde, grid, truth = make_case("darcy")
    seen = []
    real = exact.exact_solve
    monkeypatch.setattr(exact, "exact_solve", lambda *a, **kw: seen.append(kw) or real(*a, **kw))
    for spec in ("full", "points:30"):
        obs = Observations.from_task(pde, truth.numpy(), "inverse", spec, seed=0)
        solve(model, pde, obs, SolveOptions(method="piddm-exact", ensemble=2, steps=5, lr=0.04))
    assert seen[0]["exact_lr"] == pytest.approx(0.04 * api.EXACT_LR_SCALE["full"])
    assert seen[1]["exact_lr"] == pytest.approx(0.04)
    assert api.EXACT_LR_SCALE["full"] < 1.0

    obs = Observations.from_task(pde, truth.numpy(), "inverse", "full", seed=0)
    kw = dict(ensemble=2, steps=10, lr=0.05, seed=0)
    runs = [real(model.student, pde, obs, exact_lr=r, **kw) for r in (0.05, 0.005, 0.05)]
    assert np.array_equal(runs[0].members, runs[2].members)  # deterministic, so the difference is the rate's
    assert not np.allclose(runs[0].members, runs[1].members)
