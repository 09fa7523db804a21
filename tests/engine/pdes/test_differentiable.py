"""The differentiable reference solve: forward = pde.solve, adjoint gradient = finite differences."""

from __future__ import annotations

import os
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import pdes
from engine.grid import Grid
from engine.pdes.differentiable import solve_fields
from engine.pdes.poisson import Poisson

GRID = Grid(8)


def _coefficient(pde, seeds=(1, 2)):
    c = pde.sample_inputs(list(seeds), GRID)
    if pde.name == "darcy":  # continuous, as a generator proposes it: exercises every face coefficient
        c = c + torch.rand(c.shape, generator=torch.Generator().manual_seed(0), dtype=c.dtype)
    return c


@pytest.mark.parametrize("name", pdes.names())
def test_forward_matches_reference_solver(name):
    pde = pdes.get(name)
    c = _coefficient(pde)
    x = solve_fields(pde, c, GRID)
    assert torch.allclose(x, pde.solve(c, GRID), rtol=0, atol=1e-12)
    assert pde.residual(x, GRID).abs().max() < 1e-10


@pytest.mark.parametrize("name", pdes.names())
def test_adjoint_gradient_matches_finite_differences(name):
    pde = pdes.get(name)
    c = _coefficient(pde).requires_grad_(True)
    w = torch.randn((2, len(pde.fields), GRID.n, GRID.n), generator=torch.Generator().manual_seed(3),
                    dtype=torch.float64)

    def loss(cc):  # a nonlinear loss of every field entry, coefficient included
        x = solve_fields(pde, cc, GRID)
        return (w * x).sum() + 0.1 * x.square().sum()

    assert torch.autograd.gradcheck(loss, (c,), eps=1e-6, atol=1e-6, rtol=1e-5)


def test_keeps_dtype_and_device_of_the_input():
    pde = pdes.get("poisson")
    c = _coefficient(pde).float().requires_grad_(True)
    x = solve_fields(pde, c, GRID)
    assert x.dtype == torch.float32 and x.device == c.device
    x[:, 1].sum().backward()
    assert c.grad is not None and c.grad.dtype == torch.float32 and c.grad.abs().sum() > 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_tensors_round_trip():
    pde = pdes.get("darcy")
    c = _coefficient(pde).cuda().requires_grad_(True)
    x = solve_fields(pde, c, GRID)
    x[:, 1].square().sum().backward()
    assert x.is_cuda and c.grad.is_cuda


def test_thread_owned_factors_solve_like_scipy():
    import scipy.sparse.linalg as spla

    from engine.pdes.elliptic import ThreadOwnedLU, div_a_grad_matrix

    pde, grid = pdes.get("darcy"), Grid(12)
    a = pde.sample_inputs([1, 2, 3], grid).numpy()
    rng = np.random.default_rng(0)
    mats = [div_a_grad_matrix(x, grid.h) for x in a]
    rhs = [rng.standard_normal(mats[0].shape[0]) for _ in mats]
    lu = ThreadOwnedLU(mats)
    for trans, ops in (("N", mats), ("T", [m.T.tocsc() for m in mats])):
        for got, m, b in zip(lu.solve_each(rhs, trans=trans), ops, rhs, strict=True):
            assert np.allclose(got, spla.spsolve(m, b), rtol=1e-10, atol=1e-12)
    lu.release()
    lu.release()  # idempotent
    assert len(lu) == 0


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads the resident size from /proc")
def test_repeated_differentiable_darcy_solves_do_not_leak_memory():
    """SuperLU frees only what the freeing thread allocated (scipy #15921): factors made on pool threads
    and dropped by the caller's thread leaked ~2 MB per 16 darcy 32² solves, with or without a backward."""
    import gc

    def resident_mb() -> float:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    pde, grid = pdes.get("darcy"), Grid(32)
    c = pde.sample_inputs(list(range(16)), grid).double()

    def run(times: int) -> None:
        for _ in range(times):
            cc = c.clone().requires_grad_(True)
            solve_fields(pde, cc, grid)[:, 1].sum().backward()
            with torch.no_grad():
                solve_fields(pde, c, grid)
        gc.collect()

    run(5)  # allocator arenas, thread stacks, caches settle first
    before = resident_mb()
    run(30)
    assert resident_mb() - before < 20.0  # leaking, the 60 solves grew it by ~100 MB


class _State:
    """An opaque forward state (weak-referenceable, so a test can see when it is freed)."""


class _Cube:
    """A PDE outside the registry, with only what solve_fields needs: R = u − c³ on every node, so
    S(c) = c³, ∂R/∂u = I (λ = ∂L/∂u) and dL/dc = ∂L/∂c + 3c² ∂L/∂u. Records the calls it gets."""

    has_adjoint = True

    def __init__(self) -> None:
        self.calls: list[tuple[str, weakref.ref]] = []

    def inputs_of(self, x):
        return x[:, 0]

    def residual(self, x, grid):
        return x[:, 1] - x[:, 0] ** 3

    def solve_with_state(self, inputs, grid):
        state = _State()
        self.calls.append(("forward", weakref.ref(state)))
        return torch.stack([inputs, inputs**3], dim=1), state

    def solve_adjoint(self, x, g, state, grid):
        self.calls.append(("adjoint", weakref.ref(state)))
        return g[:, 1].clone()


def test_a_new_pde_needs_only_its_own_solve_and_adjoint():
    """solve_fields dispatches on the PDE's methods, not its class: the generic adjoint formula
    gives a stand-in PDE the gradient of L(c, c³)."""
    pde = _Cube()
    gen = torch.Generator().manual_seed(0)
    c = torch.randn((2, GRID.n, GRID.n), generator=gen, dtype=torch.float64).requires_grad_(True)
    w = torch.randn((2, 2, GRID.n, GRID.n), generator=gen, dtype=torch.float64)

    def loss(x):
        return (w * x).sum() + 0.1 * x.square().sum()

    x = solve_fields(pde, c, GRID)
    (got,) = torch.autograd.grad(loss(x), c)
    (want,) = torch.autograd.grad(loss(torch.stack([c, c**3], dim=1)), c)
    assert torch.allclose(x, torch.stack([c, c**3], dim=1), rtol=0, atol=0)
    assert torch.allclose(got, want, rtol=1e-12, atol=1e-12)
    (kind0, made), (kind1, used) = pde.calls
    assert (kind0, kind1) == ("forward", "adjoint") and made() is used() is not None  # the state is handed on


def test_the_forward_state_is_dropped_when_no_backward_can_come():
    pde = _Cube()
    solve_fields(pde, torch.ones(1, GRID.n, GRID.n, dtype=torch.float64), GRID)  # c needs no grad
    assert pde.calls[0][1]() is None  # freed at once (darcy: its LU factors), not kept with the output


class _NoAdjoint(Poisson):
    has_adjoint = False


@pytest.mark.parametrize("pde, shown", [(_NoAdjoint(), "_NoAdjoint"), (object(), "object")])
def test_a_pde_without_an_adjoint_gets_a_clear_error(pde, shown):
    with pytest.raises(TypeError, match=f"^no differentiable solver for {shown}$"):
        solve_fields(pde, torch.zeros(1, GRID.n, GRID.n, dtype=torch.float64), GRID)


@pytest.mark.parametrize("name", pdes.names())
def test_every_registered_pde_has_an_adjoint(name):
    assert pdes.get(name).has_adjoint
