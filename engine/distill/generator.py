"""The one-step student G(ε) and its loading.

G has the teacher's architecture and starts as a copy of the teacher's EMA denoiser evaluated at
σ_max (PIDDM §3.3): G(ε) = D_θ(σ_max·ε; σ_max), ε ~ N(0, I) of shape (C, N, N). At step 0 it
therefore reproduces the teacher's first denoising estimate; distillation then trains it to map
ε straight to the teacher's ODE endpoint Φ(ε).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine import dist, pdes
from engine.config import TeacherConfig, from_dict
from engine.data.dataset import Normalizer
from engine.diffusion.precond import Denoiser
from engine.diffusion.sampler import noise_from_seeds
from engine.diffusion.unet import UNet
from engine.distill.config import DistillConfig
from engine.errors import CheckpointError, ConfigError
from engine.grid import Grid
from engine.io.checkpoint import load_checkpoint, resolve


def one_step(denoiser: torch.nn.Module, eps: torch.Tensor, sigma_max: float) -> torch.Tensor:
    """G(ε) = D(σ_max·ε; σ_max), normalised units (B, C, N, N)."""
    return denoiser(eps * sigma_max, torch.full((eps.shape[0],), sigma_max, device=eps.device))


@dataclass
class Student:
    """A loaded one-step generator (EMA weights, eval mode, gradients off for its parameters)."""

    denoiser: Denoiser
    normalizer: Normalizer
    pde: Any  # engine.pdes.PDE
    grid: Grid
    channels: tuple[str, ...]
    sigma_max: float
    residual_scale: float  # s: the fixed normaliser of ‖R‖² (mean R² of the teacher's samples)
    config: DistillConfig
    teacher_path: Path | None
    step: int
    device: torch.device
    path: Path = field(default_factory=Path)
    # The network through torch.compile, made by the first ``compiled()`` and kept for later solves.
    compiled_denoiser: torch.nn.Module | None = field(default=None, repr=False, compare=False)

    def compiled(self) -> Student:
        """This student with its network through torch.compile: the same function, fused kernels.

        The compile happens on the first call of the network (about a minute for the `small`
        U-Net, once per input shape) and is kept on this student, so later solves reuse it; on a
        GPU a 64² latent step then costs about 0.75× the plain one (resources/bench/README.md, latency).
        """
        if self.compiled_denoiser is None:
            self.compiled_denoiser = torch.compile(self.denoiser)
        return dataclasses.replace(self, denoiser=self.compiled_denoiser)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (len(self.channels), self.grid.n, self.grid.n)

    def noise(self, seeds: Sequence[int]) -> torch.Tensor:
        """(B, C, N, N) latent ε on the device; row b drawn from seeds[b] alone."""
        return noise_from_seeds(seeds, self.latent_shape, self.device)

    def generate_normalized(self, eps: torch.Tensor) -> torch.Tensor:
        return one_step(self.denoiser, eps, self.sigma_max)

    def generate(self, eps: torch.Tensor) -> torch.Tensor:
        """Physical fields (B, C, N, N) float32 on the device; differentiable with respect to ε."""
        return self.normalizer.decode(self.generate_normalized(eps))


def teacher_path_of(run: Path, recorded: str) -> Path | None:
    """The teacher folder recorded in a student checkpoint; relative paths are from the run."""
    if not recorded:
        return None
    p = Path(recorded)
    return p if p.is_absolute() else (run / p).resolve()


def load_student(path: str | os.PathLike[str], device: str | torch.device = "cpu",
                 weights: str = "ema") -> Student:
    """Load a student from a distillation run directory (or checkpoint file).

    ``weights``: "ema" (what every command uses) or "model", the raw weights of the last step, which
    only run directories keep (bundled models hold the EMA alone).
    Raises CheckpointError for a missing, damaged or non-student checkpoint.
    """
    p = resolve(path)
    ckpt = load_checkpoint(p, kind="student")
    dev = dist.resolve_device(str(device))
    try:
        cfg = from_dict(DistillConfig, ckpt["config"])
        tcfg = from_dict(TeacherConfig, ckpt["teacher_config"])
        channels = tuple(ckpt["channels"])
        denoiser = Denoiser(UNet(len(channels), tcfg.model), tcfg.sigma_data)
        if weights not in ckpt:
            raise CheckpointError(f"{p}: holds no {weights!r} weights (bundled models keep only 'ema')")
        denoiser.load_state_dict(ckpt[weights])
        student = Student(
            denoiser=denoiser.requires_grad_(False).eval().to(dev),
            normalizer=Normalizer.from_dict(ckpt["normalizer"]),
            pde=pdes.get(ckpt["pde"]["name"], **ckpt["pde"]["params"]),
            grid=Grid(int(ckpt["grid"]["n"])), channels=channels,
            sigma_max=float(ckpt["sigma_max"]), residual_scale=float(ckpt["residual_scale"]),
            config=cfg, teacher_path=teacher_path_of(p.parent, str(ckpt.get("teacher", ""))),
            step=int(ckpt["step"]), device=dev, path=p)
    except (KeyError, TypeError, RuntimeError, ConfigError) as exc:
        raise CheckpointError(f"{p}: incomplete or inconsistent student checkpoint ({exc})") from None
    return student
