"""Burgers' discrete solution converges at second order: against the exact Cole–Hopf solution, and
against finer-grid solves of the default ν = 0.01 problem (no exact solution needed)."""

from __future__ import annotations

import math

import numpy as np
import torch
from pde_reference import cole_hopf

from engine import pdes
from engine.grid import Grid


def fourier_resample(v: np.ndarray, m: int) -> np.ndarray:
    """Periodic trigonometric interpolation of v (values at i/n) onto the points i/m."""
    n = v.shape[-1]
    V = np.fft.rfft(v) / n
    if n % 2 == 0:
        V[-1] /= 2  # the Nyquist mode is split between ±n/2
    x = np.arange(m) / m
    k = np.arange(len(V))
    return V[0].real + 2 * (V[1:, None] * np.exp(2j * math.pi * k[1:, None] * x[None])).real.sum(0)


def test_fourier_resample_is_exact_for_trig_polynomials():
    f = lambda x: 0.3 + np.sin(2 * math.pi * x) - 0.5 * np.cos(6 * math.pi * x)  # noqa: E731
    np.testing.assert_allclose(fourier_resample(f(np.arange(65) / 65), 33), f(np.arange(33) / 33), atol=1e-13)


def test_solution_converges_to_cole_hopf():
    pde = pdes.get("burgers", nu=0.1)
    errs = []
    for n in (17, 33, 65):
        exact = torch.from_numpy(cole_hopf(pde.nu, n, c0=2.0))
        x = pde.solve(exact[:, 0, 0], Grid(n))
        errs.append((x - exact).abs().max().item())
    ratios = [errs[0] / errs[1], errs[1] / errs[2]]
    assert all(3.5 < q < 4.6 for q in ratios), f"errors {errs}, ratios {ratios}"  # measured 4.01, 4.34


def test_solution_converges_against_finer_solves():
    """Default ν = 0.01, smooth initial condition that steepens: ‖u_33 − u_65‖ / ‖u_65 − u_129‖ ≈ 4.

    t-rows are nested (t = j/(n-1)); x-nodes are not (x = i/n), so the finer solution is
    resampled onto the coarser nodes by trigonometric interpolation (spectrally accurate)."""
    pde = pdes.get("burgers")
    sols = {}
    for n in (33, 65, 129):
        x = torch.arange(n, dtype=torch.float64) / n
        u0 = 0.5 * torch.sin(2 * math.pi * x) + 0.2 * torch.cos(4 * math.pi * x) + 0.1
        sols[n] = pde.solve(u0[None], Grid(n))[0, 0].numpy()

    def diff(n, m):
        step = (m - 1) // (n - 1)
        rows = [sols[n][j] - fourier_resample(sols[m][j * step], n) for j in range(n)]
        return float(np.sqrt(np.mean(np.square(rows))))

    d1, d2 = diff(33, 65), diff(65, 129)
    assert 3.5 < d1 / d2 < 4.5, f"{d1:.3e} / {d2:.3e} = {d1 / d2:.2f}"  # measured 3.90
    assert d2 < 2e-3  # within truncation error of the finer solve


def test_newton_iteration_meets_its_tolerance_on_the_data_prior():
    pde, grid = pdes.get("burgers"), Grid(33)
    x = pde.solve(pde.sample_inputs([0, 1, 2, 3], grid), grid)
    r = pde.residual(x, grid)
    scale = 1.0 + x[:, 0].abs().amax(dim=-1) * (grid.n - 1)  # 1 + max|u_{j}|/Δt per row
    assert (r[:, 1:].abs().amax(-1) <= 1e-12 * scale[:, :-1]).all()
