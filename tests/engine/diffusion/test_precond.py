"""EDM preconditioning and loss weight (Karras et al. 2022, Table 1)."""

from __future__ import annotations

import math

import torch

from engine.diffusion.loss import edm_loss, loss_weight, sigma_from_normal
from engine.diffusion.precond import Denoiser, edm_coefficients
from engine.diffusion.unet import UNet, Upsample2x, count_parameters


def test_coefficients_match_table_1():
    sigma, sd = torch.tensor([0.002, 0.5, 80.0], dtype=torch.float64), 0.5
    c_skip, c_out, c_in, c_noise = edm_coefficients(sigma, sd)
    for i, s in enumerate(sigma.tolist()):
        assert math.isclose(c_skip[i], sd**2 / (s**2 + sd**2), rel_tol=1e-12)
        assert math.isclose(c_out[i], s * sd / math.sqrt(s**2 + sd**2), rel_tol=1e-12)
        assert math.isclose(c_in[i], 1 / math.sqrt(s**2 + sd**2), rel_tol=1e-12)
        assert math.isclose(c_noise[i], math.log(s) / 4, rel_tol=1e-12)
    # unit-variance target: c_skip² σ_d² + c_out² ... the effective weight λ·c_out² = 1 (EDM Eq. 8)
    assert torch.allclose(loss_weight(sigma, sd) * c_out**2, torch.ones(3, dtype=torch.float64))


def test_untrained_denoiser_is_skip_path():
    """The zero-initialised output layer makes D(x; σ) = c_skip(σ)·x before training."""
    torch.manual_seed(0)
    D = Denoiser(UNet(2, "tiny"), 0.5)
    x, sigma = torch.randn(3, 2, 16, 16), torch.tensor([0.01, 1.0, 50.0])
    c_skip = 0.25 / (sigma**2 + 0.25)
    assert torch.allclose(D(x, sigma), c_skip.view(-1, 1, 1, 1) * x, atol=1e-6)
    assert torch.allclose(D(x, 1.0), D(x, torch.ones(3)))  # scalar σ broadcasts


def test_model_sizes():
    assert 50_000 < count_parameters(UNet(2, "tiny")) < 150_000
    assert 1_500_000 < count_parameters(UNet(2, "small")) < 3_500_000
    out = UNet(1, "small")(torch.randn(2, 1, 32, 32), torch.zeros(2))
    assert out.shape == (2, 1, 32, 32)


def test_upsample_matches_nearest_interpolation_and_its_gradient():
    x = torch.randn(2, 3, 4, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 3, 8, 12, dtype=torch.float64)
    ours = Upsample2x()(x)
    ref = torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")
    assert torch.equal(ours, ref)
    (g_ours,) = torch.autograd.grad((ours * w).sum(), x)
    (g_ref,) = torch.autograd.grad((ref * w).sum(), x)
    assert torch.allclose(g_ours, g_ref)
    assert torch.allclose(g_ours[0, 0, 0, 0], w[0, 0, :2, :2].sum())  # each value fed a 2×2 block


def test_loss_is_weighted_mse():
    class Zero(torch.nn.Module):
        def forward(self, x, sigma):
            return torch.zeros_like(x)

    x0 = torch.full((2, 1, 4, 4), 0.5)
    xi = torch.tensor([0.0, 1.0])
    loss = edm_loss(Zero(), x0, torch.randn(2, 1, 4, 4), xi, P_mean=-1.2, P_std=1.2, sigma_data=0.5)
    sigma = sigma_from_normal(xi, -1.2, 1.2)
    assert torch.allclose(sigma, torch.exp(torch.tensor([-1.2, 0.0])))
    assert torch.allclose(loss, loss_weight(sigma, 0.5) * 0.25)
