"""Heun sampler (EDM Algorithm 1): step schedule, NFE, exactness on Gaussian data, seeds."""

from __future__ import annotations

import pytest
import torch

from engine.diffusion.model import load_teacher
from engine.diffusion.sampler import heun_sample, nfe, noise_from_seeds, sigma_steps


def test_sigma_steps():
    t = sigma_steps(18)
    assert t.shape == (19,) and t[-1] == 0
    assert torch.isclose(t[0], torch.tensor(80.0, dtype=torch.float64))
    assert torch.isclose(t[-2], torch.tensor(0.002, dtype=torch.float64))
    assert (t[1:] < t[:-1]).all()
    # EDM Eq. 5 at i = 1 for N = 18, ρ = 7
    i1 = (80 ** (1 / 7) + (0.002 ** (1 / 7) - 80 ** (1 / 7)) / 17) ** 7
    assert abs(float(t[1]) - i1) < 1e-9


class _GaussianDenoiser(torch.nn.Module):
    """Ideal denoiser of data ~ N(0, s²): D(x; σ) = s²/(s² + σ²)·x; counts its calls."""

    def __init__(self, s: float) -> None:
        super().__init__()
        self.s2, self.calls = s * s, 0

    def forward(self, x, sigma):
        self.calls += 1
        return self.s2 / (self.s2 + sigma.view(-1, 1, 1, 1) ** 2) * x


@pytest.mark.parametrize("steps", [1, 2, 5, 18])
def test_nfe_is_2n_minus_1(steps):
    D = _GaussianDenoiser(0.5)
    heun_sample(D, torch.randn(2, 1, 4, 4), num_steps=steps)
    assert D.calls == nfe(steps) == 2 * steps - 1


def test_heun_converges_at_second_order_on_gaussian_data():
    """For N(0, s²) data the PF-ODE solution is x(0) = x(σ_max)·s/√(s² + σ_max²); Heun's
    error must fall ~4x when the number of steps doubles (a first-order bug gives ~2x)."""
    s, noise = 0.5, torch.randn(4, 1, 8, 8, dtype=torch.float64)
    exact = noise * 80.0 * s / (s * s + 80.0**2) ** 0.5
    errs = [float((heun_sample(_GaussianDenoiser(s), noise, num_steps=n).double() - exact).abs().max()
                  / exact.abs().max()) for n in (40, 80)]
    assert errs[1] < 3e-3
    assert 3.2 < errs[0] / errs[1] < 4.8


def test_noise_rows_depend_only_on_their_seed():
    a = noise_from_seeds([3, 4], (2, 8, 8))
    b = noise_from_seeds([4], (2, 8, 8))
    assert torch.equal(a[1], b[0]) and not torch.equal(a[0], a[1])


def test_teacher_samples_per_seed_and_deterministic(trained_run):
    teacher = load_teacher(trained_run)
    calls = []
    x = teacher.sample([3, 4], steps=3, callback=lambda i, n, d: calls.append((i, n, tuple(d.shape))))
    assert x.shape == (2, 2, 16, 16) and x.dtype == torch.float32 and torch.isfinite(x).all()
    assert calls == [(1, 3, (2, 2, 16, 16)), (2, 3, (2, 2, 16, 16)), (3, 3, (2, 2, 16, 16))]
    assert torch.equal(teacher.sample([3, 4], steps=3), x)  # same seeds, same batch: bitwise
    # Across batch sizes the noise is bitwise equal; CPU conv/GEMM kernels may round differently
    # for another batch size, so the samples agree to float32 round-off.
    y = teacher.sample([4], steps=3)
    torch.testing.assert_close(x[1], y[0], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(x[0], y[0])
