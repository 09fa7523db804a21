"""Interactive latency of a piddm solve (what the app feels like); not a test.

An untrained `small` U-Net student costs exactly what a trained one does, so no model is needed:

    python tests/bench/bench_solve_latency.py [grid] [device]   # darcy inverse from 3% of u, ensemble 8
    python tests/bench/bench_solve_latency.py 64 cuda            # the "64² on a GPU" figure
"""

from __future__ import annotations

import sys
import time

import torch

from engine import pdes
from engine.data.dataset import Normalizer
from engine.data.generate import generate_fields
from engine.diffusion.precond import Denoiser
from engine.diffusion.unet import UNet
from engine.distill.config import DistillConfig
from engine.distill.generator import Student
from engine.grid import Grid
from engine.solve import Observations, SolveOptions, solve


def untrained_student(n: int, device: str = "cpu") -> Student:
    torch.manual_seed(0)
    pde = pdes.get("darcy")
    return Student(denoiser=Denoiser(UNet(2, "small")).to(device).eval().requires_grad_(False),
                   normalizer=Normalizer([7.5, 0.005], [4.5, 0.003]), pde=pde, grid=Grid(n),
                   channels=pde.fields, sigma_max=80.0, residual_scale=1.0, config=DistillConfig(),
                   teacher_path=None, step=0, device=torch.device(device))


def timed_solve(student: Student, obs: Observations, steps: int) -> tuple[float, float]:
    """(seconds to the first live preview, seconds to the end) of an 8-member piddm solve."""
    t0 = time.perf_counter()
    first: list[float] = []

    def on_progress(p) -> None:
        if p.preview is not None and not first:
            first.append(time.perf_counter() - t0)

    solve(student, student.pde, obs, SolveOptions(method="piddm", ensemble=8, steps=steps), on_progress=on_progress)
    return first[0], time.perf_counter() - t0


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    device = sys.argv[2] if len(sys.argv) > 2 else "cpu"
    student = untrained_student(n, device)
    truth = generate_fields("darcy", 1, n, 5, {})
    obs = Observations.from_task(student.pde, truth, "inverse", "fraction:0.03", seed=0)
    timed_solve(student, obs, 2)  # warm-up: one-time allocations and kernel selection
    for steps in (50, 100, 200):
        first, done = timed_solve(student, obs, steps)
        print(f"{n}², {device}, ensemble 8, {steps} steps: first preview {first:.2f} s, done {done:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
