"""Shared machinery of the Dirichlet problems (darcy, poisson, helmholtz).

Each of them is a linear system A(c) u = b(c) on the (n-2)^2 interior unknowns, with u = 0 on the
boundary. The residual on the full grid is (A u - b) on interior nodes and u on boundary nodes.
The sparse matrix is assembled from the same stencil the torch residual evaluates, and the tests
check the two against each other (solver output has residual at round-off).

Adjoint: ∂R/∂u is A on the interior rows and the identity on the boundary rows, and A is symmetric
for all three, so (∂R/∂u)ᵀ λ = ∂L/∂u needs only transposed solves with the forward LU factors
(``PDE.solve_adjoint``). The boundary rows R = u do not involve the coefficient: their λ is left 0.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from engine import fd, grf
from engine.grid import Grid


def interior_mask(grid: Grid) -> torch.Tensor:
    return ~grid.boundary_mask()


def full_residual(r_int: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """(B, n, n): interior residual r_int (B, n-2, n-2) inside, u itself on the boundary (u = 0)."""
    return fd.embed_interior(r_int, u)


def smoothed_residual(r: torch.Tensor, grid: Grid, s: float) -> torch.Tensor:
    """(B, n, n): the full-grid residual r with (−Δ_h)^(−s) applied to its interior part (H^(−2s) norm).

    The boundary residual (u itself) is left as it is. See ``PDE.smoothed_residual``.
    """
    if s == 0:
        return r
    return fd.embed_interior(fd.dirichlet_laplacian_power(r[..., 1:-1, 1:-1], grid.h, s), r)


def channel_mask(grid: Grid, n_channels: int, channel: int) -> torch.Tensor:
    m = torch.zeros(n_channels, grid.n, grid.n, dtype=torch.bool)
    m[channel] = True
    return m


def laplacian_matrix(m: int, h: float) -> sp.csr_matrix:
    """-Δ_h on an m x m interior block with zero Dirichlet data (5-point stencil)."""
    t = sp.diags([-np.ones(m - 1), 2 * np.ones(m), -np.ones(m - 1)], [-1, 0, 1])
    eye = sp.identity(m)
    return ((sp.kron(eye, t) + sp.kron(t, eye)) / h**2).tocsc()


_NEIGHBOURS = ((0, 1), (0, -1), (1, 0), (-1, 0))  # E, W, N, S (row = y, col = x)


@functools.lru_cache(maxsize=8)
def _stencil_pattern(n: int) -> tuple[np.ndarray, ...]:
    """Fixed CSC pattern of the 5-point operator on the (n-2)^2 interior unknowns of an n x n grid.

    Returns (ii, jj, order, indices, indptr, inside_masks): interior node indices, the permutation
    from the assembly order (diagonal, then E, W, N, S neighbours) to CSC order, and the CSC
    index arrays. Cached: every coefficient field on the same grid shares it.
    """
    m = n - 2
    ii, jj = np.meshgrid(np.arange(1, n - 1), np.arange(1, n - 1), indexing="ij")
    ii, jj = ii.ravel(), jj.ravel()
    p = (ii - 1) * m + (jj - 1)
    rows, cols, inside_masks = [p], [p], []
    for di, dj in _NEIGHBOURS:
        ni, nj = ii + di, jj + dj
        inside = (ni >= 1) & (ni <= n - 2) & (nj >= 1) & (nj <= n - 2)
        inside_masks.append(inside)
        rows.append(p[inside])
        cols.append(((ni - 1) * m + (nj - 1))[inside])
    r, c = np.concatenate(rows), np.concatenate(cols)
    order = np.lexsort((r, c))  # column-major, rows ascending within a column: CSC order
    indptr = np.concatenate([[0], np.cumsum(np.bincount(c, minlength=m * m))])
    return ii, jj, order, r[order].astype(np.int32), indptr.astype(np.int32), tuple(inside_masks)


def div_a_grad_matrix(a: np.ndarray, h: float) -> sp.csc_matrix:
    """-∇·(a∇·)_h on the interior of an n x n grid, arithmetic-mean faces, u = 0 on the boundary.

    Row p = interior node (i, j) in row-major order over the (n-2)^2 interior nodes.
    """
    n = a.shape[0]
    m = n - 2
    ii, jj, order, indices, indptr, inside = _stencil_pattern(n)
    ax = 0.5 * (a[:, 1:] + a[:, :-1])  # ax[i, j] is the face between (i, j) and (i, j+1)
    ay = 0.5 * (a[1:, :] + a[:-1, :])  # ay[i, j] is the face between (i, j) and (i+1, j)
    east, west = ax[ii, jj], ax[ii, jj - 1]
    north, south = ay[ii, jj], ay[ii - 1, jj]
    vals = [east + west + north + south]
    vals += [-w[ins] for w, ins in zip((east, west, north, south), inside)]
    data = np.concatenate(vals)[order] / h**2
    return sp.csc_matrix((data, indices, indptr), shape=(m * m, m * m))


def factorize(mat: sp.spmatrix) -> spla.SuperLU:
    """Sparse LU of one 5-point system (symmetric pattern: minimum degree on A^T + A)."""
    return spla.splu(sp.csc_matrix(mat), permc_spec="MMD_AT_PLUS_A")


def lu_solve(mat: sp.spmatrix, rhs: np.ndarray) -> np.ndarray:
    return factorize(mat).solve(rhs)


def thread_map(fn, items: list) -> list:
    """map over items on up to 8 threads: SuperLU releases the GIL, so sparse solves use every core."""
    workers = max(1, min(len(items), os.cpu_count() or 1, 8))
    if workers == 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


_LU_OWNERS: list[ThreadPoolExecutor] = []  # single-thread executors of ThreadOwnedLU, made on first use
_LU_OWNERS_LOCK = threading.Lock()


def _lu_owners(count: int) -> list[ThreadPoolExecutor]:
    with _LU_OWNERS_LOCK:
        while len(_LU_OWNERS) < count:
            _LU_OWNERS.append(ThreadPoolExecutor(1, thread_name_prefix=f"lu-{len(_LU_OWNERS)}"))
        return _LU_OWNERS[:count]


class ThreadOwnedLU:
    """Sparse LU factors of several matrices, made in parallel and kept for later solves.

    scipy's SuperLU books its memory per thread and releases only what the releasing thread
    booked: a factor made on a pool thread and dropped on another leaks all of it (scipy issue
    #15921; here the darcy adjoint solve lost ~50 MB per 32² piddm-exact solve, and an OOM ended a
    long benchmark). So factor i is made on its own long-lived worker thread (i mod W), each held
    only in a one-item box, and ``release`` (or garbage collection) has that same thread empty the
    box. Solves may run on any thread.
    """

    def __init__(self, matrices: list) -> None:
        self._owners = _lu_owners(max(1, min(len(matrices), os.cpu_count() or 1, 8)))
        self._boxes: list[list[spla.SuperLU]] = [[] for _ in matrices]
        done = [self._owner(i).submit(lambda box, mat: box.append(factorize(mat)), self._boxes[i], m)
                for i, m in enumerate(matrices)]
        for d in done:
            d.result()

    def _owner(self, i: int) -> ThreadPoolExecutor:
        return self._owners[i % len(self._owners)]

    def __len__(self) -> int:
        return len(self._boxes)

    def solve_each(self, rhs: list[np.ndarray], trans: str = "N") -> list[np.ndarray]:
        """[LU_i⁻¹ rhs_i] (trans="T": the transposed systems), on the owners' threads in parallel."""
        jobs = [self._owner(i).submit(lambda box, b: box[0].solve(b, trans=trans), box, b)
                for i, (box, b) in enumerate(zip(self._boxes, rhs, strict=True))]
        return [j.result() for j in jobs]

    def release(self) -> None:
        """Free every factor on the thread that made it (idempotent)."""
        boxes, self._boxes = self._boxes, []
        for i, box in enumerate(boxes):
            if box:
                with contextlib.suppress(RuntimeError):  # at interpreter exit executors take no more work
                    self._owner(i).submit(box.clear)

    def __del__(self) -> None:
        self.release()


