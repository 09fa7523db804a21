"""Independent NumPy residuals, written from the SPEC formulas with explicit loops (no engine.fd).

Each takes the PDE instance (for its parameters), fields x (B, C, n, n) float64 and returns the
full-grid residual (B, n, n). Every registered PDE must have one here.
"""

from __future__ import annotations

import math

import numpy as np


def darcy(pde, x: np.ndarray) -> np.ndarray:
    # r_ij = -[a_{i+½,j}(u_{i+1,j}-u_ij) - a_{i-½,j}(u_ij-u_{i-1,j}) + (same in y)]/h² - f; r = u on ∂Ω
    a, u = x[:, 0], x[:, 1]
    B, n, _ = u.shape
    h = 1.0 / (n - 1)
    r = u.copy()
    for b in range(B):
        for i in range(1, n - 1):  # row = y
            for j in range(1, n - 1):  # col = x
                ae = (a[b, i, j] + a[b, i, j + 1]) / 2
                aw = (a[b, i, j] + a[b, i, j - 1]) / 2
                an = (a[b, i, j] + a[b, i + 1, j]) / 2
                as_ = (a[b, i, j] + a[b, i - 1, j]) / 2
                flux = (ae * (u[b, i, j + 1] - u[b, i, j]) - aw * (u[b, i, j] - u[b, i, j - 1])
                        + an * (u[b, i + 1, j] - u[b, i, j]) - as_ * (u[b, i, j] - u[b, i - 1, j]))
                r[b, i, j] = -flux / h**2 - pde.forcing
    return r


def _source(x: np.ndarray, k2: float) -> np.ndarray:
    # r_ij = -(u_E + u_W + u_N + u_S - 4 u_C)/h² - k² u_C - f_C; r = u on ∂Ω
    f, u = x[:, 0], x[:, 1]
    B, n, _ = u.shape
    h = 1.0 / (n - 1)
    r = u.copy()
    for b in range(B):
        for i in range(1, n - 1):
            for j in range(1, n - 1):
                lap = (u[b, i, j + 1] + u[b, i, j - 1] + u[b, i + 1, j] + u[b, i - 1, j] - 4 * u[b, i, j]) / h**2
                r[b, i, j] = -lap - k2 * u[b, i, j] - f[b, i, j]
    return r


def poisson(pde, x: np.ndarray) -> np.ndarray:
    return _source(x, 0.0)


def helmholtz(pde, x: np.ndarray) -> np.ndarray:
    return _source(x, pde.k**2)


def burgers(pde, x: np.ndarray) -> np.ndarray:
    # u[j, i] = u(t_j = j/(n-1), x_i = i/n), periodic in i. Crank–Nicolson step from row j-1 to j:
    # r_j = (u_j - u_{j-1})/Δt + ½[F(u_j) + F(u_{j-1})],
    # F(v)_i = (v_{i+1}² - v_{i-1}²)/(4Δx) - ν (v_{i+1} - 2v_i + v_{i-1})/Δx²; row 0 has no residual.
    u = x[:, 0]
    B, n, _ = u.shape
    dt, dx, nu = 1.0 / (n - 1), 1.0 / n, pde.nu

    def F(v):
        out = np.empty(n)
        for i in range(n):
            vp, vm = v[(i + 1) % n], v[(i - 1) % n]
            out[i] = (vp**2 - vm**2) / (4 * dx) - nu * (vp - 2 * v[i] + vm) / dx**2
        return out

    r = np.zeros_like(u)
    for b in range(B):
        for j in range(1, n):
            r[b, j] = (u[b, j] - u[b, j - 1]) / dt + 0.5 * (F(u[b, j]) + F(u[b, j - 1]))
    return r


def cole_hopf(nu, n, c0=4.0, c1=1.0):
    """Exact viscous Burgers solution on the burgers grid: (1, 1, n, n), rows t, cols x."""
    t = np.arange(n)[:, None] / (n - 1)
    x = np.arange(n)[None, :] / n
    e = c1 * np.exp(-4 * math.pi**2 * nu * t)
    phi = c0 + e * np.cos(2 * math.pi * x)
    phi_x = -2 * math.pi * e * np.sin(2 * math.pi * x)
    return (-2 * nu * phi_x / phi)[None, None]


RESIDUALS = {"darcy": darcy, "poisson": poisson, "helmholtz": helmholtz, "burgers": burgers}
