"""Make a dataset: random coefficients -> reference solves -> a fields file."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine import pdes
from engine.errors import ConfigError
from engine.grid import Grid
from engine.io.hdf5 import FieldsFile, write_fields
from engine.jobs import CancelToken, Progress, ProgressFn, check_cancel, no_progress
from engine.metrics import residual_stats
from engine.seeding import sample_seeds  # (also imported from here by the samplers)

# Samples per reference-solve call, and so per progress report. Not free to change for finer progress:
# burgers' Newton iteration stops when the whole batch has converged, so its float64 values depend on
# the batch at round-off (≤ 2e-13; darcy, poisson and helmholtz solve sample by sample and do not). A
# smaller batch changes the last bits of every burgers dataset larger than it (float32 files came out
# identical at 16², 32² and 64², but that is rounding luck, not a guarantee).
BATCH = 64


@dataclass(frozen=True)
class GenerateResult:
    path: Path
    n: int
    grid: int
    seconds: float
    samples_per_s: float
    residual_mse: float
    bc_mse: float


def generate_fields(pde_name: str, n: int, grid_n: int, seed: int, pde_params: dict[str, Any] | None = None,
                    *, batch: int = BATCH, on_progress: ProgressFn = no_progress,
                    cancel: CancelToken | None = None) -> np.ndarray:
    """(n, C, N, N) float64 reference-solved fields for samples 0..n-1 of ``seed``."""
    if n < 1:
        raise ConfigError(f"--n must be at least 1, got {n}")
    if grid_n < 8 or grid_n > 1024:
        raise ConfigError(f"grid must be between 8 and 1024, got {grid_n}")
    pde = pdes.get(pde_name, **(pde_params or {}))
    grid = Grid(grid_n)
    seeds = sample_seeds(seed, n)
    out = np.empty((n, len(pde.fields), grid_n, grid_n))
    on_progress(Progress("data", 0, n))  # the total, and the clock, before the first batch's solve
    for start in range(0, n, batch):
        check_cancel(cancel)
        chunk = seeds[start : start + batch]
        out[start : start + len(chunk)] = pde.solve(pde.sample_inputs(chunk, grid), grid).numpy()
        on_progress(Progress("data", start + len(chunk), n))
    return out


def generate_dataset(pde_name: str, n: int, grid_n: int, seed: int, path: str | os.PathLike[str],
                     pde_params: dict[str, Any] | None = None, *, dtype: str = "float32",
                     on_progress: ProgressFn = no_progress,
                     cancel: CancelToken | None = None) -> GenerateResult:
    """Generate ``n`` samples and write them to ``path`` (atomically)."""
    t0 = time.perf_counter()
    pde = pdes.get(pde_name, **(pde_params or {}))
    fields = generate_fields(pde_name, n, grid_n, seed, pde_params, on_progress=on_progress, cancel=cancel)
    seconds = time.perf_counter() - t0
    stored = fields.astype(dtype)
    final = write_fields(path, FieldsFile(fields=stored, pde=pde_name, channels=pde.fields,
                                          pde_params=pdes.params_of(pde), method="reference", seed=seed),
                         dtype=dtype)
    stats = residual_stats(pde, stored)
    return GenerateResult(final, n, grid_n, seconds, n / seconds, stats["residual_mse"], stats["bc_mse"])
