"""GRF sampler: per-sample seeds, and the spectrum the SPEC prescribes (recovered exactly).

Note: engine.grf scales the DCT coefficients by N (the FNO/DiffusionPDE generator's
``L = N*coef.*xi``), which keeps the field's amplitude independent of the resolution; the SPEC
formula omits that factor. The tests pin the N-scaled recipe.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft
import torch

from engine import grf


def spec_coefficients(n, alpha=2.0, tau=3.0):
    k = np.arange(n)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    c = n * tau ** (alpha - 1) * (math.pi**2 * k2 + tau**2) ** (-alpha / 2)
    c[0, 0] = 0.0
    return c


def test_per_sample_seeds_independent_of_batch():
    a = grf.sample_2d([3, 4], 16)
    b = grf.sample_2d([4], 16)
    assert torch.equal(a[1], b[0])
    assert not torch.equal(a[0], a[1])
    p = grf.sample_periodic_1d([3, 4, 9], 32)
    assert torch.equal(p[2], grf.sample_periodic_1d([9], 32)[0])
    assert a.shape == (2, 16, 16) and a.dtype == torch.float64


def test_dct_matrix_is_orthonormal_dct2():
    c = grf.dct_matrix(12)
    torch.testing.assert_close(c @ c.T, torch.eye(12, dtype=torch.float64))
    v = np.random.default_rng(0).standard_normal(12)
    np.testing.assert_allclose((c @ torch.from_numpy(v)).numpy(), scipy.fft.dct(v, norm="ortho"), atol=1e-12)


def test_2d_spectrum_is_the_prescribed_one():
    """DCT-II (scipy, orthonormal) of a sample = coefficient · ξ, ξ the N(0,1) draws of its seed."""
    n, seed = 24, 11
    u = grf.sample_2d([seed], n)[0].numpy()
    c = scipy.fft.dctn(u, norm="ortho")
    assert abs(c[0, 0]) < 1e-12 and abs(u.mean()) < 1e-12  # zero mean mode
    coef = spec_coefficients(n)
    xi = torch.randn((n, n), generator=torch.Generator().manual_seed(seed), dtype=torch.float64).numpy()
    np.testing.assert_allclose(c, coef * xi, rtol=0, atol=1e-12 * np.abs(c).max())


def test_2d_amplitude_statistics():
    # averaged over samples and nodes, E[u²] = Σ_k coef_k² / N² (Parseval); the N factor makes
    # it nearly resolution independent
    for n in (16, 32):
        u = grf.sample_2d(range(400), n).numpy()
        want = (spec_coefficients(n) ** 2).sum() / n**2
        assert abs((u**2).mean() / want - 1) < 0.1
    assert abs((spec_coefficients(16) ** 2).sum() / 16**2 / ((spec_coefficients(32) ** 2).sum() / 32**2) - 1) < 0.05


def test_periodic_1d_spectrum():
    n, seed = 32, 5
    u = grf.sample_periodic_1d([seed], n)[0].numpy()
    uhat = np.fft.rfft(u) / n  # u = Σ_k 2 Re(uhat_k e^{2πikx}) for 0 < k < n/2
    assert abs(uhat[0]) < 1e-12  # zero mean
    k = np.arange(1, n // 2 + 1)
    amp = 25 * (4 * math.pi**2 * k**2 + 25) ** -1.0  # σ (4π²k² + τ²)^(-α/2), α=2, τ=5, σ=25
    xi = torch.randn((2, n // 2), generator=torch.Generator().manual_seed(seed), dtype=torch.float64).numpy()
    # √2 amp (ξ cos + η sin)  =>  uhat_k = amp (ξ - iη)/√2 for k < n/2
    want = amp[:-1] * (xi[0, :-1] - 1j * xi[1, :-1]) / math.sqrt(2)
    np.testing.assert_allclose(uhat[1:-1], want, atol=1e-12)
