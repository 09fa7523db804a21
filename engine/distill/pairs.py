"""Distillation pairs (ε, x0 = Φ(ε)): the teacher's deterministic Heun map, kept with the run.

Pair i of refresh generation g uses the noise seed ``pair_seed(seed, g, i)``, so the whole pair
set is a pure function of (seed, refresh count) and a resumed run can rebuild whatever its file
lacks. The file ``pairs.h5`` in the run holds ``eps``, ``x0`` (normalised units, float32) and
``seeds``; it is rewritten atomically after every refresh.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import torch

from engine.diffusion.model import Teacher
from engine.diffusion.sampler import heun_sample, noise_from_seeds
from engine.io.atomic import atomic_hdf5
from engine.jobs import CancelToken, Progress, ProgressFn, check_cancel, no_progress


def pair_seed(seed: int, generation: int, index: int) -> int:
    state = np.random.SeedSequence([seed, generation, index]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def refresh_indices(K: int, fraction: float, generation: int) -> np.ndarray:
    """The pair slots replaced at refresh ``generation`` ≥ 1: a rotating block of ⌈fraction·K⌉."""
    m = max(1, int(np.ceil(fraction * K)))
    return (np.arange(m) + (generation - 1) * m) % K


def teacher_map(teacher: Teacher, seeds: list[int], steps: int, *, batch: int = 256,
                on_progress: ProgressFn = no_progress, cancel: CancelToken | None = None,
                done: int = 0, total: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(ε, Φ(ε)) for each seed, batched: CPU float32 tensors (n, C, N, N), normalised units."""
    eps_all, x0_all = [], []
    total = total if total is not None else len(seeds)
    for start in range(0, len(seeds), batch):
        check_cancel(cancel)
        chunk = seeds[start : start + batch]
        eps = noise_from_seeds(chunk, teacher.shape, teacher.device)
        x0 = heun_sample(teacher.denoiser, eps, num_steps=steps, sigma_min=teacher.sigma_min,
                         sigma_max=teacher.sigma_max, rho=teacher.rho)
        eps_all.append(eps.cpu())
        x0_all.append(x0.cpu())
        on_progress(Progress("pairs", done + start + len(chunk), total))
    return torch.cat(eps_all), torch.cat(x0_all)


def save_pairs(path: str | os.PathLike[str], eps: torch.Tensor, x0: torch.Tensor, seeds: list[int],
               made_by: str = "") -> None:
    """``made_by``: what mapped them (the teacher and the sampler, ``train.pairs_source``), kept so that
    another run's file is never taken for this one's (``load_pairs``)."""
    with atomic_hdf5(path, eps.numpy().nbytes + x0.numpy().nbytes) as h:
        h.create_dataset("eps", data=eps.numpy())
        h.create_dataset("x0", data=x0.numpy())
        h.create_dataset("seeds", data=np.asarray(seeds, dtype=np.int64))
        h.attrs["made_by"] = made_by


def load_pairs(path: str | os.PathLike[str], made_by: str | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, list[int]] | None:
    """The stored pairs, or None if the file is missing, unreadable or, when ``made_by`` is given,
    made by another teacher or sampler (a file left by a start that died, a copy from another run):
    they are then mapped afresh. Pairs are matched by seed, which alone cannot tell."""
    if not Path(path).is_file():
        return None
    try:
        with h5py.File(path, "r") as h:
            if made_by is not None and str(h.attrs.get("made_by", "")) != made_by:
                return None
            return (torch.from_numpy(h["eps"][()]), torch.from_numpy(h["x0"][()]),
                    [int(s) for s in h["seeds"][()]])
    except (OSError, KeyError):
        return None
