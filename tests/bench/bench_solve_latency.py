"""Interactive latency of a piddm solve (what the app feels like); not a test.

An untrained `small` U-Net student costs exactly what a trained one does, so no model is needed:

    python tests/bench/bench_solve_latency.py [grid] [device] [steps...]  # darcy inverse from 3% of u, ensemble 8
    python tests/bench/bench_solve_latency.py 64 cuda                      # the "64² on a GPU" figure

Steps default to 25 50 70 100 200; how many a solve needs to converge: tests/bench/bench_solve_steps.py.

On a GPU it times the solve with its steps replayed as CUDA graphs (the default) and launched one
by one, and prints how far apart the two answers are (they take the same steps).
"""

from __future__ import annotations

import sys
import time

import numpy as np
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


def timed_solve(student: Student, obs: Observations, steps: int,
                cuda_graphs: bool = True) -> tuple[float, float, np.ndarray]:
    """(seconds to the first live preview, seconds to the end, mean) of an 8-member piddm solve."""
    t0 = time.perf_counter()
    first: list[float] = []

    def on_progress(p) -> None:
        if p.preview is not None and not first:
            first.append(time.perf_counter() - t0)

    res = solve(student, student.pde, obs, SolveOptions(method="piddm", ensemble=8, steps=steps,
                                                        cuda_graphs=cuda_graphs), on_progress=on_progress)
    return first[0], time.perf_counter() - t0, res.mean


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    device = sys.argv[2] if len(sys.argv) > 2 else "cpu"
    student = untrained_student(n, device)
    truth = generate_fields("darcy", 1, n, 5, {})
    obs = Observations.from_task(student.pde, truth, "inverse", "fraction:0.03", seed=0)
    modes = (True, False) if device.startswith("cuda") else (True,)
    for graphs in modes:
        timed_solve(student, obs, 5, graphs)  # warm-up: one-time allocations and kernel selection
    for steps in [int(a) for a in sys.argv[3:]] or (25, 50, 70, 100, 200):
        means = []
        for graphs in modes:
            first, done, mean = timed_solve(student, obs, steps, graphs)
            means.append(mean)
            how = ", CUDA graphs" if graphs and len(modes) > 1 else ", eager" if len(modes) > 1 else ""
            print(f"{n}², {device}{how}, ensemble 8, {steps} steps: first preview {first:.2f} s, done {done:.2f} s")
        if len(means) > 1:
            gap = np.abs(means[0] - means[1]).max() / np.abs(means[1]).max()
            print(f"  graphs vs eager answers: max difference {gap:.1e} of the field's max")
    return 0


if __name__ == "__main__":
    sys.exit(main())
