"""The student starts as the teacher's σ_max denoiser; its checkpoint and its loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.distill.generator import load_student, one_step
from engine.distill.loss import piddm_loss
from engine.distill.train import distill
from engine.errors import CheckpointError
from engine.io.checkpoint import resolve


def _teacher_sigma_max(teacher, eps):
    sigma = torch.full((eps.shape[0],), teacher.sigma_max)
    with torch.no_grad():
        return teacher.denoiser(teacher.sigma_max * eps, sigma)


@pytest.mark.parametrize("steps, lr", [(0, 1e-3), (1, 0.0)])
def test_student_at_step_0_is_the_teachers_sigma_max_denoiser(teacher, distill_cfg, tmp_path, steps, lr):
    # steps=0 saves the freshly built student; steps=1 with lr=0 runs the whole training step
    # (AdamW, EMA) once without moving the weights.
    res = distill(distill_cfg(steps=steps, lr=lr), tmp_path / "s")
    assert res.step == steps
    student = load_student(tmp_path / "s")
    assert student.step == steps and student.sigma_max == teacher.sigma_max
    eps = student.noise(list(range(5)))
    with torch.no_grad():
        g = student.generate_normalized(eps)
        g_fn = one_step(student.denoiser, eps, student.sigma_max)
    expected = _teacher_sigma_max(teacher, eps)
    assert torch.equal(g, expected)
    assert torch.equal(g_fn, expected)
    # physical units through the teacher's normaliser, too
    with torch.no_grad():
        assert torch.allclose(student.generate(eps), teacher.normalizer.decode(expected), rtol=1e-6, atol=1e-6)
    # and the weights are the teacher's EMA weights, entry for entry
    for (k, a), (k2, b) in zip(student.denoiser.state_dict().items(), teacher.denoiser.state_dict().items(),
                               strict=True):
        assert k == k2 and torch.equal(a, b), k


def test_student_checkpoint_is_weights_only_and_kind_checked(teacher_run, distill_cfg, tmp_path):
    distill(distill_cfg(steps=2), tmp_path / "s")
    ckpt = torch.load(resolve(tmp_path / "s"), map_location="cpu", weights_only=True)
    assert ckpt["kind"] == "student" and ckpt["step"] == 2
    assert ckpt["residual_scale"] > 0 and len(ckpt["pair_seeds"]) == 16
    with pytest.raises(CheckpointError, match="expected 'student'"):
        load_student(teacher_run)
    with pytest.raises(CheckpointError):
        load_student(tmp_path / "nothing-here")


def _darcy_r2(x: np.ndarray, h: float, forcing: float) -> float:
    """Mean over samples and nodes of r², node by node (independent of ``engine.fd``): on interior nodes
    r = −Σ_nb a_face (u_nb − u)/h² − f with a_face the mean of the two nodes' a; on the boundary r = u."""
    sq = []
    n = x.shape[-1]
    for a, u in x:
        for i in range(n):
            for j in range(n):
                if i in (0, n - 1) or j in (0, n - 1):
                    sq.append(u[i, j] ** 2)
                    continue
                flux = sum((a[i, j] + a[i + di, j + dj]) / 2 * (u[i + di, j + dj] - u[i, j])
                           for di, dj in ((0, 1), (0, -1), (1, 0), (-1, 0)))
                sq.append((-flux / h**2 - forcing) ** 2)
    return float(np.mean(sq))


def test_piddm_loss_with_lambda_0_is_the_plain_mse(teacher):
    g = torch.Generator().manual_seed(0)
    pred, x0 = torch.randn(4, *teacher.shape, generator=g), torch.randn(4, *teacher.shape, generator=g)
    loss, parts = piddm_loss(pred, x0, 0.0, teacher.pde, teacher.grid, teacher.normalizer, 123.0)
    mse = torch.nn.functional.mse_loss(pred, x0)
    assert torch.allclose(loss, mse, rtol=1e-6, atol=0)
    assert torch.allclose(parts["distill"], mse, rtol=1e-6, atol=0)
    assert teacher.pde.name == "darcy"
    res = _darcy_r2(teacher.normalizer.decode(pred).double().numpy(), teacher.grid.h, teacher.pde.forcing)
    assert float(parts["residual"]) == pytest.approx(res, rel=1e-6)  # float32 in the loss: 1.2e-7 apart
    # λ > 0 adds λ·mean(r²)/s and nothing else
    lam, s = 0.5, 123.0
    loss2, _ = piddm_loss(pred, x0, lam, teacher.pde, teacher.grid, teacher.normalizer, s)
    assert torch.allclose(loss2, mse + lam * res / s, rtol=1e-5)
    # gradients flow to the prediction through both terms
    p = pred.clone().requires_grad_(True)
    piddm_loss(p, x0, lam, teacher.pde, teacher.grid, teacher.normalizer, s)[0].backward()
    assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_student_finds_its_teacher_from_a_relative_path(teacher_run, distill_cfg, tmp_path, monkeypatch):
    # `piddm distill --teacher runs/t -o runs/s` from the folder above runs/: the recorded teacher
    # must resolve from the student's folder, not from the working directory of the distill call.
    import shutil

    shutil.copytree(teacher_run, tmp_path / "runs" / "t")
    monkeypatch.chdir(tmp_path)
    distill(distill_cfg(teacher="runs/t", steps=1), "runs/s")
    monkeypatch.chdir(tmp_path / "runs")  # anywhere else
    student = load_student(tmp_path / "runs" / "s")
    assert student.teacher_path == (tmp_path / "runs" / "t").resolve()