def embed(u_int: np.ndarray, n: int) -> np.ndarray:
    u = np.zeros((n, n))
    u[1:-1, 1:-1] = u_int.reshape(n - 2, n - 2)
    return u


@functools.lru_cache(maxsize=8)
def source_operator_lu(n: int, h: float, k2: float) -> spla.SuperLU:
    """LU of the interior operator −Δ_h − k² of an n×n grid: the same for every source, so it is
    factorised once per (n, h, k²) and reused by every solve and adjoint (read-only afterwards)."""
    m = n - 2
    return factorize(laplacian_matrix(m, h) - k2 * sp.identity(m * m))


def adjoint_rhs(g: torch.Tensor) -> np.ndarray:
    """(∂L/∂u) on the interior unknowns, (B, (n-2)²): the right-hand side of Aᵀ λ_int = ∂L/∂u.

    g: ∂L/∂x (B, 2, n, n) float64 CPU, channels (coefficient, u).
    """
    return g[:, 1, 1:-1, 1:-1].reshape(len(g), -1).numpy()


def solve_many(lu: spla.SuperLU, rhs: np.ndarray, n: int, trans: str = "N") -> np.ndarray:
    """Solve one factorised operator for a batch of right-hand sides (B, (n-2)²) -> (B, n, n)."""
    sol = lu.solve(np.ascontiguousarray(rhs.T), trans=trans)  # (m², B): one call for the batch
    out = np.zeros((rhs.shape[0], n, n))
    out[:, 1:-1, 1:-1] = sol.T.reshape(rhs.shape[0], n - 2, n - 2)
    return out


