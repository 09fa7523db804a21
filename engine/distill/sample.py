"""Inference with the student: PIDDM-1, PIDDM-ref (latent refinement) and exact projection.

PIDDM-1 is one network evaluation x = G(ε). PIDDM-ref takes k Adam steps on ε against
    J(ε) = λ_infer · mean(R(G(ε))²) / s + ½ · mean(ε²)
(the residual energy relative to the teacher's, plus the Gaussian prior −log p(ε) per entry),
each sample independently (Adam is element-wise and the objective a sum over samples), and
returns G(ε_k). ``--project`` replaces each sample's solution by the reference solve of its
coefficient and reports how far that moved it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from engine import pdes
from engine.config import check_number
from engine.data.generate import sample_seeds
from engine.distill.config import REFINE_LAMBDA, REFINE_LR
from engine.distill.generator import Student, load_student
from engine.distill.loss import residual_energy
from engine.io.checkpoint import model_folder
from engine.io.hdf5 import FieldsFile, write_fields
from engine.jobs import CancelToken, Progress, ProgressFn, check_cancel, no_progress
from engine.metrics import residual_map, residual_stats


def check_refine(steps: int, lam_infer: float, lr: float, names: tuple[str, str, str] = (
        "refine_steps", "lam_infer", "refine_lr")) -> None:
    """PIDDM-ref's settings: k ≥ 0 steps, λ_infer ≥ 0 (a negative weight climbs the residual) and an
    Adam rate > 0 (0 leaves ε where it was while reporting k steps); ``names`` as the caller spells them."""
    check_number(names[0], steps, 0)
    check_number(names[1], lam_infer, 0)
    check_number(names[2], lr, 0, above=True)


def refine(student: Student, eps: torch.Tensor, steps: int, lam_infer: float = REFINE_LAMBDA, lr: float = REFINE_LR,
           cancel: CancelToken | None = None) -> torch.Tensor:
    """ε after ``steps`` Adam steps on J(ε) (module docstring). eps (B, C, N, N) on the device."""
    eps = eps.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([eps], lr=lr)
    for _ in range(steps):
        check_cancel(cancel)
        x = student.generate(eps)
        energy = residual_energy(student.pde, x, student.grid) / student.residual_scale  # (B,)
        J = (lam_infer * energy + 0.5 * eps.pow(2).mean(dim=(1, 2, 3))).sum()
        opt.zero_grad(set_to_none=True)
        J.backward()
        opt.step()
    return eps.detach()


def project(pde, fields: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(projected fields, distance) with the solution replaced by the reference solve S(coefficient).

    distance: per sample ‖x − S(c)‖₂ / ‖S(c)‖₂ over the solution entries (not the coefficient).
    """
    from engine.grid import Grid

    x = torch.as_tensor(fields, dtype=torch.float64)
    exact = pde.solve(pde.inputs_of(x), Grid(x.shape[-1])).numpy()
    sol = ~pde.coefficient_mask(Grid(x.shape[-1])).numpy()  # (C, N, N) entries S determines
    diff = (fields - exact)[:, sol].reshape(len(x), -1)
    ref = exact[:, sol].reshape(len(x), -1)
    dist = np.linalg.norm(diff, axis=1) / np.maximum(np.linalg.norm(ref, axis=1), 1e-300)
    return exact.astype(np.float32), dist


@dataclass(frozen=True)
class StudentSampleResult:
    fields: np.ndarray = field(repr=False)  # (n, C, N, N) float32 physical
    path: Path | None
    n: int
    refine: int
    nfe: int  # generator evaluations per sample: 1 + refine (each refine step is one forward+backward)
    seconds: float
    residual_mse: float
    bc_mse: float
    projection_distance: float | None  # mean relative distance moved by --project, if asked


def sample_student(model: str | os.PathLike[str] | Student, n: int, *, refine_steps: int = 0,
                   lam_infer: float = REFINE_LAMBDA, refine_lr: float = REFINE_LR, project_solution: bool = False,
                   seed: int = 0, batch: int = 256, device: str = "cpu",
                   output: str | os.PathLike[str] | None = None, on_progress: ProgressFn = no_progress,
                   cancel: CancelToken | None = None) -> StudentSampleResult:
    """Draw n samples from a student (PIDDM-1, or PIDDM-ref with refine_steps > 0)."""
    check_number("n", n, 1)
    check_number("batch", batch, 1)
    check_refine(refine_steps, lam_infer, refine_lr)
    student = model if isinstance(model, Student) else load_student(model, device)
    seeds = sample_seeds(seed, n)
    t0 = time.perf_counter()
    out = []
    for start in range(0, n, batch):
        check_cancel(cancel)
        eps = student.noise(seeds[start : start + batch])
        if refine_steps:
            eps = refine(student, eps, refine_steps, lam_infer, refine_lr, cancel)
        with torch.no_grad():
            out.append(student.generate(eps).float().cpu())
        on_progress(Progress("sample", start + len(eps), n))
    if student.device.type == "cuda":
        torch.cuda.synchronize(student.device)
    seconds = time.perf_counter() - t0
    fields = torch.cat(out).numpy()
    distance = None
    if project_solution:
        fields, dist = project(student.pde, fields)
        distance = float(dist.mean())
    stats = residual_stats(student.pde, fields)
    method = "piddm-ref" if refine_steps else ("piddm" if student.config.lam > 0 else "distill")
    path = None
    if output is not None:
        extra = {"model": model_folder(student.path), "refine": refine_steps, "nfe": 1 + refine_steps}
        if distance is not None:
            extra["projection_distance"] = distance
        path = write_fields(output, FieldsFile(
            fields=fields, pde=student.pde.name, channels=student.channels,
            pde_params=pdes.params_of(student.pde), method=method + ("+project" if project_solution else ""),
            seed=seed, residual=residual_map(student.pde, fields).astype(np.float32), extra=extra))
    return StudentSampleResult(fields, path, n, refine_steps, 1 + refine_steps, seconds,
                               stats["residual_mse"], stats["bc_mse"], distance)
