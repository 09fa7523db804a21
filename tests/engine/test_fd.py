"""engine.fd stencils: exact on polynomials they must reproduce, second order on smooth fields."""

from __future__ import annotations

import math

import numpy as np
import torch

from engine import fd


def nodes(n):
    t = torch.linspace(0, 1, n, dtype=torch.float64)
    return torch.meshgrid(t, t, indexing="ij")  # (y, x)


def test_laplacian_exact_on_quadratics_and_axes_right():
    y, x = nodes(9)
    h = 1 / 8
    u = 3 * x**2 - 2 * y**2 + x * y + 5 * x  # Δu = 6 - 4 = 2, the 5-point stencil is exact
    torch.testing.assert_close(fd.laplacian(u, h), torch.full((7, 7), 2.0, dtype=torch.float64))
    assert fd.laplacian(u, h).shape == (7, 7)


def test_div_a_grad_exact_for_linear_a_and_quadratic_u():
    # a = 1 + 2x + y, u = x² + 3y²: ∇·(a∇u) = a_x u_x + a_y u_y + a Δu = 2·2x + 1·6y + (1+2x+y)·8.
    # With arithmetic face means, a linear a and a quadratic u the stencil is exact.
    y, x = nodes(11)
    a, u = 1 + 2 * x + y, x**2 + 3 * y**2
    want = (4 * x + 6 * y + 8 * a)[1:-1, 1:-1]
    torch.testing.assert_close(fd.div_a_grad(a, u, 0.1), want, rtol=1e-12, atol=1e-10)


def test_div_a_grad_with_constant_a_is_a_times_laplacian():
    u = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(fd.div_a_grad(torch.full_like(u, 2.5), u, 0.3), 2.5 * fd.laplacian(u, 0.3))


def test_laplacian_second_order():
    errs = []
    for n in (17, 33, 65):
        y, x = nodes(n)
        u = torch.sin(math.pi * x) * torch.cos(2 * math.pi * y)
        exact = (-5 * math.pi**2 * u)[1:-1, 1:-1]
        errs.append((fd.laplacian(u, 1 / (n - 1)) - exact).abs().max().item())
    assert all(3.7 < e0 / e1 < 4.3 for e0, e1 in zip(errs, errs[1:])), errs


def test_embed_interior_keeps_boundary_and_batch():
    b = torch.arange(2 * 5 * 5, dtype=torch.float64).reshape(2, 5, 5)
    r = torch.zeros(2, 3, 3)
    out = fd.embed_interior(r.double(), b)
    assert (out[:, 1:-1, 1:-1] == 0).all()
    m = torch.ones(5, 5, dtype=torch.bool)
    m[1:-1, 1:-1] = False
    assert (out[:, m] == b[:, m]).all()
    assert b[0, 1, 1] == 6  # the input is not modified


def test_numpy_slicing_agrees_for_random_fields():
    rng = np.random.default_rng(0)
    a, u = rng.uniform(1, 2, (7, 7)), rng.standard_normal((7, 7))
    h = 0.2
    want = np.zeros((5, 5))
    for i in range(1, 6):
        for j in range(1, 6):
            fe = (a[i, j] + a[i, j + 1]) / 2 * (u[i, j + 1] - u[i, j])
            fw = (a[i, j] + a[i, j - 1]) / 2 * (u[i, j] - u[i, j - 1])
            fn = (a[i, j] + a[i + 1, j]) / 2 * (u[i + 1, j] - u[i, j])
            fs = (a[i, j] + a[i - 1, j]) / 2 * (u[i, j] - u[i - 1, j])
            want[i - 1, j - 1] = (fe - fw + fn - fs) / h**2
    got = fd.div_a_grad(torch.from_numpy(a), torch.from_numpy(u), h).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_sine_transform_is_the_dst_and_its_own_inverse():
    m = 7
    v = torch.randn(3, m, dtype=torch.float64)
    j = np.arange(1, m + 1)
    dst = np.sin(np.pi * np.outer(j, j) / (m + 1))  # S_k = Σ_j v_j sin(πjk/(m+1)), written out
    np.testing.assert_allclose(fd.sine_transform(v, -1).numpy(), v.numpy() @ dst.T, atol=1e-12)
    torch.testing.assert_close(fd.sine_transform(fd.sine_transform(v, -1), -1) * 2 / (m + 1), v)
    # along another axis
    w = torch.randn(m, 4, dtype=torch.float64)
    np.testing.assert_allclose(fd.sine_transform(w, 0).numpy(), dst @ w.numpy(), atol=1e-12)


def test_dirichlet_laplacian_power_inverts_the_sparse_laplacian():
    from engine.pdes.elliptic import laplacian_matrix  # the reference solvers' matrix

    m, h = 13, 1 / 14
    r = torch.randn(2, m, m, dtype=torch.float64)
    w = fd.dirichlet_laplacian_power(r, h, 1.0)
    for b in range(2):  # −Δ_h w = r
        np.testing.assert_allclose(laplacian_matrix(m, h) @ w[b].numpy().ravel(), r[b].numpy().ravel(), atol=1e-10)
    half = fd.dirichlet_laplacian_power(r, h, 0.5)
    torch.testing.assert_close(fd.dirichlet_laplacian_power(half, h, 0.5), w)  # powers compose
    torch.testing.assert_close(fd.dirichlet_laplacian_power(r, h, 0.0), r)
    # the interior of the 5-point Laplacian of a zero-padded w gives r back (fd.laplacian's own stencil)
    padded = torch.nn.functional.pad(w, (1, 1, 1, 1))
    torch.testing.assert_close(-fd.laplacian(padded, h), r)
