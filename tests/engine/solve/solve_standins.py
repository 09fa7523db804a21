"""Small stand-ins for the student and teacher (same attributes as the real ones) and tiny cases."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from engine import pdes
from engine.grid import Grid

N = 16


class Normalizer:
    """Per-channel affine normaliser, like the real one: x_norm = (x − mean) / std."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean, self.std = mean.float().reshape(1, -1, 1, 1), std.float().reshape(1, -1, 1, 1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x)) / self.std.to(x)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std.to(x) + self.mean.to(x)


class TinyStudent(torch.nn.Module):
    """One-step generator stand-in: a fixed random 2-layer conv net, x = decode(net(ε))."""

    device = torch.device("cpu")

    def __init__(self, pde, grid: Grid, truth: torch.Tensor) -> None:
        super().__init__()
        c = len(pde.fields)
        self.pde, self.grid, self.latent_shape = pde, grid, (c, grid.n, grid.n)
        self.normalizer = Normalizer(truth.mean((0, 2, 3)), truth.std((0, 2, 3)))
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Conv2d(c, 8, 3, padding=1), torch.nn.Tanh(),
                                       torch.nn.Conv2d(8, c, 3, padding=1))
        for p in self.net.parameters():
            p.requires_grad_(False)

    def generate(self, eps: torch.Tensor) -> torch.Tensor:
        return self.normalizer.decode(self.net(eps))

    def noise(self, seeds) -> torch.Tensor:
        return torch.stack([torch.randn(self.latent_shape, generator=torch.Generator().manual_seed(s))
                            for s in seeds])


class TinyTeacher(torch.nn.Module):
    """EDM-denoiser stand-in: D(x; σ) = c_skip x + c_out F(c_in x) with a random conv F."""

    sigma_min, sigma_max, rho = 0.002, 80.0, 7.0
    device = torch.device("cpu")

    def __init__(self, pde, grid: Grid, normalizer: Normalizer) -> None:
        super().__init__()
        c = len(pde.fields)
        self.pde, self.grid, self.normalizer = pde, grid, normalizer
        torch.manual_seed(1)
        self.net = torch.nn.Conv2d(c, c, 3, padding=1)

    def denoiser(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        s = sigma.reshape(-1, 1, 1, 1)
        c_skip, c_out, c_in = 1 / (s**2 + 1), s / (s**2 + 1).sqrt(), 1 / (s**2 + 1).sqrt()
        return c_skip * x + c_out * 0.1 * self.net(c_in * x)


def make_case(name: str, count: int = 2, n: int = N):
    pde, grid = pdes.get(name), Grid(n)
    truth = pde.solve(pde.sample_inputs(list(range(100, 100 + count)), grid), grid)
    return pde, grid, truth


def make_model(name: str, n: int = N):
    pde, grid = pdes.get(name), Grid(n)
    ref = pde.solve(pde.sample_inputs(list(range(8)), grid), grid)
    student = TinyStudent(pde, grid, ref)
    teacher = TinyTeacher(pde, grid, student.normalizer)
    return SimpleNamespace(student=student, teacher=teacher, pde=pde, grid=grid, card={})



def untrained_darcy_student(n: int, size: str = "tiny", device: str = "cpu"):
    """A real darcy ``Student`` with a fresh U-Net of ``size`` whose zero-initialised layers are drawn at
    random (std 0.02), so that every layer shapes its output: a fresh U-Net's last layer is zero.

    Costs exactly what a trained student of that size costs (the latency bench) and exercises every
    kernel a trained one does (the CUDA-graph test).
    """
    from engine.data.dataset import Normalizer as DataNormalizer
    from engine.diffusion.precond import Denoiser
    from engine.diffusion.unet import UNet
    from engine.distill.config import DistillConfig
    from engine.distill.generator import Student

    torch.manual_seed(0)
    pde = pdes.get("darcy")
    net = UNet(2, size)
    for p in net.parameters():
        if not p.any():
            torch.nn.init.normal_(p, std=0.02)
    return Student(denoiser=Denoiser(net).to(device).eval().requires_grad_(False),
                   normalizer=DataNormalizer([7.5, 0.005], [4.5, 0.003]), pde=pde, grid=Grid(n),
                   channels=pde.fields, sigma_max=80.0, residual_scale=1.0, config=DistillConfig(),
                   teacher_path=None, step=0, device=torch.device(device))
