"""Training data: a fields file as a tensor, its train / held-out split, and the Normalizer.

The diffusion model works in normalised units: each channel is shifted to mean 0 and scaled to
std ``scale`` (= σ_data, EDM §5), with statistics from the training split only. The Normalizer is
state (stored in the run and the checkpoint), not a constant.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from engine.errors import DatasetError
from engine.io.hdf5 import read_fields


class Normalizer:
    """Per-channel affine map between physical and normalised units.

    Parameters
    ----------
    mean, std : (C,) per-channel mean and std of the training data, physical units.
    scale : std of the encoded data (σ_data).

    ``encode(x) = (x − mean) / std · scale``, ``decode`` its inverse; both take (B, C, N, N)
    tensors on any device and dtype and return the same device and dtype.
    """

    def __init__(self, mean: Sequence[float] | torch.Tensor, std: Sequence[float] | torch.Tensor,
                 scale: float = 0.5) -> None:
        self.mean = torch.as_tensor(mean, dtype=torch.float64).detach().cpu().reshape(-1)
        self.std = torch.as_tensor(std, dtype=torch.float64).detach().cpu().reshape(-1)
        self.scale = float(scale)
        self._on: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}
        if self.mean.shape != self.std.shape:
            raise DatasetError(f"normalizer mean {tuple(self.mean.shape)} and std {tuple(self.std.shape)} differ")
        if not (torch.isfinite(self.std).all() and (self.std > 0).all() and self.scale > 0):
            raise DatasetError(f"normalizer std must be positive and finite, got {self.std.tolist()}")

    @classmethod
    def fit(cls, x: torch.Tensor | np.ndarray, scale: float = 0.5) -> Normalizer:
        """Statistics of x (n, C, N, N), computed in float64. A constant channel gets std 1."""
        t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).to(torch.float64)
        mean = t.mean(dim=(0, 2, 3))
        std = t.std(dim=(0, 2, 3), unbiased=False)
        std = torch.where(std > 1e-12 * mean.abs().clamp_min(1.0), std, torch.ones_like(std))
        return cls(mean, std, scale)

    @property
    def channels(self) -> int:
        return int(self.mean.numel())

    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, C, 1, 1) mean and std on x's device and dtype, copied there once: a copy from host
        memory on every call would make the host wait for the GPU (and cannot be in a CUDA graph)."""
        key = (x.device, x.dtype)
        if key not in self._on:
            self._on[key] = (self.mean.to(x.device, x.dtype).view(1, -1, 1, 1),
                             self.std.to(x.device, x.dtype).view(1, -1, 1, 1))
        return self._on[key]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Physical (B, C, N, N) -> normalised (B, C, N, N)."""
        mean, std = self._stats(x)
        return (x - mean) / std * self.scale

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Normalised (B, C, N, N) -> physical (B, C, N, N)."""
        mean, std = self._stats(z)
        return z / self.scale * std + mean

    def to_dict(self) -> dict[str, Any]:
        """Plain floats: safe for JSON and for ``torch.load(weights_only=True)``."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "scale": self.scale}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Normalizer:
        try:
            return cls(d["mean"], d["std"], d.get("scale", 0.5))
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"bad normalizer record: {exc}") from None


@dataclass(frozen=True)
class DataSplit:
    """Fields of one file split in two. Tensors are float32 (n, C, N, N), physical units, CPU."""

    train: torch.Tensor
    held_out: torch.Tensor
    pde: str
    pde_params: dict[str, Any]
    channels: tuple[str, ...]
    path: str

    def record(self) -> dict[str, Any]:
        """What a run stores about its data (so held-out samples are known later)."""
        n_train, n_held = len(self.train), len(self.held_out)
        return {"dataset": self.path, "n_train": n_train, "n_held_out": n_held,
                "held_out": [n_train, n_train + n_held]}  # index range [start, stop) in the file


def load_split(path: str | os.PathLike[str], *, pde: str | None = None, grid_n: int | None = None,
               holdout_fraction: float = 0.1) -> DataSplit:
    """Read a fields file and hold out its last ``floor(n · holdout_fraction)`` samples.

    Raises DatasetError when the file is unreadable, of another PDE or grid, or when the
    training split would be empty.
    """
    ff = read_fields(path, expect_pde=pde, expect_grid=grid_n)
    n = len(ff)
    n_held = int(n * holdout_fraction)
    if n - n_held < 1:
        raise DatasetError(f"{path}: {n} sample(s) leave no training data after holding out {n_held}")
    x = torch.from_numpy(np.ascontiguousarray(ff.fields, dtype=np.float32))
    return DataSplit(train=x[: n - n_held], held_out=x[n - n_held :], pde=ff.pde,
                     pde_params=dict(ff.pde_params), channels=ff.channels, path=str(path))