# --- source problems: -Δu - k²u = f (Poisson is k = 0) -----------------------------------------


class SourceProblem:
    """-Δu - k²u = f with u = 0 on ∂Ω; channels (f, u); source prior f = GRF(α=2, τ=3).

    Shared implementation of Poisson (k = 0) and Helmholtz; subclasses set ``k2``.
    """

    fields: ClassVar[tuple[str, ...]] = ("f", "u")
    units: ClassVar[str] = "f: source, u: solution (units of f·L²)"
    residual_orders: ClassVar[tuple[int, ...]] = (0, 2)
    axes: ClassVar[tuple[str, str]] = ("y", "x")
    periodic_columns: ClassVar[bool] = False
    has_adjoint: ClassVar[bool] = True
    two_phase_channel: ClassVar[str | None] = None  # f is a Gaussian random field

    @property
    def k2(self) -> float:
        return 0.0

    def sample_inputs(self, seeds: Sequence[int], grid: Grid) -> torch.Tensor:
        return grf.sample_2d(seeds, grid.n, alpha=2.0, tau=3.0)

    def solve(self, inputs: torch.Tensor, grid: Grid) -> torch.Tensor:
        return source_solve(inputs, grid, self.k2)

    def inputs_of(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0]

    def admissible_inputs(self, c: torch.Tensor) -> torch.Tensor:
        return c  # the operator does not depend on f: every finite source is admissible

    def solve_with_state(self, inputs: torch.Tensor, grid: Grid) -> tuple[torch.Tensor, spla.SuperLU]:
        """``solve``, and the LU of −Δ_h − k² it used: the same for every f (cached, read-only)."""
        return source_solve(inputs, grid, self.k2), source_operator_lu(grid.n, grid.h, float(self.k2))

    def solve_adjoint(self, x: torch.Tensor, g: torch.Tensor, state: spla.SuperLU, grid: Grid) -> torch.Tensor:
        # (−Δ_h − k²)ᵀ λ_int = (∂L/∂u)_int, all samples in one call; boundary λ stays 0
        return torch.from_numpy(solve_many(state, adjoint_rhs(g), grid.n, trans="T"))

    def residual(self, x: torch.Tensor, grid: Grid) -> torch.Tensor:
        return source_residual(x, grid, self.k2)

    def smoothed_residual(self, r: torch.Tensor, grid: Grid, s: float) -> torch.Tensor:
        return smoothed_residual(r, grid, s)

    def interior_mask(self, grid: Grid) -> torch.Tensor:
        return interior_mask(grid)

    def boundary_mask(self, grid: Grid) -> torch.Tensor:
        return grid.boundary_mask()

    def coefficient_mask(self, grid: Grid) -> torch.Tensor:
        return channel_mask(grid, 2, 0)

    def solution_mask(self, grid: Grid) -> torch.Tensor:
        return channel_mask(grid, 2, 1)


def source_residual(x: torch.Tensor, grid: Grid, k2: float) -> torch.Tensor:
    """Full-grid residual of -Δ_h u - k²u - f for fields x = (f, u), (B, 2, n, n)."""
    f, u = x[:, 0], x[:, 1]
    r_int = -fd.laplacian(u, grid.h) - k2 * u[..., 1:-1, 1:-1] - f[..., 1:-1, 1:-1]
    return full_residual(r_int, u)


def source_solve(f: torch.Tensor, grid: Grid, k2: float) -> torch.Tensor:
    """Fields (f, u), (B, 2, n, n) float64, with u the exact discrete solution for source f."""
    f64 = f.detach().to("cpu", torch.float64)
    rhs = f64[:, 1:-1, 1:-1].reshape(len(f64), -1).numpy()
    u = torch.from_numpy(solve_many(source_operator_lu(grid.n, grid.h, float(k2)), rhs, grid.n))
    return torch.stack([f64, u], dim=1)
