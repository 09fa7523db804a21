"""Metrics on fields with hand-computable answers."""

from __future__ import annotations

import numpy as np
import pytest

from engine import metrics, pdes


def test_residual_stats_interior_and_boundary():
    # poisson, u = 0 inside and 2 on the boundary, f = 3: interior r = -Δu - f; only the ring next
    # to the boundary sees the boundary values. Independent: loop over nodes.
    n = 6
    f = np.full((n, n), 3.0)
    u = np.zeros((n, n))
    u[0], u[-1], u[:, 0], u[:, -1] = 2.0, 2.0, 2.0, 2.0
    x = np.stack([f, u])[None].repeat(2, axis=0)
    x[1, 0] *= 2  # second sample: f = 6
    h2 = (1 / (n - 1)) ** 2
    sq = []
    for b in range(2):
        for i in range(1, n - 1):
            for j in range(1, n - 1):
                nb = sum(u[i + di, j + dj] for di, dj in ((0, 1), (0, -1), (1, 0), (-1, 0)))
                sq.append((-(nb - 4 * u[i, j]) / h2 - x[b, 0, i, j]) ** 2)
    stats = metrics.residual_stats(pdes.get("poisson"), x.astype(np.float32))
    assert stats["residual_mse"] == pytest.approx(np.mean(sq), rel=1e-12)
    assert stats["bc_mse"] == pytest.approx(4.0)


def test_burgers_has_no_boundary_term():
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8))
    stats = metrics.residual_stats(pdes.get("burgers"), x)
    assert stats["bc_mse"] == 0.0 and stats["residual_mse"] > 0


def test_residual_map_is_float64_and_batched():
    x = np.random.default_rng(0).standard_normal((5, 2, 8, 8)).astype(np.float32)
    r = metrics.residual_map(pdes.get("poisson"), x, batch=2)
    assert r.dtype == np.float64 and r.shape == (5, 8, 8)
    np.testing.assert_array_equal(r, metrics.residual_map(pdes.get("poisson"), x))


def test_moment_errors():
    a = np.zeros((4, 2, 3, 3))
    a[:2, 0] = 1.0  # channel 0: mean 0.5, std 0.5; channel 1: zeros
    b = np.zeros((4, 2, 3, 3))
    out = metrics.moment_errors(a, b, ("a", "u"))
    assert out == {"mmse_a": pytest.approx(0.25), "smse_a": pytest.approx(0.25), "mmse_u": 0.0, "smse_u": 0.0}


def test_rel_l2_and_error_rate():
    true = np.ones((2, 4))
    pred = true.copy()
    pred[0] = 2.0  # sample 0: ‖1‖/‖1‖ = 1; sample 1: 0
    assert metrics.rel_l2(pred, true) == pytest.approx(0.5)
    a_true = np.array([[3.0, 12.0, 12.0, 3.0]])
    a_pred = np.array([[7.6, 12.0, 7.4, 3.0]])  # two of four pixels fall on the wrong side of 7.5
    assert metrics.phase_error_rate(a_pred, a_true, 7.5) == 0.5


def test_rel_l2_of_an_all_zero_truth_is_an_error_naming_the_sample():
    # the relative error of a zero field does not exist: it was ‖pred‖/1e-300 (~1e300), averaged in
    true = np.ones((3, 4, 4))
    true[1] = 0.0
    pred = true + 0.5
    with pytest.raises(metrics.UndefinedMetricError, match="rel_l2 of u is undefined: the true u of sample 1 is"):
        metrics.rel_l2(pred, true, "u")
    true[2] = 0.0
    with pytest.raises(ValueError, match="sample 1 \\(and 1 more\\) is all zero"):  # also a ValueError
        metrics.rel_l2(pred, true)
    tiny = np.full((1, 4), 1e-30)  # small but nonzero: defined
    assert metrics.rel_l2(2 * tiny, tiny) == pytest.approx(1.0)
    pde = pdes.get("poisson")
    truth = np.ones((2, 2, 4, 4))
    truth[1, 1] = 0.0  # case 1's u is zero (f = 0 solves to u = 0)
    mask = np.zeros_like(truth, bool)
    mask[:, 0] = True
    with pytest.raises(metrics.UndefinedMetricError, match="rel_l2 of u .* sample 1"):
        metrics.truth_errors(pde, truth + 1, truth, mask)
    assert metrics.truth_errors(pde, truth + 1, truth, ~mask) == {"rel_l2_f": pytest.approx(1.0)}  # f is nonzero


def test_truth_errors_on_unknown_channels():
    pde = pdes.get("darcy")
    truth = np.full((2, 2, 4, 4), 3.0)
    pred = truth.copy()
    pred[:, 1] *= 1.5
    mask = np.zeros((2, 2, 4, 4), bool)
    mask[:, 0] = True  # forward task: a observed, u unknown
    assert metrics.truth_errors(pde, pred, truth, mask) == {"rel_l2_u": pytest.approx(0.5)}
    out = metrics.truth_errors(pde, pred, truth, None)  # no mask: every channel is unknown
    assert out == {"rel_l2_a": 0.0, "error_rate": 0.0, "rel_l2_u": pytest.approx(0.5)}


def test_darcys_error_rate_thresholds_between_the_pdes_own_phases():
    """With phases 1 and 2 (``--param a_low=1 a_high=2``) the threshold is 1.5, not the default's 7.5."""
    pde = pdes.get("darcy", a_low=1.0, a_high=2.0)
    truth = np.stack([np.full((1, 4, 4), 2.0), np.ones((1, 4, 4))], axis=1)  # (u nonzero: rel_l2_u exists)
    pred = truth.copy()
    pred[0, 0, 0, :2] = 1.4  # two of sixteen pixels fall below 1.5
    assert metrics.truth_errors(pde, pred, truth, None)["error_rate"] == pytest.approx(2 / 16)


def test_error_rate_is_scored_on_each_pdes_two_phase_channel_only():
    for name in pdes.names():
        pde = pdes.get(name)
        assert pde.two_phase_channel is None or pde.two_phase_channel in pde.fields
        truth = np.ones((1, len(pde.fields), 8, 8))
        errors = metrics.truth_errors(pde, truth * 2, truth, None)
        assert ("error_rate" in errors) == (pde.two_phase_channel is not None), name
    assert pdes.get("darcy").two_phase_channel == "a"
