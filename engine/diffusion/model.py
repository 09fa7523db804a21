"""A trained teacher, loaded for sampling: EMA denoiser + normalizer + PDE + grid.

``load_teacher`` reads a teacher run directory (or its checkpoint file) with
``torch.load(weights_only=True)`` and refuses other kinds of checkpoint. ``sample_teacher`` is
the whole ``piddm sample`` path for a teacher: per-sample seeds, batching, residuals, file.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine import dist, pdes
from engine.config import TeacherConfig, from_dict
from engine.data.dataset import Normalizer
from engine.data.generate import sample_seeds  # noise seeds of a sampling run, as ``piddm generate``'s
from engine.diffusion.precond import Denoiser
from engine.diffusion.sampler import Callback, heun_sample, nfe, noise_from_seeds
from engine.diffusion.unet import UNet
from engine.errors import CheckpointError, ConfigError
from engine.grid import Grid
from engine.io.checkpoint import load_checkpoint, model_folder, resolve
from engine.io.hdf5 import FieldsFile, write_fields
from engine.jobs import CancelToken, Progress, ProgressFn, check_cancel, no_progress
from engine.metrics import residual_map, residual_stats


@dataclass
class Teacher:
    """A loaded teacher. ``denoiser`` holds the EMA weights in eval mode on ``device``."""

    denoiser: Denoiser
    normalizer: Normalizer
    pde: Any  # engine.pdes.PDE
    grid: Grid
    config: TeacherConfig
    channels: tuple[str, ...]
    sigma_min: float
    sigma_max: float
    rho: float
    step: int
    device: torch.device
    path: Path = field(default_factory=Path)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, N, N) of one sample."""
        return (len(self.channels), self.grid.n, self.grid.n)

    def sample_normalized(self, seeds: list[int] | tuple[int, ...], steps: int = 18,
                          callback: Callback | None = None) -> torch.Tensor:
        """(B, C, N, N) float32 samples in normalised units, on ``device``; one seed per sample."""
        noise = noise_from_seeds(seeds, self.shape, self.device)
        return heun_sample(self.denoiser, noise, num_steps=steps, sigma_min=self.sigma_min,
                           sigma_max=self.sigma_max, rho=self.rho, callback=callback)

    def sample(self, seeds: list[int] | tuple[int, ...], steps: int = 18,
               callback: Callback | None = None) -> torch.Tensor:
        """Heun samples (NFE 2·steps − 1) as physical fields (B, C, N, N) float32 on the CPU.

        Sample b depends only on ``seeds[b]``, not on the batch it is drawn in.
        """
        z = self.sample_normalized(seeds, steps, callback)
        return self.normalizer.decode(z.cpu().double()).float()


def load_teacher(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Teacher:
    """Load a teacher from a run directory or checkpoint file (EMA weights, eval mode).

    Raises CheckpointError for a missing, damaged or non-teacher checkpoint.
    """
    p = resolve(path)
    ckpt = load_checkpoint(p, kind="teacher")
    dev = dist.resolve_device(str(device))
    try:
        cfg = from_dict(TeacherConfig, ckpt["config"])
        pde = pdes.get(ckpt["pde"]["name"], **ckpt["pde"]["params"])
        channels = tuple(ckpt["channels"])
        net = UNet(len(channels), cfg.model)
        denoiser = Denoiser(net, cfg.sigma_data)
        denoiser.load_state_dict(ckpt["ema"])
        normalizer = Normalizer.from_dict(ckpt["normalizer"])
        sampler = ckpt["sampler"]
    except (KeyError, TypeError, RuntimeError, ConfigError) as exc:
        raise CheckpointError(f"{p}: incomplete or inconsistent teacher checkpoint ({exc})") from None
    denoiser.requires_grad_(False).eval().to(dev)
    return Teacher(denoiser=denoiser, normalizer=normalizer, pde=pde, grid=Grid(int(ckpt["grid"]["n"])),
                   config=cfg, channels=channels, sigma_min=float(sampler["sigma_min"]),
                   sigma_max=float(sampler["sigma_max"]), rho=float(sampler["rho"]),
                   step=int(ckpt["step"]), device=dev, path=p)


@dataclass(frozen=True)
class SampleResult:
    fields: np.ndarray = field(repr=False)  # (n, C, N, N) float32, physical units
    residual: np.ndarray = field(repr=False)  # (n, N, N) float32, r on every node
    path: Path | None
    n: int
    steps: int
    nfe: int  # denoiser evaluations per sample
    seconds: float
    residual_mse: float
    bc_mse: float


def sample_teacher(model: str | os.PathLike[str] | Teacher, n: int, *, steps: int = 18, seed: int = 0,
                   batch: int = 64, device: str = "cpu", output: str | os.PathLike[str] | None = None,
                   on_progress: ProgressFn = no_progress, cancel: CancelToken | None = None) -> SampleResult:
    """Draw ``n`` teacher samples (seeds ``sample_seeds(seed, n)``) and optionally write a fields file.

    The file has method "teacher" and the ``residual`` dataset (computed in float64 from the
    float32 fields). Raises ConfigError for bad counts, CheckpointError for a bad model.
    """
    if n < 1 or steps < 1 or batch < 1:
        raise ConfigError(f"n, steps and batch must be at least 1, got {n}, {steps}, {batch}")
    teacher = model if isinstance(model, Teacher) else load_teacher(model, device)
    seeds = sample_seeds(seed, n)
    t0 = time.perf_counter()
    out = []
    for start in range(0, n, batch):
        check_cancel(cancel)
        chunk = seeds[start : start + batch]
        out.append(teacher.sample(chunk, steps))
        on_progress(Progress("sample", start + len(chunk), n))
    fields = torch.cat(out).numpy()  # (n, C, N, N) float32
    seconds = time.perf_counter() - t0
    residual = residual_map(teacher.pde, fields).astype(np.float32)
    stats = residual_stats(teacher.pde, fields)
    path = None
    if output is not None:
        path = write_fields(output, FieldsFile(
            fields=fields, pde=teacher.pde.name, channels=teacher.channels,
            pde_params=pdes.params_of(teacher.pde), method="teacher", seed=seed, residual=residual,
            extra={"model": model_folder(teacher.path), "steps": steps, "nfe": nfe(steps)}))
    return SampleResult(fields, residual, path, n, steps, nfe(steps), seconds,
                        stats["residual_mse"], stats["bc_mse"])
