"""piddm-exact: outputs at solver tolerance, and no worse on the observations than piddm from the same ε."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from solve_standins import make_case, make_model

from engine.metrics import residual_map
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
    assert seen[-1].step == 20 and ex.nfe == 17 + 6  # soft: s, 15 steps, final field; exact: 5 steps, final
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
    # the residual of the answer as stored (float32; the float64 one is at solver tolerance, above):
    # float32 rounding of u, amplified by a/h², against a forcing of 1
    np.testing.assert_array_equal(res.residual, residual_map(pde, res.mean))
    assert np.abs(res.residual).max() <= 1e-4
    assert (res.mean[:, 0] >= 0.1 * pde.a_low).all()  # the clamped permeability the solver saw
    # std is zero where the answer is the observation; the fitted solution entries keep their spread
    # (but on the boundary, where every member's u is the Dirichlet value)
    interior = np.zeros_like(coef)
    interior[..., 1:-1, 1:-1] = True
    assert (res.std[coef] == 0).all() and (res.std[obs.mask & ~coef & interior] > 0).all()


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


def test_exact_phase_settings_depend_on_the_observation_kind(monkeypatch):
    """Through ``solve``: a whole observed channel gets the lowered exact-phase rate and continued Adam
    moments, points the full rate and fresh moments; each setting changes the answer."""
    from engine.solve import api, exact

    model = make_model("darcy")
    pde, grid, truth = make_case("darcy")
    seen = []
    real = exact.exact_solve
    monkeypatch.setattr(exact, "exact_solve", lambda *a, **kw: seen.append(kw) or real(*a, **kw))
    for spec in ("full", "points:30"):
        obs = Observations.from_task(pde, truth.numpy(), "inverse", spec, seed=0)
        solve(model, pde, obs, SolveOptions(method="piddm-exact", ensemble=2, steps=5, lr=0.04))
    assert (seen[0]["exact_lr"], seen[0]["continue_moments"]) == (pytest.approx(0.004), True)
    assert (seen[1]["exact_lr"], seen[1]["continue_moments"]) == (pytest.approx(0.04), False)
    assert api.EXACT_PHASE["full"]["lr_scale"] == 0.1

    obs = Observations.from_task(pde, truth.numpy(), "inverse", "full", seed=0)
    kw = dict(ensemble=2, steps=10, lr=0.05, seed=0)
    runs = [real(model.student, pde, obs, exact_lr=r, continue_moments=c, **kw)
            for r, c in ((0.05, False), (0.005, False), (0.05, True), (0.05, False))]
    assert np.array_equal(runs[0].members, runs[3].members)  # deterministic, so differences are the settings'
    assert not np.allclose(runs[0].members, runs[1].members)
    assert not np.allclose(runs[0].members, runs[2].members)


def test_continued_moments_do_not_kick_the_latents():
    """A fresh Adam's first step moves every latent entry by about the rate; continuing the soft phase's
    moments (their gradient scale already known) moves them by less — the reason for continuing them."""
    model = make_model("darcy")
    pde, grid, truth = make_case("darcy")
    obs = Observations.from_task(pde, truth.numpy(), "inverse", "full", seed=0)
    soft = latent_solve(model.student, pde, obs, ensemble=2, steps=20, lam=1.0, lr=0.05, seed=0)
    assert soft.adam_moments["step"] == 20.0

    def first_move(moments):
        out = _exact_phase(model.student, pde, obs, ensemble=2, steps=1, lr=0.05, seed=0, start=soft.latents,
                           moments=moments, on_progress=lambda p: None, cancel=None)
        return (out.latents - soft.latents).abs().mean().item()

    fresh, continued = first_move(None), first_move(soft.adam_moments)
    assert fresh == pytest.approx(0.05, rel=0.1)  # |Δε| = lr·|m̂|/(√v̂ + eps) = lr on the first step
    assert continued < 0.8 * fresh  # 0.55 × here
